"""The live panel: ONE fragment that takes ONE store snapshot and draws it, in order.

    status bar (+ SIMULATED banner) → metric cards → [chart | order book | trades]

``draw`` is the fragment's body and works outside a Streamlit run too (``bench/page_time.py``
times it). Pausing re-creates the fragment without ``run_every``: the browser keeps the last
drawing untouched, so a zoomed chart stays zoomed, and no market data is kept per session.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import streamlit as st

from app.components.book import ladder_html
from app.components.cards import card_values, render_cards
from app.components.charts import build_price_figure
from app.components.fmt import esc, price_decimals
from app.components.series import COL, RECENT_ROWS, series_array, thin_rows, window
from app.components.sidebar import Prefs
from app.components.status import is_simulated, notice_html, render_status
from app.components.trades import TAPE_ROWS, tape_html
from market.metrics import top_of_book
from market.store import MarketStore, MarketView

log = logging.getLogger(__name__)

REFRESH_S = 0.8
PLOTLY_CONFIG = {"displaylogo": False, "scrollZoom": False, "responsive": True, "showTips": False}


def chart_key(exchange: str, symbol: str) -> str:
    return f"chart-{exchange}-{symbol}"


def reference_price(view: MarketView, series: np.ndarray) -> float | None:
    """The price that decides how many decimals this market's numbers get."""
    mid = top_of_book(view.bids, view.asks).mid
    if mid is not None:
        return mid
    mids = series[:, COL["mid"]] if len(series) else np.empty(0)
    finite = mids[np.isfinite(mids)]
    return float(finite[-1]) if len(finite) else None


def draw(store: MarketStore, prefs: Prefs) -> float:
    """Draw the whole panel from one snapshot; returns the seconds it took (without the footer)."""
    started = time.perf_counter()
    key = (prefs.exchange, prefs.symbol)
    snap = store.snapshot(
        markets=[key], max_series_points=prefs.series_points, max_trades=TAPE_ROWS
    )
    status = snap.statuses.get(prefs.exchange)
    view = snap.markets.get(key)
    simulated = is_simulated(view, status)
    render_status(status, simulated, snap.taken_at if prefs.paused else None)

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

    left, middle, right = st.columns([0.52, 0.24, 0.24], gap="small")
    with left:
        fig = build_price_figure(
            series,
            exchange=view.exchange,
            symbol=view.symbol,
            depth=prefs.depth,
            simulated=simulated,
        )
        st.plotly_chart(
            fig, key=chart_key(view.exchange, view.symbol), theme=None, config=PLOTLY_CONFIG
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
