"""Symbols in the user's form (``BTCUSDT``): the one check, for settings, the sidebar, the
worker, the bus and replay (a leaf module). Each venue then maps a symbol to its own name
(``Session.venue_symbol`` in ``market/venues/``)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from market.errors import InvalidSymbol

SYMBOL_RE = re.compile(r"^[A-Za-z0-9\-]+$")
MAX_SYMBOL_LEN = 30
MAX_SYMBOLS = 200  # watched at once, by one process or one collector


def validate_symbol(raw: str) -> str:
    """One symbol in the user's form: upper case without separators (``btc-usdt`` →
    ``BTCUSDT``); raises ``InvalidSymbol`` naming the problem. The one check of a symbol:
    settings, the sidebar, the worker and replay all come here; each venue then maps it to
    its own name (``venue_symbol`` in ``market/venues/``)."""
    symbol = raw.strip()
    if not symbol:
        raise InvalidSymbol("empty symbol")
    if len(symbol) > MAX_SYMBOL_LEN:
        raise InvalidSymbol(f"{symbol[:MAX_SYMBOL_LEN]}…: longer than {MAX_SYMBOL_LEN} characters")
    if not SYMBOL_RE.match(symbol):
        raise InvalidSymbol(f"{symbol[:40]!r}: only letters, digits and '-' are allowed")
    symbol = symbol.upper().replace("-", "")
    if not symbol:
        raise InvalidSymbol(f"{raw.strip()[:40]!r}: no letters or digits")
    return symbol


def parse_symbols(text: str | Iterable[str]) -> tuple[str, ...]:
    """Comma (or space) separated symbols, or a sequence of them: validated, normalized,
    duplicates dropped, at most ``MAX_SYMBOLS``."""
    if isinstance(text, str):  # separators may repeat: "a, b" and "a,,b" are two symbols
        parts = [part for part in re.split(r"[,\s]+", text.strip()) if part]
    else:  # a sequence of symbols: each one must be one
        parts = list(text)
    symbols: dict[str, None] = {}  # ordered, and O(1) to dedupe however many are given
    for part in parts:
        symbols[validate_symbol(part)] = None
    if not symbols:
        raise InvalidSymbol("no symbols given")
    if len(symbols) > MAX_SYMBOLS:
        raise InvalidSymbol(f"{len(symbols):,} symbols: at most {MAX_SYMBOLS} at once")
    return tuple(symbols)
