"""The live panel: ONE store snapshot drawn in order, in the Market page's one fragment
(``app/views/market.py`` runs ``live_panel`` in it).

    status bar (+ SIMULATED banner) → metric cards → session cards + "Reset session"
    → [chart selector, the chosen chart, whale alerts | order book | trades]
    (+ a toast per new whale alert)

Only the chosen chart (Price · Candles · Depth · Flow) is built in a run. ``draw`` is the
panel's body and works outside a Streamlit run too (``bench/page_time.py`` times it, with
each chart). Pausing makes the page re-create its fragment without ``run_every``: the browser
keeps the last drawing untouched, so a zoomed chart stays zoomed, and no market data is kept
per session.

Shared by every tab (``app.components.shared``): a timed refresh reuses the market's snapshot
("tick") another tab took less than ``TICK_S`` ago, and the chart of a tick is built (and
encoded for the browser) once per store version and view: ten tabs on one market cost about
one tab's figure. Any other run (a page load, a sidebar change) takes its own snapshot.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import streamlit as st

from app.components.alerts import alerts_html, simulated_markets, toast_new_alerts
from app.components.book import ladder_html
from app.components.cards import card_values, cards_html
from app.components.charts.candles import candles_spec
from app.components.charts.depth import depth_spec
from app.components.charts.encode import EncodedFigure, encoded
from app.components.charts.flow import flow_spec
from app.components.charts.layout import FigureSpec
from app.components.charts.price import price_spec
from app.components.fmt import esc, price_decimals
from app.components.selector import ChartChoice, chart_choice, render_selector
from app.components.series import COL, RECENT_ROWS, series_array, shared_series_array, window
from app.components.session import render_session, session_caption, session_cards
from app.components.shared import SharedCache, owner_token, reuse_s
from app.components.sidebar import Prefs
from app.components.status import notice_html, render_status, source_label
from app.components.theme import REFRESH_S
from app.components.trades import TAPE_ROWS, tape_html
from market.analytics import MINUTE_MS, Candle, aggregate_candles, candles
from market.events import FeedStatus
from market.metrics import top_of_book
from market.store import MarketStore
from market.views import MarketKey, MarketView, StoreSnapshot

log = logging.getLogger(__name__)

PLOTLY_CONFIG = {"displaylogo": False, "scrollZoom": False, "responsive": True, "showTips": False}


def chart_key(exchange: str, symbol: str, view: str = "Price") -> str:
    return f"chart-{exchange}-{symbol}-{view.lower()}"


def chart_candles(view: MarketView, interval_ms: int) -> list[Candle]:
    """Candles of ``interval_ms``: one-second ones from the trades tape (history excluded),
    one-minute ones as the session keeps them, longer ones aggregated from those."""
    if interval_ms < MINUTE_MS:
        return candles((t for t in view.trades if not t.backfill), interval_ms)
    if interval_ms == MINUTE_MS:
        return list(view.session.candles)
    return aggregate_candles(view.session.candles, interval_ms)


def build_chart(
    choice: ChartChoice,
    view: MarketView,
    series: np.ndarray,
    *,
    depth: int,
    decimals: int,
    synced: bool,
    simulated: bool | str,
) -> FigureSpec:
    """The figure of the chosen chart (only that one is built), as a plain spec."""
    ex, sym, sim = view.exchange, view.symbol, simulated
    if choice.view == "Candles":
        return candles_spec(
            chart_candles(view, choice.interval_ms),
            timeframe=choice.timeframe,
            interval_ms=choice.interval_ms,
            exchange=ex,
            symbol=sym,
            simulated=sim,
            decimals=decimals,
        )
    if choice.view == "Depth":
        bids, asks = (view.bids, view.asks) if synced else ((), ())
        return depth_spec(bids, asks, exchange=ex, symbol=sym, simulated=sim, decimals=decimals)
    if choice.view == "Flow":
        return flow_spec(series, exchange=ex, symbol=sym, simulated=sim, decimals=decimals)
    return price_spec(
        series, exchange=ex, symbol=sym, depth=depth, simulated=sim, decimals=decimals
    )


def reference_price(view: MarketView, series: np.ndarray) -> float | None:
    """The price that decides how many decimals this market's numbers get."""
    mid = top_of_book(view.bids, view.asks).mid
    if mid is not None:
        return mid
    mids = series[:, COL["mid"]] if len(series) else np.empty(0)
    finite = mids[np.isfinite(mids)]
    return float(finite[-1]) if len(finite) else None


