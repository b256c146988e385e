"""The live market monitor's core: feeds, books, metrics and the store. Never imports streamlit."""

from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
