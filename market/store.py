"""MarketStore: the only shared mutable state between the worker thread and the readers.

The worker thread writes (books, trades, statuses); Streamlit sessions and the CLI read with
``snapshot()``, which copies under the lock and returns the immutable views of
``market.views`` (``StoreSnapshot``, ``MarketView``, ``SessionView``, ``HistoryTake``). Every
container is a bounded deque or a small dict keyed by market, so memory is bounded whatever the
uptime.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from market.analytics import SessionStats, WhaleAlert
from market.events import FeedStatus, Levels, Source, Ticker, Trade
from market.settings import DEFAULT_WHALE_NOTIONAL
from market.views import (
    IMBALANCE_DEPTHS,
    NO_ROW,
    HistoryTake,
    MarketKey,
    MarketView,
    SeriesRow,
    SessionView,
    StoreSnapshot,
    TapEntry,
    remote_view,
    rows_since,
    series_row,
    session_view,
    tail,
)

DEFAULT_SERIES_POINTS = 20_000  # at 10 points/s: the last ~33 minutes
DEFAULT_TRADES_KEPT = 1_000
DEFAULT_BOOK_DEPTH = 20
DEFAULT_SERIES_INTERVAL = 0.1  # at most one series point per market per 100 ms
DEFAULT_ALERTS_KEPT = 200  # whale alerts of every market, newest last (survive page reloads)
DEFAULT_TAP_BATCHES = 200_000  # trade batches kept for the history writer between its visits
SESSION_CANDLES = 240  # one-minute candles kept per market (4 hours)


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

    def view(
        self, series: tuple[SeriesRow, ...], trades: tuple[Trade, ...], session: SessionView
    ) -> MarketView:
        """An immutable view with the given copies (the caller holds the store's lock)."""
        return MarketView(
            exchange=self.exchange, symbol=self.symbol, source=self.source, bids=self.bids,
            asks=self.asks, update_id=self.update_id, updated_at=self.updated_at,
            synced=self.synced, detail=self.detail, book_updates=self.book_updates,
            series=series, trades=trades, trades_seen=self.trades_seen, resyncs=self.resyncs,
            ticker=self.ticker, session=session,
        )  # fmt: skip


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
        # Guards every attribute below (the markets, statuses, alerts, whale thresholds, the
        # history tap, the version). Held only to copy or append: never while computing, never
        # around I/O.
        self._lock = threading.Lock()
        self._markets: dict[MarketKey, _Market] = {}
        self._statuses: dict[str, FeedStatus] = {}
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
        """The market, created empty the first time (the caller holds the lock)."""
        market = self._markets.get((exchange, symbol))
        return self._new_market(exchange, symbol) if market is None else market

    def _new_market(self, exchange: str, symbol: str) -> _Market:
        """A fresh, empty market in place of any before (the caller holds the lock)."""
        market = self._markets[exchange, symbol] = _Market(
            exchange, symbol, deque(maxlen=self._series_points), deque(maxlen=self._trades_kept)
        )
        market.session = self._new_session(symbol)
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
        """Forget a market's data, e.g. when it switches between live and simulated data
        (its counts of book updates and resyncs go on)."""
        with self._lock:
            old = self._markets.get((exchange, symbol))
            m = self._new_market(exchange, symbol)
            m.source, m.detail = source, detail
            if old is not None:
                m.book_updates, m.resyncs = old.book_updates, old.resyncs
            self._version += 1

    def remove_market(self, exchange: str, symbol: str) -> None:
        with self._lock:
            self._markets.pop((exchange, symbol), None)
            self._version += 1

    def remove_status(self, exchange: str) -> None:
        """Forget an exchange's feed status (it is no longer watched)."""
        with self._lock:
            self._statuses.pop(exchange, None)
            self._version += 1

    def set_status(self, status: FeedStatus) -> None:
        """Publish an exchange's status; one without a ``last_message_at`` keeps the time of
        the last message known for that exchange."""
        with self._lock:
            known = self._statuses.get(status.exchange)
            at = None if known is None else known.last_message_at
            if status.last_message_at is None and at is not None:
                status = replace(status, last_message_at=at)
            self._statuses[status.exchange] = status
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
                copy = every or new > 0
                views[key] = m.view(
                    (),
                    tail(m.trades, min(new, max_trades)) if new > 0 else (),
                    session_view(
                        m.session,
                        m.session_started_at,
                        candles=candles if copy else 0,
                        alerts=copy,
                    ),
                )
            statuses = dict(self._statuses)
        return StoreSnapshot(now, version, MappingProxyType(views), MappingProxyType(statuses))

    # -- reader side --------------------------------------------------------------------------

    def statuses(self) -> dict[str, FeedStatus]:
        """Each exchange's status as last set: cheap, copies no books."""
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
                views[key] = m.view(
                    tail(m.series, max_series_points) if (series and full) else (),
                    tail(m.trades, max_trades) if full else tail(m.trades, 1),
                    session_view(m.session, m.session_started_at, candles=None if full else 5)
                    if m.remote is None
                    else remote_view(m.remote, full),
                )
            statuses = dict(self._statuses)
            alerts = tuple(self._alerts)
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
                rows = rows_since(m.series, after.get(key))
                if rows:
                    series[key] = rows
            statuses = dict(self._statuses)
        return HistoryTake(trades, dropped, alerts, series, sources, statuses)
