"""The immutable views of the market store (``market.store.MarketStore``), and the pure
functions that build them.

``MarketStore.snapshot()`` hands readers a ``StoreSnapshot``: one ``MarketView`` a market
(its book, series, trades and ``SessionView``) and each exchange's ``FeedStatus``;
``take_history()`` hands the history writer a ``HistoryTake``. Every one is frozen and holds
tuples only, so a reader can keep it as long as it likes while the store moves on. A series
row is a plain tuple of floats in ``SERIES_COLUMNS`` order, built by ``series_row``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from itertools import accumulate, islice
from operator import itemgetter
from typing import TypeVar

from market.analytics import DEPTH_DELTA_LEVELS, Candle, SessionStats, WhaleAlert
from market.events import FeedStatus, Levels, Source, Ticker, Trade
from market.settings import DEFAULT_WHALE_NOTIONAL

MarketKey = tuple[str, str]  # (exchange, symbol)

IMBALANCE_DEPTHS = (1, 3, 5, 10, 20)
# Column order of a series row; the page turns rows into numpy columns by these indexes.
SERIES_COLUMNS = (
    *("t", "best_bid", "best_ask", "mid", "spread", "spread_bps"),
    *(f"imbalance_{n}" for n in IMBALANCE_DEPTHS),
    *("depth_delta", "cvd"),  # top-20 bid volume - ask volume; the session's trade CVD then
)
SeriesRow = tuple[float, ...]
NO_ROW: SeriesRow = ()  # update_book(row=NO_ROW): the caller says no series point is due

_DEEPEST = max(max(IMBALANCE_DEPTHS), DEPTH_DELTA_LEVELS)  # levels a series row looks at
NAN = math.nan


@dataclass(frozen=True, slots=True)
class SessionView:
    """Trade figures since the feed started (or the last reset), backfilled trades excluded."""

    trades: int = 0
    vwap: float | None = None
    cvd: float = 0.0
    high: float | None = None
    low: float | None = None
    volatility_spread: float = 0.0  # (high - low) / low × 100; 0 when unknown
    candles: tuple[Candle, ...] = ()  # one-minute, by trade time, oldest first
    alerts: tuple[WhaleAlert, ...] = ()  # newest last
    whale_threshold: float = DEFAULT_WHALE_NOTIONAL
    started_at: float | None = None


@dataclass(frozen=True, slots=True)
class MarketView:
    """An immutable copy of one market, as of the snapshot."""

    exchange: str
    symbol: str
    source: Source
    bids: Levels  # best first
    asks: Levels  # best first
    update_id: int
    updated_at: float | None  # time of the last book update (s since epoch)
    synced: bool
    detail: str  # why the book is not synced, or ""
    book_updates: int
    series: tuple[SeriesRow, ...]
    trades: tuple[Trade, ...]  # oldest first
    trades_seen: int
    resyncs: int
    ticker: Ticker | None = None  # the venue's 24 h statistics, merged; None until the first
    session: SessionView = SessionView()

    @property
    def last_trade(self) -> Trade | None:
        return self.trades[-1] if self.trades else None


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    """Every market and feed status as of ``taken_at`` (the store's clock): a feed's ages
    are ``status.last_message_age(taken_at)`` and ``status.next_retry_in(taken_at)``."""

    taken_at: float
    version: int
    markets: Mapping[MarketKey, MarketView]
    statuses: Mapping[str, FeedStatus]
    alerts: tuple[WhaleAlert, ...] = ()  # every market's, newest last


# (exchange, symbol, the market's source then, the trades of one add_trades call)
TapEntry = tuple[str, str, Source, tuple[Trade, ...]]


@dataclass(frozen=True, slots=True)
class HistoryTake:
    """What is new for the history writer (``MarketStore.take_history``): every trade batch
    and whale alert since the last take, the series rows from ``after`` on, the statuses."""

    trades: tuple[TapEntry, ...]
    trades_dropped: int  # trades the tap had to drop (full) since the last take
    alerts: tuple[tuple[Source, WhaleAlert], ...]
    series: Mapping[MarketKey, tuple[SeriesRow, ...]]
    sources: Mapping[MarketKey, Source]  # every market, and its source now
    statuses: Mapping[str, FeedStatus]


def series_row(bids: Levels, asks: Levels, at: float) -> SeriesRow:
    """One series point from a book: the columns of ``SERIES_COLUMNS`` but the last (the
    store appends the session's CVD); NaN where unknown. Pure.

    The same values as ``metrics.top_of_book`` / ``metrics.imbalances`` /
    ``analytics.depth_delta``, in one pass over each side: this runs on most book updates.
    """
    # C-level passes (map, accumulate): the same sums in the same order
    bid_cum = list(accumulate(map(_qty, bids[:_DEEPEST])))
    ask_cum = list(accumulate(map(_qty, asks[:_DEEPEST])))
    nb, na = len(bid_cum), len(ask_cum)
    if nb and na:
        bb, ba = bids[0][0], asks[0][0]
        mid = (bb + ba) / 2.0
        spread = ba - bb
        bps = spread / mid * 10_000.0 if mid > 0 else NAN
    else:
        bb = bids[0][0] if bids else NAN
        ba = asks[0][0] if asks else NAN
        mid = spread = bps = NAN
    row = [at, bb, ba, mid, spread, bps]
    if nb == _DEEPEST and na == _DEEPEST:  # the usual full book: every depth is there
        for i in _DEPTH_INDEXES:
            b = bid_cum[i]
            a = ask_cum[i]
            total = b + a
            row.append((b - a) / total if total > 0 else NAN)
        row.append(bid_cum[DEPTH_DELTA_LEVELS - 1] - ask_cum[DEPTH_DELTA_LEVELS - 1])
        return tuple(row)
    for n in IMBALANCE_DEPTHS:
        b = bid_cum[min(n, nb) - 1] if nb else 0.0
        a = ask_cum[min(n, na) - 1] if na else 0.0
        total = b + a
        row.append((b - a) / total if total > 0 else NAN)
    b20 = bid_cum[min(DEPTH_DELTA_LEVELS, nb) - 1] if nb else 0.0
    a20 = ask_cum[min(DEPTH_DELTA_LEVELS, na) - 1] if na else 0.0
    row.append(b20 - a20)
    return tuple(row)


_qty = itemgetter(1)
_DEPTH_INDEXES = tuple(n - 1 for n in IMBALANCE_DEPTHS)


def session_view(
    s: SessionStats, started_at: float | None, *, candles: int | None, alerts: bool = True
) -> SessionView:
    """A copy of a market's session figures (the caller holds the store's lock): a few
    numbers, the last ``candles`` candles (all for None, none for 0), the alerts if
    ``alerts``."""
    return SessionView(
        trades=s.trades,
        vwap=s.vwap,
        cvd=s.cvd,
        high=s.high if s.trades else None,
        low=s.low if s.trades else None,
        volatility_spread=s.volatility_spread,
        candles=tuple(s.minute.candles(candles)),
        alerts=tuple(s.alerts) if alerts else (),
        whale_threshold=s.whale_threshold,
        started_at=started_at,
    )


def remote_view(view: SessionView, full: bool) -> SessionView:
    """A collector's session figures as a snapshot shows them: the last 5 candles unless
    ``full``."""
    return view if full or len(view.candles) <= 5 else replace(view, candles=view.candles[-5:])


def rows_since(rows: deque[SeriesRow], since: float | None) -> tuple[SeriesRow, ...]:
    """The series rows with ``t >= since`` (every row for None), oldest first; walks back
    from the newest only as far as it must."""
    if since is None:
        return tuple(rows)
    newer = []
    for row in reversed(rows):
        if row[0] < since:
            break
        newer.append(row)
    return tuple(reversed(newer))


_Item = TypeVar("_Item")


def tail(items: deque[_Item], n: int | None) -> tuple[_Item, ...]:
    """The last ``n`` items (all for None), copying only those."""
    if n is None or n >= len(items):
        return tuple(items)
    if n <= 0:
        return ()
    if n <= len(items) // 2:
        return tuple(islice(reversed(items), n))[::-1]
    return tuple(islice(items, len(items) - n, None))
