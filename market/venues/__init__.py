"""The venues: one module each (header, pure parsers, sans-I/O ``Session``), and the registry.

A new venue is one file here (see ``binance.py`` for the shape: a header of URLs and limits,
``parse`` functions whose docstrings show a real frame, a ``Session`` subclass of
``market.venues.base.Session``) plus one line in ``SESSIONS`` below. ``mock`` is the
simulated venue: no socket, no session, the same events.
"""

from __future__ import annotations

from market.venues.base import Session
from market.venues.binance import BinanceSession
from market.venues.bybit import BybitSession
from market.venues.hyperliquid import HyperLiquidSession

SESSIONS: dict[str, type[Session]] = {
    "binance": BinanceSession,
    "bybit": BybitSession,
    "hyperliquid": HyperLiquidSession,
}
SIMULATED = "mock"
