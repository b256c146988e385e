"""The dashboard's one palette and refresh period: charts, tables and the page's CSS use these.

The colours are an exchange terminal's (green up/buy, red down/sell, amber for SIMULATED and
warnings) on the dark theme of ``.streamlit/config.toml``.
"""

from __future__ import annotations

REFRESH_S = 0.8  # every page's fragment runs this often (st.fragment(run_every=…))

GREEN = "#0ecb81"
RED = "#f6465d"
AMBER = "#f0b90b"
BLUE = "#5b9cf6"
TEXT = "#c9d1e0"
MUTED = "#8b93a7"
GRID = "#232a38"
PANEL = "#161b26"

PALETTE = {
    "green": GREEN, "red": RED, "amber": AMBER, "blue": BLUE, "text": TEXT, "muted": MUTED,
    "grid": GRID, "panel": PANEL,
}  # fmt: skip


def themed(css: str) -> str:
    """``css`` with ``$green``, ``$red``… replaced by the palette's colours."""
    for name in sorted(PALETTE, key=len, reverse=True):
        css = css.replace(f"${name}", PALETTE[name])
    return css
