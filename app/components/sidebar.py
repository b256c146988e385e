"""The sidebar: feed settings (shared by every viewer) and per-user view choices.

Only choices live in ``st.session_state``; the feed's actual configuration is read from the
worker each run, and a change is validated (``parse_symbols`` + ``Worker.reconfigure``)
before anything is sent. A refused change shows ``st.error`` and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from market.errors import InvalidSymbol, MarketError
from market.settings import parse_symbols
from market.store import DEFAULT_SERIES_INTERVAL, IMBALANCE_DEPTHS
from market.worker import Worker

EXCHANGE_CHOICES = ("binance", "mock")
DEFAULT_DEPTH = 5
WINDOWS: dict[str, float | None] = {
    "1 min": 60.0,
    "5 min": 300.0,
    "15 min": 900.0,
    "all kept": None,
}
DEFAULT_WINDOW = "5 min"


@dataclass(frozen=True, slots=True)
class Prefs:
    """What one user looks at; the fragment is called with it."""

    exchange: str
    symbol: str
    depth: int
    window: str
    paused: bool

    @property
    def window_s(self) -> float | None:
        return WINDOWS[self.window]

    @property
    def series_points(self) -> int | None:
        """How many series rows to copy out of the store for the chart window."""
        seconds = self.window_s
        return None if seconds is None else int(seconds / DEFAULT_SERIES_INTERVAL * 1.1) + 10


def apply_feed(worker: Worker) -> None:
    """on_change of the exchange and symbols widgets: validate, then reconfigure the worker."""
    state = st.session_state
    text = str(state.get("symbols", ""))
    exchange = str(state.get("exchange", worker.settings.exchange))
    try:
        symbols = parse_symbols(text)
        settings = worker.reconfigure(exchange=exchange, symbols=symbols)
    except InvalidSymbol as exc:
        state["feed_error"] = f"Invalid symbol: {exc}"
        state["exchange"] = worker.settings.exchange
        return
    except MarketError as exc:  # e.g. an exchange the worker refuses
        state["feed_error"] = f"Refused: {exc}"
        state["exchange"] = worker.settings.exchange
        return
    state["feed_error"] = None
    state["symbols"] = ", ".join(settings.symbols)
    state["feed_seen"] = (settings.exchange, settings.symbols)


def render_sidebar(worker: Worker) -> Prefs:
    state = st.session_state
    running = worker.settings
    current = (running.exchange, running.symbols)
    if state.get("feed_seen") != current:  # first run, or another viewer changed the feed
        state["exchange"] = running.exchange
        state["symbols"] = ", ".join(running.symbols)
        state["feed_seen"] = current
        state["feed_error"] = None
    exchanges = EXCHANGE_CHOICES + (
        () if running.exchange in EXCHANGE_CHOICES else (running.exchange,)
    )
    if state.get("market") not in running.symbols:
        state["market"] = running.symbols[0]
    state.setdefault("depth", DEFAULT_DEPTH)
    state.setdefault("window", DEFAULT_WINDOW)
    state.setdefault("paused", False)

    with st.sidebar:
        st.markdown("### Feed")
        st.caption("Shared by every viewer of this server.")
        st.selectbox("Exchange", exchanges, key="exchange", on_change=apply_feed, args=(worker,))
        st.text_input(
            "Symbols",
            key="symbols",
            on_change=apply_feed,
            args=(worker,),
            help="Comma-separated, e.g. BTCUSDT, ETHUSDT. Letters, digits and '-' only.",
        )
        if state.get("feed_error"):
            st.error(
                f"{state['feed_error']}. Nothing was changed: the feed keeps running with "
                f"{running.exchange} · {', '.join(running.symbols)}."
            )
        st.markdown("### View")
        st.selectbox("Market", running.symbols, key="market")
        st.selectbox(
            "Imbalance depth N",
            IMBALANCE_DEPTHS,
            key="depth",
            help="Levels a side summed into the imbalance card and chart.",
        )
        st.selectbox("Chart window", tuple(WINDOWS), key="window")
        st.toggle(
            "Pause display",
            key="paused",
            help="Freezes the whole display (the feed keeps running) so you can zoom and pan "
            "the chart at leisure. Untoggle to go live again.",
        )
    return Prefs(
        exchange=running.exchange,
        symbol=str(state["market"]),
        depth=int(state["depth"]),
        window=str(state["window"]),
        paused=bool(state["paused"]),
    )
