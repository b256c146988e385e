"""The sidebar: this viewer's own feed selection and view choices, and the shared thresholds.

Each session's exchanges and symbols are its own (``app.components.selection``): kept in
``st.session_state`` and registered with the process-wide ``Demand``, which feeds the worker
the union of every open session's selection plus the server's defaults. A change is validated
(``parse_symbols``, then the worker's own check through the ``Demand``) before it is kept; a
refused one shows ``st.error`` and changes nothing. Another viewer's edits change neither this
sidebar nor this page.

The feed controls and the pause are drawn on every page; the market view's choices (market,
imbalance depth, chart window) and the whale alert thresholds only on the Market page. Each
page's choices are kept while another page is shown. The thresholds and the alert history
are shared by every viewer, deliberately (one desk, one set of alerts): the inputs show the
store's values and a refused one changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st

from app.components.alerts import fmt_threshold, parse_notional
from app.components.fmt import fmt_notional
from app.components.overview import SORT_KEY
from app.components.selection import Selection, choose, parse_selection_symbols, selection
from app.components.selector import CHART_VIEW_KEY, TIMEFRAME_KEY
from market.errors import InvalidSymbol, MarketError
from market.settings import exchange_names
from market.store import DEFAULT_SERIES_INTERVAL, MarketStore
from market.symbols import MAX_SYMBOLS
from market.venues import is_simulated
from market.views import IMBALANCE_DEPTHS, MarketKey
from market.wants import Demand
from market.worker import Worker

DEFAULT_DEPTH = 5
WINDOWS: dict[str, float | None] = {
    "1 min": 60.0,
    "5 min": 300.0,
    "15 min": 900.0,
    "all kept": None,
}
DEFAULT_WINDOW = "5 min"
# Widgets drawn on one page only: Streamlit forgets a widget's value on a run that does not
# draw it, unless the key is written back at the start of every run.
PAGE_WIDGET_KEYS = ("market", "depth", "window", SORT_KEY, CHART_VIEW_KEY, TIMEFRAME_KEY)
WHALE_DEFAULT_KEY = "whale_default"
WHALE_SYMBOL_KEY = "whale_symbol"


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


def market_label(key: MarketKey) -> str:
    exchange, symbol = key
    return f"{symbol} · {exchange}"


def exchange_label(exchange: str) -> str:
    return f"{exchange} (simulated)" if is_simulated(exchange) else exchange


def show_selection(chosen: Selection) -> None:
    """Put this session's selection into its feed widgets."""
    state = st.session_state
    state["exchanges"] = list(chosen.exchanges)
    state["symbols"] = ", ".join(chosen.symbols)
    state["feed_seen"] = (chosen.exchanges, chosen.symbols)


def apply_feed(demand: Demand) -> None:
    """on_change of the exchanges and symbols widgets: validate, then make it this session's
    selection (the worker subscribes what is new to it; other sessions see no change)."""
    state = st.session_state
    current = selection(demand)
    chosen = tuple(str(e) for e in state.get("exchanges") or ())
    text = str(state.get("symbols", ""))
    if not chosen:
        state["feed_error"] = "Choose at least one exchange"
        state["exchanges"] = list(current.exchanges)
        return
    try:
        new = choose(demand, Selection(chosen, parse_selection_symbols(text)))
    except InvalidSymbol as exc:
        state["feed_error"] = f"Invalid symbol: {exc}"
        state["exchanges"] = list(current.exchanges)
        return
    except MarketError as exc:  # e.g. an exchange the worker refuses
        state["feed_error"] = f"Refused: {exc}"
        state["exchanges"] = list(current.exchanges)
        return
    state["feed_error"] = None
    show_selection(new)