@dataclass(frozen=True, slots=True)
class Tick:
    """One market as a snapshot shows it, with what every tab derives from it alike."""

    snap: StoreSnapshot
    status: FeedStatus | None
    view: MarketView | None
    series: np.ndarray  # the window's rows, read-only
    decimals: int
    synced: bool
    simulated: bool | str
    simulated_markets: frozenset[MarketKey]


def take_tick(
    store: MarketStore,
    key: MarketKey,
    series_points: int | None,
    trades: int | None,
    window_s: float | None,
) -> Tick:
    snap = store.snapshot(markets=[key], max_series_points=series_points, max_trades=trades)
    status = snap.statuses.get(key[0])
    view = snap.markets.get(key)
    if view is None:
        empty = series_array(())
        return Tick(snap, status, None, empty, 2, False, source_label(None, status),
                    frozenset(simulated_markets(snap)))  # fmt: skip
    series = window(shared_series_array(store, (key, series_points), view.series), window_s)
    return Tick(
        snap,
        status,
        view,
        series,
        price_decimals(reference_price(view, series)),
        view.synced and bool(view.bids) and bool(view.asks),
        source_label(view, status),
        frozenset(simulated_markets(snap)),
    )


_TICKS: SharedCache[Tick] = SharedCache(entries=32)
_FIGURES: SharedCache[EncodedFigure] = SharedCache(entries=48)


def market_tick(store: MarketStore, prefs: Prefs, choice: ChartChoice, share_s: float) -> Tick:
    """This run's snapshot of the market: with ``share_s`` > 0, the one any tab took in the
    current ``share_s`` slot of the clock (so tabs refreshing close together share one, and
    so its version and its figure); else a fresh one."""
    key = (prefs.exchange, prefs.symbol)
    trades = None if choice.needs_all_trades else TAPE_ROWS
    args = (store, key, prefs.series_points, trades, prefs.window_s)
    if share_s <= 0:
        return take_tick(*args)
    slot = math.floor(time.monotonic() / share_s)
    shared = (owner_token(store), key, prefs.series_points, trades, prefs.window_s, slot)
    return _TICKS.get(shared, lambda: take_tick(*args))


def chart_figure(
    store: MarketStore, tick: Tick, prefs: Prefs, choice: ChartChoice
) -> EncodedFigure:
    """The chosen chart of this tick, built and encoded once per store version and view."""
    view = tick.view
    assert view is not None
    key = (owner_token(store), tick.snap.version, view.exchange, view.symbol, choice,
           prefs.depth, prefs.window, tick.decimals, tick.synced, tick.simulated)  # fmt: skip

    def build() -> EncodedFigure:
        spec = build_chart(
            choice,
            view,
            tick.series,
            depth=prefs.depth,
            decimals=tick.decimals,
            synced=tick.synced,
            simulated=tick.simulated,
        )
        return encoded(spec)

    return _FIGURES.get(key, build)


@dataclass(frozen=True, slots=True)
class Panels:
    """The tables of a tick, as HTML: the same for every tab that shows the tick."""

    alerts: str
    ladder: str
    tape: str


_PANELS: SharedCache[Panels] = SharedCache(entries=32)


def tick_panels(store: MarketStore, tick: Tick) -> Panels:
    """The whale alerts, the order book ladder and the trades tape of this tick, built once
    per store version (whichever tab asks first)."""
    view = tick.view
    assert view is not None
    key = (owner_token(store), tick.snap.version, view.exchange, view.symbol, len(view.trades),
           tick.decimals, tick.simulated)  # fmt: skip

    def build() -> Panels:
        simulated = tick.simulated
        alerts = alerts_html(
            tick.snap.alerts,
            simulated=set(tick.simulated_markets),
            symbol=view.symbol,
            threshold=view.session.whale_threshold,
        )
        ladder = (
            ladder_html(
                view.bids, view.asks, tick.decimals, symbol=view.symbol, simulated=simulated
            )
            if tick.synced
            else ""
        )
        return Panels(alerts, ladder, tape_html(view.trades, tick.decimals, simulated=simulated))

    return _PANELS.get(key, build)


