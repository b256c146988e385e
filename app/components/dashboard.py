"""The live panel: ONE fragment that takes ONE store snapshot and draws it, in order.

    status bar (+ SIMULATED banner) → metric cards → session cards + "Reset session"
    → [chart selector, the chosen chart, whale alerts | order book | trades]
    (+ a toast per new whale alert)

Only the chosen chart (Price · Candles · Depth · Flow) is built in a run. ``draw`` is the
fragment's body and works outside a Streamlit run too (``bench/page_time.py`` times it, with
each chart). Pausing re-creates the fragment without ``run_every``: the browser keeps the last
drawing untouched, so a zoomed chart stays zoomed, and no market data is kept per session.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import plotly.graph_objects as go  # type: ignore[import-untyped]
import streamlit as st

from app.components.alerts import alerts_html, simulated_markets, toast_new_alerts
from app.components.book import ladder_html
from app.components.cards import card_values, render_cards
from app.components.charts import (
    build_candles_figure,
    build_depth_figure,
    build_flow_figure,
    build_price_figure,
)
from app.components.fmt import esc, price_decimals
from app.components.selector import ChartChoice, chart_choice, render_selector
from app.components.series import COL, RECENT_ROWS, series_array, thin_rows, window
from app.components.session import render_session, session_cards
from app.components.sidebar import Prefs
from app.components.status import notice_html, render_status, source_label
from app.components.trades import TAPE_ROWS, tape_html
from market.analytics import MINUTE_MS, Candle, aggregate_candles, candles
from market.metrics import top_of_book
from market.store import MarketStore, MarketView

log = logging.getLogger(__name__)

REFRESH_S = 0.8
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
) -> go.Figure:
    """The figure of the chosen chart (only that one is built)."""
    ex, sym, sim = view.exchange, view.symbol, simulated
    if choice.view == "Candles":
        return build_candles_figure(
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
        return build_depth_figure(
            bids, asks, exchange=ex, symbol=sym, simulated=sim, decimals=decimals
        )
    if choice.view == "Flow":
        return build_flow_figure(series, exchange=ex, symbol=sym, simulated=sim, decimals=decimals)
    return build_price_figure(
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


def draw(store: MarketStore, prefs: Prefs, choice: ChartChoice | None = None) -> float:
    """Draw the whole panel from one snapshot; returns the seconds it took (without the footer).
    ``choice`` is the chart to draw (default: the user's, from the selector's state)."""
    started = time.perf_counter()
    if choice is None:
        choice = chart_choice()
    key = (prefs.exchange, prefs.symbol)
    snap = store.snapshot(
        markets=[key],
        max_series_points=prefs.series_points,
        max_trades=None if choice.needs_all_trades else TAPE_ROWS,
    )
    status = snap.statuses.get(prefs.exchange)
    view = snap.markets.get(key)
    simulated = source_label(view, status)
    render_status(status, simulated, snap.taken_at if prefs.paused else None)
    sims = simulated_markets(snap)
    toast_new_alerts(snap.alerts, sims)

    if view is None:
        st.html(notice_html(f"Waiting for data: {prefs.symbol} on {prefs.exchange}…", "info"))
        return time.perf_counter() - started

    series = window(series_array(thin_rows(view.series)), prefs.window_s)
    decimals = price_decimals(reference_price(view, series))
    synced = view.synced and bool(view.bids) and bool(view.asks)
    if synced:
        recent = series_array(view.series[-RECENT_ROWS:])  # full resolution for the deltas
        render_cards(card_values(view, recent, prefs.depth, decimals))
    else:
        history = "the chart shows history only" if len(series) else "no history yet"
        st.html(
            notice_html(
                f"{view.symbol}: order book not synced — {view.detail or 'waiting for the book'}. "
                f"Prices are hidden until the book is rebuilt; {history}."
            )
        )
    if synced or view.session.trades:  # trade figures need trades, not a synced book
        cards = session_cards(view, series, prefs.window, decimals)
        render_session(store, view, cards, decimals)

    left, middle, right = st.columns([0.52, 0.24, 0.24], gap="small")
    with left:
        render_selector(choice)
        fig = build_chart(
            choice,
            view,
            series,
            depth=prefs.depth,
            decimals=decimals,
            synced=synced,
            simulated=simulated,
        )
        st.plotly_chart(
            fig,
            key=chart_key(view.exchange, view.symbol, choice.view),
            theme=None,
            config=PLOTLY_CONFIG,
        )
        st.html(
            alerts_html(
                snap.alerts,
                simulated=sims,
                symbol=view.symbol,
                threshold=view.session.whale_threshold,
            )
        )
    with middle:
        if synced:
            st.html(
                ladder_html(view.bids, view.asks, decimals, symbol=view.symbol, simulated=simulated)
            )
        else:
            st.html(notice_html("order book hidden until it is synced"))
    with right:
        st.html(tape_html(view.trades, decimals, simulated=simulated))
    return time.perf_counter() - started


def live_panel(store: MarketStore, prefs: Prefs) -> None:
    """The fragment's body: never lets an exception box reach the page."""
    try:
        seconds = draw(store, prefs)
    except Exception as exc:  # a display bug must not take the page down; it is logged
        log.exception("drawing the panel failed")
        st.html(notice_html(f"display error (logged): {type(exc).__name__}: {exc}", "bad"))
        return
    mode = "paused" if prefs.paused else f"refresh every {REFRESH_S:g} s"
    st.html(f'<div class="footer">render {seconds * 1000:.1f} ms · {esc(mode)}</div>')


def run_panel(store: MarketStore, prefs: Prefs) -> None:
    """Run ``live_panel`` as the page's one fragment; paused, it does not re-run by itself."""
    every = None if prefs.paused else REFRESH_S
    st.fragment(live_panel, run_every=every)(store, prefs)
