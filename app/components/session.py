"""The session panel: session VWAP and CVD (with "Reset session"), and the realized volatility
and volatility spread of the mid over the chart window.

``session_cards`` and the two volatility helpers are pure (numbers in, labelled strings out);
``render_session`` draws them (one block of HTML, ``cards.cards_html``) with the reset button,
which calls ``store.reset_session``.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app.components.cards import Card
from app.components.fmt import DASH, fmt_clock, fmt_price, fmt_signed, qty_decimals
from app.components.series import COL
from app.components.trades import TAPE_ROWS
from market.metrics import top_of_book
from market.store import MarketStore
from market.views import MarketView


def _positive(prices: np.ndarray) -> np.ndarray:
    known: np.ndarray = prices[np.isfinite(prices) & (prices > 0)]
    return known


def realized_vol_pct(prices: np.ndarray) -> float:
    """``sqrt(sum(log(p[i] / p[i-1]) ** 2)) × 100`` over the known (finite, positive) prices,
    in %, not annualised; 0 with fewer than two (``analytics.realized_volatility`` on numpy)."""
    p = _positive(prices)
    if len(p) < 2:
        return 0.0
    r = np.diff(np.log(p))
    return float(np.sqrt(np.dot(r, r)) * 100.0)


def volatility_spread_pct(prices: np.ndarray) -> float:
    """``(high - low) / low × 100`` over the known prices; 0 when none is known."""
    p = _positive(prices)
    if len(p) == 0:
        return 0.0
    low = float(p.min())
    return (float(p.max()) - low) / low * 100.0


def fmt_pct(value: float) -> str:
    return f"{value:.3f} %"


def cvd_decimals(view: MarketView) -> int:
    """Decimals for CVD values: 4 significant digits of the CVD, or of a typical size on the
    tape when that is larger (so a CVD near 0 does not grow ever more decimals)."""
    sizes = [t.qty for t in view.trades[-TAPE_ROWS:]]
    typical = float(np.median(sizes)) if sizes else 0.0
    return qty_decimals(max(abs(view.session.cvd), typical) or None)


def fmt_cvd(value: float, decimals: int) -> str:
    """Signed base-unit volume: ``"+12.3400"``, ``"-0.5000"``; zero is ``"0"`` plus decimals."""
    text = f"{value:+,.{decimals}f}"
    return text[1:] if float(text[1:].replace(",", "")) == 0 else text


def cvd_change(series: np.ndarray, started_at: float | None) -> float | None:
    """How much the session CVD moved over the window: newest minus oldest row, or the newest
    row alone when the session started (or was reset) inside the window."""
    if len(series) == 0:
        return None
    cvd = series[:, COL["cvd"]]
    if started_at is not None and started_at > series[0, COL["t"]]:
        return float(cvd[-1])
    return float(cvd[-1] - cvd[0])


def session_cards(view: MarketView, series: np.ndarray, window: str, decimals: int) -> list[Card]:
    """Session VWAP (delta: mid − VWAP), session CVD (delta: its change over the window), and
    the realized volatility and volatility spread of the mid over the chart window."""
    s = view.session
    mid = top_of_book(view.bids, view.asks).mid if view.synced else None
    vwap_delta = None if mid is None or s.vwap is None else fmt_signed(mid - s.vwap, decimals)
    qd = cvd_decimals(view)
    change = cvd_change(series, s.started_at)
    mids = series[:, COL["mid"]] if len(series) else np.empty(0)
    since = f"since {fmt_clock(s.started_at)} UTC" if s.started_at is not None else "no trade yet"
    return [
        Card(
            "Session VWAP",
            fmt_price(s.vwap, decimals),
            vwap_delta,
            "normal",
            f"Volume-weighted average price of the {s.trades:,} trades {since} (history "
            "from before the feed started is not counted). Delta: mid − VWAP.",
        ),
        Card(
            "Session CVD",
            fmt_cvd(s.cvd, qd),
            None if change is None else fmt_signed(change, qd, f" in {window}"),
            "normal",
            f"Cumulative volume delta {since}: buyer-initiated minus seller-initiated size, in "
            f"base units. Delta: its change over the chart window ({window}).",
        ),
        Card(
            f"Realized vol · {window}",
            fmt_pct(realized_vol_pct(mids)) if len(mids) else DASH,
            f"{len(_positive(mids)):,} mids",
            "off",
            "Square root of the sum of squared log returns of the mid over the chart window, "
            "in %, not annualised. Note: how many mid samples it covers.",
            "off",
        ),
        Card(
            f"Vol spread · {window}",
            fmt_pct(volatility_spread_pct(mids)) if len(mids) else DASH,
            f"session {fmt_pct(s.volatility_spread)}",
            "off",
            "(high − low) / low × 100 of the mid over the chart window. Note: the same over "
            "the session's trade prices.",
            "off",
        ),
    ]


def session_caption(view: MarketView, decimals: int) -> str:
    s = view.session
    if s.started_at is None or s.trades == 0:
        return "session: no trade yet"
    return (
        f"session since {fmt_clock(s.started_at)} UTC · {s.trades:,} trades · "
        f"high {fmt_price(s.high, decimals)} · low {fmt_price(s.low, decimals)}"
    )


def render_session(store: MarketStore, view: MarketView, cards_html: str, caption: str) -> None:
    """The four cards (``cards_html``, built once per tick for every tab), then the reset button
    with what the session covers (``caption``)."""
    left, right = st.columns([4, 1.15], gap="small", vertical_alignment="top")
    left.html(cards_html)
    with right:
        st.button(
            "Reset session",
            key=f"reset-{view.exchange}-{view.symbol}",
            icon=":material/restart_alt:",
            on_click=store.reset_session,
            args=(view.exchange, view.symbol),
            help=f"Starts VWAP, CVD, high/low and the candles of {view.symbol} on "
            f"{view.exchange} afresh, for every viewer of this server.",
        )
        st.caption(caption)