@dataclass(frozen=True, slots=True)
class CardRows:
    """The metric cards and the session panel of a tick, as HTML ("" when not shown)."""

    book: str
    session: str
    caption: str


_CARDS: SharedCache[CardRows] = SharedCache(entries=32)


def tick_cards(store: MarketStore, tick: Tick, prefs: Prefs) -> CardRows:
    """The book's cards (deltas vs ~1 s ago, at full resolution) and the session's cards of
    this tick, built once per store version and view (whichever tab asks first)."""
    view = tick.view
    assert view is not None
    key = (owner_token(store), tick.snap.version, view.exchange, view.symbol, prefs.depth,
           prefs.window, prefs.window_s, prefs.series_points, tick.decimals,
           tick.synced)  # fmt: skip

    def build() -> CardRows:
        book = ""
        if tick.synced:
            recent = series_array(view.series[-RECENT_ROWS:])  # full resolution for the deltas
            book = cards_html(card_values(view, recent, prefs.depth, tick.decimals), "book")
        if not (tick.synced or view.session.trades):  # trade figures need trades, not a book
            return CardRows(book, "", "")
        session = session_cards(view, tick.series, prefs.window, tick.decimals)
        return CardRows(book, cards_html(session, "session"), session_caption(view, tick.decimals))

    return _CARDS.get(key, build)


def draw(
    store: MarketStore, prefs: Prefs, choice: ChartChoice | None = None, *, share_s: float = 0.0
) -> float:
    """Draw the whole panel from one snapshot; returns the seconds it took (without the footer).
    ``choice`` is the chart to draw (default: the user's, from the selector's state);
    ``share_s``: how old a snapshot another tab took may be to be reused (0: a fresh one)."""
    started = time.perf_counter()
    if choice is None:
        choice = chart_choice()
    tick = market_tick(store, prefs, choice, share_s)
    snap, status, view, simulated = tick.snap, tick.status, tick.view, tick.simulated
    render_status(status, snap.taken_at, simulated, snap.taken_at if prefs.paused else None)
    sims = set(tick.simulated_markets)
    toast_new_alerts(snap.alerts, sims)

    if view is None:
        st.html(notice_html(f"Waiting for data: {prefs.symbol} on {prefs.exchange}…", "info"))
        return time.perf_counter() - started

    series, synced = tick.series, tick.synced
    panels = tick_panels(store, tick)
    cards = tick_cards(store, tick, prefs)
    if synced:
        st.html(cards.book)
    else:
        history = "the chart shows history only" if len(series) else "no history yet"
        st.html(
            notice_html(
                f"{view.symbol}: order book not synced — {view.detail or 'waiting for the book'}. "
                f"Prices are hidden until the book is rebuilt; {history}."
            )
        )
    if cards.session:
        render_session(store, view, cards.session, cards.caption)

    left, middle, right = st.columns([0.52, 0.24, 0.24], gap="small")
    with left:
        render_selector(choice)
        st.plotly_chart(
            chart_figure(store, tick, prefs, choice),
            key=chart_key(view.exchange, view.symbol, choice.view),
            theme=None,
            config=PLOTLY_CONFIG,
        )
        st.html(panels.alerts)
    with middle:
        st.html(panels.ladder if synced else notice_html("order book hidden until it is synced"))
    with right:
        st.html(panels.tape)
    return time.perf_counter() - started


def live_panel(store: MarketStore, prefs: Prefs) -> None:
    """The panel, drawn in the calling fragment: never lets an exception box reach the page."""
    try:
        seconds = draw(store, prefs, share_s=reuse_s())
    except Exception as exc:  # a display bug must not take the page down; it is logged
        log.exception("drawing the panel failed")
        st.html(notice_html(f"display error (logged): {type(exc).__name__}: {exc}", "bad"))
        return
    mode = "paused" if prefs.paused else f"refresh every {REFRESH_S:g} s"
    st.html(f'<div class="footer">render {seconds * 1000:.1f} ms · {esc(mode)}</div>')
