"""The Market page's history: a range selector (live window, 1 h, 24 h, 7 d, dates) that reads
the stored candles and one-second series (MARKET_DB) and joins the live tail to them, and the
history writer's status (ok, or failing and why, with what is pending).

Pure helpers (``range_ms``, ``history_candles``, ``series_rows``) build what is drawn; the
figures are the page's own pure builders. Only the range is a per-user choice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import streamlit as st

from app.components.charts.candles import build_candles_figure
from app.components.charts.price import build_price_figure
from app.components.dashboard import PLOTLY_CONFIG
from app.components.fmt import esc
from app.components.series import series_array
from app.components.sidebar import Prefs
from app.components.status import source_label
from app.components.theme import MUTED, RED
from app.runtime import history_of
from market.analytics import MINUTE_MS, Candle, aggregate_candles
from market.history.db import Database, HistoryError
from market.history.reader import chart_candles, read_rows
from market.history.writer import HistoryWriter, WriterStatus
from market.views import IMBALANCE_DEPTHS, MarketView, SeriesRow
from market.worker import Worker

RANGES = ("Live window", "1 h", "24 h", "7 d", "Dates")
SPAN_MS = {"1 h": 3_600_000, "24 h": 86_400_000, "7 d": 7 * 86_400_000}
# the candle interval drawn per range: about 60-700 candles
INTERVAL = {"1 h": ("1m", MINUTE_MS), "24 h": ("5m", 5 * MINUTE_MS), "7 d": ("15m", 15 * MINUTE_MS)}
QUIET = f"color:{MUTED};font-size:12px"
LOUD = f"color:{RED};border:1px solid {RED};border-radius:6px;padding:6px 10px"
MAX_SERIES_ROWS = 200_000  # one-second rows read at most (~2.3 days); the figure decimates


def range_ms(
    choice: str, now_ms: int, dates: tuple[date, date] | None = None
) -> tuple[int, int] | None:
    """``[since, until)`` in epoch ms for a range (None: the live window, no history read)."""
    if choice in SPAN_MS:
        return now_ms - SPAN_MS[choice], now_ms + 1
    if choice == "Dates" and dates is not None:
        start = datetime.combine(dates[0], time.min, UTC)
        end = datetime.combine(dates[1], time.min, UTC) + timedelta(days=1)
        return int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    return None


def history_candles(
    stored: Sequence[Candle], live_tail: Sequence[Candle], until_ms: int
) -> list[Candle]:
    """The stored candles, then the live tail (the session's, joined to the minute it
    continues) from its first minute on, within ``until_ms``. Pure."""
    if not live_tail:
        return list(stored)
    first = live_tail[0].open_ms
    return [c for c in stored if c.open_ms < first] + [c for c in live_tail if c.open_ms < until_ms]


def series_rows(rows: Sequence[Sequence[Any]]) -> list[SeriesRow]:
    """``read_rows(…, "series", …)`` rows as the store's series rows (``SERIES_COLUMNS``:
    seconds, bid, ask, mid, spread, spread in bps, imbalances, depth delta, CVD unknown)."""
    out: list[SeriesRow] = []
    nan = math.nan
    for r in rows:
        bid, ask, mid, spread = (nan if v is None else float(v) for v in r[4:8])
        imbalances = [nan if v is None else float(v) for v in r[8 : 8 + len(IMBALANCE_DEPTHS)]]
        dd = nan if r[13] is None else float(r[13])
        bps = spread / mid * 10_000.0 if mid > 0 else nan
        out.append((int(r[3]) / 1000.0, bid, ask, mid, spread, bps, *imbalances, dd, nan))
    return out


def status_html(status: WriterStatus | None) -> str:
    """One line: where history goes and how it is doing (red when failing)."""
    if status is None:
        return f'<div class="history-status" style="{QUIET}">history off (MARKET_DB=none)</div>'
    extra = f" · {status.pending_rows} rows pending" if status.pending_rows else ""
    if status.dropped_rows:
        extra += f" · {status.dropped_rows} dropped"
    for why in status.backfill[:2]:
        extra += f" · {why}"
    if status.state == "failing":
        text = f"history failing: {status.detail}{extra}"
        return f'<div class="history-status bad" style="{LOUD}">{esc(text)}</div>'
    text = f"history: {status.detail}{extra}"
    return f'<div class="history-status" style="{QUIET}">{esc(text)}</div>'


@st.cache_data(ttl=2.0, max_entries=32, show_spinner=False)
def _read(
    url: str,
    kind: str,
    exchange: str,
    symbol: str,
    since: int,
    until: int,
    sources: tuple[str, ...],
) -> list[tuple[Any, ...]]:
    """Stored rows (cached 2 s: every open tab on the same range reads the database once)."""
    db = Database(url, timeout=2.0)
    try:
        limit = MAX_SERIES_ROWS if kind == "series" else 100_000
        return read_rows(db, kind, exchange, symbol, since, until, sources, limit)[1]
    finally:
        db.close()


def render_history(worker: Worker, prefs: Prefs) -> None:
    """The range selector and, for a stored range, its candles and series; always the status."""
    writer = history_of(worker)
    choice = st.segmented_control(
        "History", RANGES, default=RANGES[0], key="history_range", label_visibility="collapsed"
    )
    dates = None
    if choice == "Dates":
        today = datetime.now(UTC).date()
        picked = st.date_input(
            "Dates (UTC)", (today - timedelta(days=1), today), key="history_dates"
        )
        if isinstance(picked, tuple) and len(picked) == 2:
            dates = (picked[0], picked[1])
    st.html(status_html(writer.status() if writer is not None else None))
    span = range_ms(str(choice or RANGES[0]), int(datetime.now(UTC).timestamp() * 1000), dates)
    if span is None or writer is None:
        return
    _draw(writer, worker, prefs, str(choice), span)


def _draw(
    writer: HistoryWriter, worker: Worker, prefs: Prefs, choice: str, span: tuple[int, int]
) -> None:
    key = (prefs.exchange, prefs.symbol)
    snap = worker.store.snapshot(markets=[key], max_trades=0)
    view: MarketView | None = snap.markets.get(key)
    source = view.source if view is not None else "live"
    label = source_label(view, snap.statuses.get(prefs.exchange))
    # live data joins the venue's backfill; simulated and replayed data stand alone
    sources = ("live", "venue") if source == "live" else (source,)
    since, until = span
    try:
        rows = _read(writer.url.url, "candles", *key, since, until, sources)
        stored_series = _read(writer.url.url, "series", *key, since, until, (source,))
    except HistoryError as exc:
        st.html(
            f'<div class="history-status bad" style="{LOUD}">history cannot be read: '
            f"{esc(str(exc))}</div>"
        )
        return
    stored, _used = chart_candles(rows, prefer=source)
    tail: list[Candle] = []
    series = series_rows(stored_series)
    if view is not None:
        tail = writer.joined_candles(view.exchange, view.symbol, source, view.session.candles)
        last = series[-1][0] if series else -math.inf
        series += [r for r in view.series if last < r[0] < until / 1000.0]
    timeframe, interval = INTERVAL.get(choice, ("15m", 15 * MINUTE_MS))
    if choice == "Dates":
        days = (until - since) / 86_400_000
        timeframe, interval = ("5m", 5 * MINUTE_MS) if days <= 2 else ("1h", 60 * MINUTE_MS)
    candles = [c for c in history_candles(stored, tail, until) if c.open_ms >= since]
    drawn = aggregate_candles(candles, interval) if interval > MINUTE_MS else candles
    st.plotly_chart(
        build_candles_figure(
            drawn, timeframe=timeframe, interval_ms=interval, exchange=prefs.exchange,
            symbol=prefs.symbol, simulated=label,
        ),
        key=f"history-candles-{prefs.exchange}-{prefs.symbol}", theme=None, config=PLOTLY_CONFIG,
    )  # fmt: skip
    st.plotly_chart(
        build_price_figure(
            series_array(series), exchange=prefs.exchange, symbol=prefs.symbol,
            depth=prefs.depth, simulated=label,
        ),
        key=f"history-series-{prefs.exchange}-{prefs.symbol}", theme=None, config=PLOTLY_CONFIG,
    )  # fmt: skip
