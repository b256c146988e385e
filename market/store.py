"""MarketStore: the only shared mutable state between the worker thread and the readers.

The worker thread writes (books, trades, statuses); Streamlit sessions and the CLI read with
``snapshot()``, which copies under the lock and returns immutable values. Every container is a
bounded deque or a small dict keyed by market, so memory is bounded whatever the uptime.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from itertools import accumulate, islice
from operator import itemgetter
from types import MappingProxyType

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

_DEEPEST = max(max(IMBALANCE_DEPTHS), DEPTH_DELTA_LEVELS)
DEFAULT_SERIES_POINTS = 20_000  # at 10 points/s: the last ~33 minutes
DEFAULT_TRADES_KEPT = 1_000
DEFAULT_BOOK_DEPTH = 20
DEFAULT_SERIES_INTERVAL = 0.1  # at most one series point per market per 100 ms
DEFAULT_ALERTS_KEPT = 200  # whale alerts of every market, newest last (survive page reloads)
SESSION_CANDLES = 240  # one-minute candles kept per market (4 hours)
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
    taken_at: float
    version: int
    markets: Mapping[MarketKey, MarketView]
    statuses: Mapping[str, FeedStatus]
    alerts: tuple[WhaleAlert, ...] = ()  # every market's, newest last


# (exchange, symbol, the market's source then, the trades of one add_trades call)
TapEntry = tuple[str, str, Source, tuple[Trade, ...]]
DEFAULT_TAP_BATCHES = 200_000  # trade batches kept for the history writer between its visits


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


@dataclass(slots=True)
class _Market:
    exchange: str
    symbol: str
    series: deque[SeriesRow]
    trades: deque[Trade]
    source: Source = "live"
    bids: Levels = ()
    asks: Levels = ()
    update_id: int = 0
    updated_at: float | None = None
    synced: bool = False
    detail: str = "waiting for the first book"
    book_updates: int = 0
    trades_seen: int = 0
    resyncs: int = 0
    ticker: Ticker | None = None
    session: SessionStats = field(default_factory=SessionStats)
    session_started_at: float | None = None
    last_point_at: float = field(default=-math.inf)
    remote: SessionView | None = None  # a bus reader's market: the collector's session figures


class MarketStore:
    def __init__(
        self,
        *,
        series_points: int = DEFAULT_SERIES_POINTS,
        trades_kept: int = DEFAULT_TRADES_KEPT,
        depth: int = DEFAULT_BOOK_DEPTH,
        series_interval: float = DEFAULT_SERIES_INTERVAL,
        alerts_kept: int = DEFAULT_ALERTS_KEPT,
        whale_notional: float = DEFAULT_WHALE_NOTIONAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.depth = max(depth, max(IMBALANCE_DEPTHS))
        self.series_interval = series_interval
        self._series_points = series_points
        self._trades_kept = trades_kept
        self._clock = clock
        # Guards _markets, _statuses, _last_message_at and _version; nothing else.
        # Held only to copy or append: never while computing, never around I/O.
        self._lock = threading.Lock()
        self._markets: dict[MarketKey, _Market] = {}
        self._statuses: dict[str, FeedStatus] = {}
        self._last_message_at: dict[str, float] = {}
        self._alerts: deque[WhaleAlert] = deque(maxlen=alerts_kept)
        self._whale_default = whale_notional
        self._whale: dict[str, float] = {}  # symbol → notional threshold, overriding the default
        self._version = 0
        # The history tap (off until enable_history_tap): trade batches and alerts since the
        # history writer's last take_history; bounded, drops counted.
        self._tap: deque[TapEntry] | None = None
        self._tap_alerts: deque[tuple[Source, WhaleAlert]] = deque(maxlen=10_000)
        self._tap_dropped = 0

    # -- writer side (the worker thread) ------------------------------------------------------

    def _market(self, exchange: str, symbol: str) -> _Market:
        key = (exchange, symbol)
        market = self._markets.get(key)
        if market is None:
            market = _Market(
                exchange, symbol, deque(maxlen=self._series_points), deque(maxlen=self._trades_kept)
            )
            market.session = self._new_session(symbol)
            self._markets[key] = market
        return market

    def update_book(
        self,
        exchange: str,
        symbol: str,
        bids: Levels,
        asks: Levels,
        update_id: int,
        at: float,
        row: SeriesRow | None = None,
        updates: int = 1,
    ) -> None:
        """Publish a synced book's top levels (best first) and, at most every
        ``series_interval``, a series point (``row``, or one computed from the levels;
        ``NO_ROW``: none this time)."""
        if row is None:
            row = series_row(bids, asks, at)
        with self._lock:
            m = self._market(exchange, symbol)
            m.bids = bids
            m.asks = asks
            m.update_id = update_id
            m.updated_at = at
            m.synced = True
            m.detail = ""
            m.book_updates += updates  # coalesced updates count, each
            self._version += 1
            if row and at - m.last_point_at >= self.series_interval:
                m.last_point_at = at
                m.series.append((*row, m.session.cvd))

    def touch_book(self, exchange: str, symbol: str, update_id: int, at: float) -> bool:
        """The book changed below the levels published: only its id and time move. False
        when the market is not showing a synced book (publish it whole with ``update_book``)."""
        with self._lock:
            m = self._markets.get((exchange, symbol))
            if m is None or not m.synced:
                return False
            m.update_id = update_id
            m.updated_at = at
            m.book_updates += 1
            self._version += 1
            return True

    def add_trades(self, exchange: str, symbol: str, trades: Iterable[Trade]) -> None:
        batch = tuple(trades)
        if not batch:
            return
        with self._lock:
            m = self._market(exchange, symbol)
            m.trades.extend(batch)
            m.trades_seen += len(batch)
            session = m.session
            if m.session_started_at is None:
                m.session_started_at = batch[0].received_at or self._clock()
            # backfilled trades (history from before the session): shown, not counted
            for alert in session.add_all(batch):
                self._alerts.append(alert)
                if self._tap is not None:
                    self._tap_alerts.append((m.source, alert))
            tap = self._tap
            if tap is not None:  # the history writer's: one append per batch
                if len(tap) == tap.maxlen:
                    self._tap_dropped += len(tap[0][3])
                tap.append((exchange, symbol, m.source, batch))
            self._version += 1

    def _new_session(self, symbol: str) -> SessionStats:
        return SessionStats(
            self._whale.get(symbol, self._whale_default), 20, symbol, candles_kept=SESSION_CANDLES
        )

    def reset_session(self, exchange: str, symbol: str) -> None:
        """Start the session figures (VWAP, CVD, candles, high/low) of a market afresh."""
        with self._lock:
            m = self._markets.get((exchange, symbol))
            if m is not None:
                m.session = self._new_session(symbol)
                m.session_started_at = self._clock()
                self._version += 1

    def set_whale_threshold(self, notional: float, symbol: str | None = None) -> None:
        """Alert on trades of at least ``notional`` (quote units); one symbol or the default.
        Applies from the next trade; 0 turns alerts off."""
        if not (notional >= 0 and math.isfinite(notional)):
            raise ValueError(f"whale threshold must be a number >= 0, got {notional!r}")
        with self._lock:
            if symbol is None:
                self._whale_default = notional
            else:
                self._whale[symbol] = notional
            for m in self._markets.values():
                m.session.whale_threshold = self._whale.get(m.symbol, self._whale_default)
            self._version += 1

    @property
    def whale_default(self) -> float:
        """The threshold of every symbol without its own."""
        with self._lock:
            return self._whale_default

    def clear_whale_threshold(self, symbol: str) -> None:
        """``symbol`` goes back to the default threshold."""
        with self._lock:
            self._whale.pop(symbol, None)
            for m in self._markets.values():
                if m.symbol == symbol:
                    m.session.whale_threshold = self._whale_default
            self._version += 1

    def whale_threshold(self, symbol: str) -> float:
        with self._lock:
            return self._whale.get(symbol, self._whale_default)

    def update_ticker(self, exchange: str, symbol: str, ticker: Ticker) -> None:
        """Publish a market's 24 h statistics (already merged by the pipeline)."""
        with self._lock:
            self._market(exchange, symbol).ticker = ticker
            self._version += 1

    def mark_unsynced(
        self, exchange: str, symbol: str, detail: str, *, resync: bool = True
    ) -> None:
        """The book is being rebuilt (or cannot be): readers see ``synced=False`` and why."""
        with self._lock:
            m = self._market(exchange, symbol)
            m.synced = False
            m.detail = detail
            if resync:
                m.resyncs += 1
            self._version += 1

    def reset_market(self, exchange: str, symbol: str, source: Source, detail: str) -> None:
        """Forget a market's data, e.g. when it switches between live and simulated data."""
        with self._lock:
            m = self._market(exchange, symbol)
            m.source = source
            m.bids = m.asks = ()
            m.update_id = 0
            m.updated_at = None
            m.synced = False
            m.detail = detail
            m.series.clear()
            m.trades.clear()
            m.trades_seen = 0
            m.ticker = None
            m.session = self._new_session(symbol)
            m.session_started_at = None
            m.last_point_at = -math.inf
            m.remote = None
            self._version += 1

    def remove_market(self, exchange: str, symbol: str) -> None:
        with self._lock:
            self._markets.pop((exchange, symbol), None)
            self._version += 1

    def remove_status(self, exchange: str) -> None:
        """Forget an exchange's feed status (it is no longer watched)."""
        with self._lock:
            self._statuses.pop(exchange, None)
            self._last_message_at.pop(exchange, None)
            self._version += 1

    def set_status(self, status: FeedStatus, last_message_at: float | None = None) -> None:
        with self._lock:
            self._statuses[status.exchange] = status
            if last_message_at is not None:
                self._last_message_at[status.exchange] = last_message_at
            self._version += 1

    # -- bus reader side (market/bus/reader.py): the collector's values, as published --------

    def put_book(
        self,
        exchange: str,
        symbol: str,
        *,
        source: Source,
        bids: Levels,
        asks: Levels,
        update_id: int,
        at: float | None,
        synced: bool,
        detail: str,
        book_updates: int,
        resyncs: int,
    ) -> None:
        """A book as a collector published it (its counters too); a synced one adds a series
        point like ``update_book``."""
        row = series_row(bids, asks, at) if synced and at is not None else NO_ROW
        with self._lock:
            m = self._market(exchange, symbol)
            m.source = source
            m.bids, m.asks = bids, asks
            m.update_id = update_id
            m.updated_at = at
            m.synced = synced
            m.detail = detail
            m.book_updates = book_updates
            m.resyncs = resyncs
            self._version += 1
            if row and at is not None and at - m.last_point_at >= self.series_interval:
                m.last_point_at = at
                cvd = m.remote.cvd if m.remote is not None else m.session.cvd
                m.series.append((*row, cvd))

    def put_trades(
        self,
        exchange: str,
        symbol: str,
        trades: Iterable[Trade],
        seen: int,
        session: SessionView,
        *,
        reset: bool = False,
    ) -> None:
        """Trades and session figures as a collector published them (no local session);
        ``reset`` forgets the trades kept first (the collector's market started afresh)."""
        with self._lock:
            m = self._market(exchange, symbol)
            if reset:
                m.trades.clear()
            m.trades.extend(trades)
            m.trades_seen = seen
            m.remote = session
            self._version += 1

    def put_session(self, exchange: str, symbol: str, session: SessionView) -> None:
        with self._lock:
            self._market(exchange, symbol).remote = session
            self._version += 1

    def add_alerts(self, alerts: Iterable[WhaleAlert]) -> None:
        """Whale alerts computed elsewhere (a collector), newest last."""
        with self._lock:
            self._alerts.extend(alerts)
            self._version += 1

    def set_stale(self, exchange: str, symbol: str, detail: str) -> bool:
        """Show a market's book as not live (kept, greyed: ``synced=False`` and why); False
        when it already was not."""
        with self._lock:
            m = self._markets.get((exchange, symbol))
            if m is None or not m.synced:
                return False
            m.synced = False
            m.detail = detail
            self._version += 1
            return True

    # -- bus publisher side ---------------------------------------------------------------------

    def bus_views(
        self,
        trades_seen: Mapping[MarketKey, int],
        *,
        candles: int = 2,
        max_trades: int = 500,
        every: bool = False,
    ) -> StoreSnapshot:
        """Every market's book and counters, with only the trades after ``trades_seen`` (at
        most ``max_trades``); the last ``candles`` candles and the session's alerts of the
        markets with new trades (of all with ``every``); no series. Cheap enough to call every
        100 ms with hundreds of markets."""
        now = self._clock()
        views: dict[MarketKey, MarketView] = {}
        with self._lock:
            version = self._version
            for key, m in self._markets.items():
                new = m.trades_seen - trades_seen.get(key, 0)
                s = m.session
                copy = every or new > 0
                views[key] = _market_view(
                    m,
                    (),
                    _tail(m.trades, min(new, max_trades)) if new > 0 else (),
                    SessionView(
                        trades=s.trades,
                        vwap=s.vwap,
                        cvd=s.cvd,
                        high=s.high if s.trades else None,
                        low=s.low if s.trades else None,
                        volatility_spread=s.volatility_spread,
                        candles=tuple(s.minute.candles(candles)) if copy else (),
                        alerts=tuple(s.alerts) if copy else (),
                        whale_threshold=s.whale_threshold,
                        started_at=m.session_started_at,
                    ),
                )
            statuses, last_at = dict(self._statuses), dict(self._last_message_at)
        statuses = _aged(statuses, last_at, now)  # computed outside the lock
        return StoreSnapshot(now, version, MappingProxyType(views), MappingProxyType(statuses))

    # -- reader side --------------------------------------------------------------------------

    def statuses(self) -> dict[str, FeedStatus]:
        """Each exchange's status as last set (ages not recomputed): cheap, copies no books."""
        with self._lock:
            return dict(self._statuses)

    def snapshot(
        self,
        markets: Iterable[MarketKey] | None = None,
        *,
        series: bool = True,
        max_series_points: int | None = None,
        max_trades: int | None = None,
    ) -> StoreSnapshot:
        """An immutable copy. ``markets`` limits which markets get series and trades copied
        (every market still appears, with its book); ``series=False`` skips series entirely."""
        wanted = None if markets is None else set(markets)
        now = self._clock()
        views: dict[MarketKey, MarketView] = {}
        with self._lock:
            version = self._version
            for key, m in self._markets.items():
                full = wanted is None or key in wanted
                views[key] = _market_view(
                    m,
                    _tail(m.series, max_series_points) if (series and full) else (),
                    _tail(m.trades, max_trades) if full else _tail(m.trades, 1),
                    _session_view(m.session, m.session_started_at, full)
                    if m.remote is None
                    else _remote_view(m.remote, full),
                )
            statuses, last_at = dict(self._statuses), dict(self._last_message_at)
            alerts = tuple(self._alerts)
        statuses = _aged(statuses, last_at, now)  # computed outside the lock
        return StoreSnapshot(
            taken_at=now,
            version=version,
            markets=MappingProxyType(views),
            statuses=MappingProxyType(statuses),
            alerts=alerts,
        )

    # -- the history writer's side (market/history) ------------------------------------------

    def enable_history_tap(self, max_batches: int = DEFAULT_TAP_BATCHES) -> None:
        """Keep every trade batch and alert from now on for ``take_history`` (bounded)."""
        with self._lock:
            if self._tap is None:
                self._tap = deque(maxlen=max_batches)

    def take_history(self, after: Mapping[MarketKey, float]) -> HistoryTake:
        """Drain the tap and copy each market's series rows with ``t >= after[key]`` (every
        row for a market not in ``after``). Copies only, under the lock."""
        with self._lock:
            tap = self._tap
            trades: tuple[TapEntry, ...] = tuple(tap) if tap is not None else ()
            if tap is not None:
                tap.clear()
            alerts = tuple(self._tap_alerts)
            self._tap_alerts.clear()
            dropped, self._tap_dropped = self._tap_dropped, 0
            series: dict[MarketKey, tuple[SeriesRow, ...]] = {}
            sources: dict[MarketKey, Source] = {}
            for key, m in self._markets.items():
                sources[key] = m.source
                since = after.get(key)
                if since is None:
                    rows = tuple(m.series)
                else:
                    newer = []
                    for row in reversed(m.series):
                        if row[0] < since:
                            break
                        newer.append(row)
                    rows = tuple(reversed(newer))
                if rows:
                    series[key] = rows
            statuses = dict(self._statuses)
        return HistoryTake(trades, dropped, alerts, series, sources, statuses)


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