def render_sidebar(worker: Worker, demand: Demand, *, market_view: bool = True) -> Prefs:
    """This session's feed selection, the market view's choices (when ``market_view``) and the
    pause; returns this user's choices (the market is its first one until one is chosen)."""
    state = st.session_state
    chosen = selection(demand)
    # first run, or chosen elsewhere (the "Show SIMULATED data" button)
    if state.get("feed_seen") != (chosen.exchanges, chosen.symbols):
        show_selection(chosen)
        state["feed_error"] = None
    try:
        choose(demand, chosen)  # registered from the first run; a heartbeat after that
    except MarketError as exc:
        state["feed_error"] = f"Refused: {exc}"
    for key in PAGE_WIDGET_KEYS:  # keep each page's choices while another page is shown
        if key in state:
            state[key] = state[key]
    markets = chosen.markets()
    if state.get("market") not in markets:
        state["market"] = markets[0]
    state.setdefault("depth", DEFAULT_DEPTH)
    state.setdefault("window", DEFAULT_WINDOW)
    state.setdefault("paused", False)
    known = exchange_names()
    exchanges = known + tuple(e for e in chosen.exchanges if e not in known)
    defaults = Selection(*demand.defaults)

    with st.sidebar:
        st.markdown("### Feed")
        st.caption(
            "Your own selection: other viewers keep theirs. The server also feeds its "
            f"defaults ({defaults.summary()})."
        )
        st.multiselect(
            "Exchanges",
            exchanges,
            key="exchanges",
            format_func=exchange_label,
            on_change=apply_feed,
            args=(demand,),
            help="One connection per exchange; every symbol is watched on each of them.",
        )
        st.text_input(
            "Symbols",
            key="symbols",
            on_change=apply_feed,
            args=(demand,),
            help=f"Comma-separated, e.g. BTCUSDT, ETHUSDT (up to {MAX_SYMBOLS}). "
            "Letters, digits and '-' only.",
        )
        if state.get("feed_error"):
            st.error(
                f"{state['feed_error']}. Nothing was changed: you keep watching "
                f"{selection(demand).summary()}."
            )
        if market_view:
            render_market_view(markets)
            render_whale_settings(worker.store, str(state["market"][1]))
        st.markdown("### Display")
        st.toggle(
            "Pause display",
            key="paused",
            help="Freezes the whole display (the feed keeps running) so you can zoom and pan "
            "the chart at leisure. Untoggle to go live again.",
        )
    return session_prefs()


def session_prefs() -> Prefs:
    """This user's choices as ``render_sidebar`` left them in this run (pages read them)."""
    state = st.session_state
    exchange, symbol = state["market"]
    return Prefs(
        exchange=str(exchange),
        symbol=str(symbol),
        depth=int(state["depth"]),
        window=str(state["window"]),
        paused=bool(state["paused"]),
    )


def render_market_view(markets: Sequence[MarketKey]) -> None:
    st.markdown("### View")
    st.selectbox("Market", markets, key="market", format_func=market_label)
    st.selectbox(
        "Imbalance depth N",
        IMBALANCE_DEPTHS,
        key="depth",
        help="Levels a side summed into the imbalance card and chart.",
    )
    st.selectbox("Chart window", tuple(WINDOWS), key="window")


def default_whale_threshold(store: MarketStore) -> float:
    """The threshold of symbols without their own. The store has no getter for it: asking for
    the empty name, which no symbol can have (symbols are validated non-empty), returns it."""
    return store.whale_default


def apply_whale(store: MarketStore, symbol: str | None) -> None:
    """on_change of a threshold input: parse, then set the store; a refusal changes nothing."""
    state = st.session_state
    key = WHALE_DEFAULT_KEY if symbol is None else WHALE_SYMBOL_KEY
    where = "default" if symbol is None else symbol
    current = default_whale_threshold(store) if symbol is None else store.whale_threshold(symbol)
    text = str(state.get(key, ""))
    try:
        value = parse_notional(text)
        store.set_whale_threshold(value, symbol)
    except ValueError as exc:
        state["whale_error"] = (
            f"Whale threshold ({where}): {exc}. Nothing was changed: it stays at "
            f"{fmt_threshold(current)}."
        )
        return
    state["whale_error"] = None
    state["whale_seen"] = None  # show the stored values (normalized) on this run


def render_whale_settings(store: MarketStore, symbol: str) -> None:
    """The default threshold and the chosen market's symbol's own, as the store has them."""
    state = st.session_state
    default = default_whale_threshold(store)
    own = store.whale_threshold(symbol)
    if state.get("whale_seen") != (symbol, default, own):  # first run, a change, another viewer
        state[WHALE_DEFAULT_KEY] = fmt_threshold(default)
        state[WHALE_SYMBOL_KEY] = fmt_threshold(own)
        state["whale_seen"] = (symbol, default, own)
        state["whale_error"] = None
    st.markdown("### Whale alerts")
    st.caption(
        "A trade of at least this notional (quote units: 250000, 250k, 1.5M) is an alert; "
        "0 turns alerts off; applies from the next trade. Shared on purpose: these thresholds "
        "and the alert history are the same for every viewer of this server."
    )
    st.text_input(
        "Default (every symbol)",
        key=WHALE_DEFAULT_KEY,
        on_change=apply_whale,
        args=(store, None),
        help="For every symbol without a threshold of its own (also WHALE_NOTIONAL in .env).",
    )
    st.text_input(
        f"{symbol} (every exchange)",
        key=WHALE_SYMBOL_KEY,
        on_change=apply_whale,
        args=(store, symbol),
        help=f"{symbol}'s own threshold, on every exchange (also WHALE_NOTIONAL_{symbol} in "
        ".env). Now: " + ("off" if own == 0 else f"≥ {fmt_notional(own)}") + ".",
    )
    if state.get("whale_error"):
        st.error(state["whale_error"])
