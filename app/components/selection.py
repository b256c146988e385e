"""This session's own selection (exchanges and symbols) and its heartbeat to the ``Demand``.

Each browser session chooses what *it* watches; the choice lives in ``st.session_state``
(a per-user choice, never market data) and is registered with the process-wide ``Demand``
(``app.runtime.get_demand``), which feeds the worker the union of every open session's
selection plus the server's defaults. Every registration is also a heartbeat: the pages'
fragment ticks call ``heartbeat``, so a closed tab stops wanting after the grace. A paused
page keeps a slow heartbeat (``keep_alive``) so its markets are still fed when it resumes.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import streamlit as st

from market.errors import InvalidSymbol, MarketError
from market.symbols import parse_symbols
from market.views import MarketKey
from market.wants import Demand

log = logging.getLogger(__name__)

VIEWER_KEY = "viewer_id"  # this session's name in the Demand
WANTED_KEY = "wanted"  # this session's validated (exchanges, symbols): plain tuples


@dataclass(frozen=True, slots=True)
class Selection:
    """What one session watches: every symbol on each of its exchanges."""

    exchanges: tuple[str, ...]
    symbols: tuple[str, ...]

    def markets(self) -> list[MarketKey]:
        """Each symbol on each exchange, symbol first (the Market select's order)."""
        return [(exchange, symbol) for symbol in self.symbols for exchange in self.exchanges]

    def summary(self) -> str:
        return f"{', '.join(self.exchanges)} · {', '.join(self.symbols)}"


def parse_selection_symbols(text: str) -> tuple[str, ...]:
    """The symbols a user typed, as the worker names them (``sol-usdt`` → ``SOLUSDT``);
    ``InvalidSymbol`` with the reason, as ``parse_symbols`` and the worker's own check."""
    symbols: list[str] = []
    for raw in parse_symbols(text):
        symbol = raw.replace("-", "")
        if not symbol:
            raise InvalidSymbol(f"{raw!r}: no letters or digits")
        if symbol not in symbols:
            symbols.append(symbol)
    return tuple(symbols)


def viewer_id() -> str:
    """This session's name, made once per session."""
    state = st.session_state
    if VIEWER_KEY not in state:
        state[VIEWER_KEY] = uuid.uuid4().hex
    return str(state[VIEWER_KEY])


def selection(demand: Demand) -> Selection:
    """This session's selection; the server's defaults until it chooses its own."""
    wanted = st.session_state.get(WANTED_KEY)
    if wanted is None:
        return Selection(*demand.defaults)
    exchanges, symbols = wanted
    return Selection(tuple(exchanges), tuple(symbols))


def choose(demand: Demand, chosen: Selection) -> Selection:
    """Make ``chosen`` this session's selection: registered first (``InvalidSymbol`` or
    ``MarketError`` when the worker refuses it; then nothing changes), then kept."""
    demand.want(viewer_id(), chosen.exchanges, chosen.symbols)
    st.session_state[WANTED_KEY] = (chosen.exchanges, chosen.symbols)
    return chosen


def heartbeat(demand: Demand) -> Selection:
    """Say again what this session wants (a fragment tick); a refusal is logged, not raised."""
    chosen = selection(demand)
    try:
        demand.want(viewer_id(), chosen.exchanges, chosen.symbols)
    except MarketError as exc:  # the union grew past a limit while this tab slept
        log.warning("session %s: its selection was refused: %s", viewer_id(), exc)
    return chosen


def keep_alive(demand: Demand, paused: bool) -> None:
    """While the page is paused its fragment does not tick: beat slowly instead."""
    if paused:
        every = max(1.0, demand.grace_s / 3)
        st.fragment(heartbeat, run_every=every)(demand)