def _session_view(s: SessionStats, started_at: float | None, full: bool) -> SessionView:
    """Copy under the store's lock: a few numbers, and the candles only when ``full``."""
    return SessionView(
        trades=s.trades,
        vwap=s.vwap,
        cvd=s.cvd,
        high=s.high if s.trades else None,
        low=s.low if s.trades else None,
        volatility_spread=s.volatility_spread,
        candles=tuple(s.minute.candles()) if full else tuple(s.minute.candles(5)),
        alerts=tuple(s.alerts),
        whale_threshold=s.whale_threshold,
        started_at=started_at,
    )


def _remote_view(view: SessionView, full: bool) -> SessionView:
    return view if full or len(view.candles) <= 5 else replace(view, candles=view.candles[-5:])


def _market_view(
    m: _Market, series: tuple[SeriesRow, ...], trades: tuple[Trade, ...], session: SessionView
) -> MarketView:
    """An immutable view of ``m`` with the given copies (the caller holds the store's lock)."""
    return MarketView(
        exchange=m.exchange,
        symbol=m.symbol,
        source=m.source,
        bids=m.bids,
        asks=m.asks,
        update_id=m.update_id,
        updated_at=m.updated_at,
        synced=m.synced,
        detail=m.detail,
        book_updates=m.book_updates,
        series=series,
        trades=trades,
        trades_seen=m.trades_seen,
        resyncs=m.resyncs,
        ticker=m.ticker,
        session=session,
    )


def _aged(
    statuses: Mapping[str, FeedStatus], last_at: Mapping[str, float], now: float
) -> dict[str, FeedStatus]:
    """The statuses with each one's last-message age as of ``now`` (a new dict)."""
    out = dict(statuses)
    for name, status in out.items():
        at = last_at.get(name)
        if at is not None:
            out[name] = replace(status, last_message_age_s=max(0.0, now - at))
    return out


def _tail(items: deque[SeriesRow] | deque[Trade], n: int | None) -> tuple:  # type: ignore[type-arg]
    """The last ``n`` items (all for None), copying only those."""
    if n is None or n >= len(items):
        return tuple(items)
    if n <= 0:
        return ()
    if n <= len(items) // 2:
        return tuple(islice(reversed(items), n))[::-1]
    return tuple(islice(items, len(items) - n, None))
