"""HistoryWriter: a thread that copies what is new in the ``MarketStore`` to the database.

Every ``interval`` (1 s) it takes what is new from the store (``MarketStore.take_history``:
a copy under the store's lock, nothing else), then, outside any store lock:

- builds one-minute candles from every trade (open, high, low, close, volume, price × size,
  trade count, buy and sell volume); the current minute's candle is rewritten (upserted) until
  it closes. A minute a previous run already stored is continued, not overwritten;
- keeps the first series row of each second (best bid, ask, mid, spread, imbalances, depth
  delta), every whale alert and every change of a feed's (state, detail);
- writes them in one transaction. ``stop()`` flushes what is pending.

A database that cannot be opened or written does not stop anything else: ``status()`` says
``failing`` and why, the rows stay pending and the write is retried with backoff (1 s doubling
to 30 s). Pending rows are bounded: past ``MAX_PENDING_SERIES`` one-second rows (about 28 h of
one market, 17 min of 100) the oldest are dropped and counted; candles are pending by key (one
row per market and minute, ``MAX_PENDING_CANDLES`` at most, oldest dropped past it), alerts and
status changes ``MAX_PENDING_EVENTS`` each. ``status().dropped_rows`` counts every drop.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from market.analytics import MINUTE_MS, Candle
from market.events import FeedStatus
from market.history.backfill import Backfiller
from market.history.db import (
    INSERT_ALERT,
    INSERT_SERIES,
    INSERT_STATUS,
    UPSERT_CANDLE,
    Database,
    HistoryError,
    clean,
)
from market.settings import DbUrl, Settings, parse_db_url
from market.store import MarketStore
from market.venues import VENUES
from market.venues.base import Kline
from market.views import SERIES_COLUMNS, HistoryTake, MarketKey

log = logging.getLogger(__name__)

MAX_PENDING_SERIES = 100_000
MAX_PENDING_CANDLES = 50_000
MAX_PENDING_EVENTS = 10_000
PRIOR_CANDLES = 240  # stored candles loaded per market to join the session's (4 hours)
RETRY_INITIAL_S = 1.0
RETRY_CAP_S = 30.0
SWEEP_EVERY_S = 3_600.0
DAY_MS = 86_400_000

CandleKey = tuple[str, str, str, int]  # (exchange, symbol, source, open_ms)
State = Literal["starting", "ok", "failing", "stopped"]

_SERIES_INDEX = tuple(
    SERIES_COLUMNS.index(name)
    for name in (
        "best_bid",
        "best_ask",
        "mid",
        "spread",
        *(f"imbalance_{n}" for n in (1, 3, 5, 10, 20)),
        "depth_delta",
    )
)


@dataclass(frozen=True, slots=True)
class WriterStatus:
    """The history writer's health, as the page and the CLI show it."""

    state: State
    detail: str
    url: str  # MARKET_DB, password hidden
    pending_rows: int
    dropped_rows: int
    written_rows: int
    lag_s: float  # age of the oldest row not yet written (0: nothing pending)
    backfill: tuple[str, ...] = ()  # why each failed venue backfill failed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Acc:
    """One minute's candle being built (the writer thread's own)."""

    __slots__ = (
        "based",
        "buy",
        "close",
        "high",
        "low",
        "notional",
        "open",
        "sell",
        "trades",
        "volume",
    )

    def __init__(self, price: float) -> None:
        self.open = self.high = self.low = self.close = price
        self.volume = self.notional = self.buy = self.sell = 0.0
        self.trades = 0
        self.based = False  # a row stored before this run has been merged in (or there is none)

    def add(self, price: float, qty: float, buy: bool) -> None:
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        self.close = price
        self.volume += qty
        self.notional += price * qty
        self.trades += 1
        if buy:
            self.buy += qty
        else:
            self.sell += qty

    def merge_before(self, row: Sequence[Any]) -> None:
        """``row`` (open, high, low, close, volume, notional, trades, buy, sell) came first."""
        o, h, lo, _c, v, n, t, b, s = row
        self.open = o
        self.high = max(self.high, h)
        self.low = min(self.low, lo)
        self.volume += v
        self.notional += n or 0.0  # NULL only in venue rows, never merged here
        self.trades += int(t or 0)
        self.buy += b or 0.0
        self.sell += s or 0.0


def join_candles(stored: Sequence[Candle], session: Sequence[Candle]) -> list[Candle]:
    """Stored candles (from before this session, oldest first) then the session's; the minute
    both have is one candle (the stored part came first). Pure."""
    if not session:
        return list(stored)
    first = session[0].open_ms
    out = [c for c in stored if c.open_ms < first]
    boundary = next((c for c in stored if c.open_ms == first), None)
    if boundary is None:
        return out + list(session)
    s = session[0]
    joined = Candle(
        first,
        boundary.open,
        max(boundary.high, s.high),
        min(boundary.low, s.low),
        s.close,
        boundary.volume + s.volume,
        boundary.trades + s.trades,
        boundary.notional + s.notional,
    )
    return [*out, joined, *session[1:]]


class HistoryWriter:
    """The thread that keeps the store's history in ``MARKET_DB`` (see the module docstring)."""

    def __init__(
        self,
        store: MarketStore,
        url: DbUrl | str,
        *,
        interval: float = 1.0,
        series_days: float = 7.0,
        candle_days: float = 0.0,
        clock: Callable[[], float] = time.time,
        retry_initial: float = RETRY_INITIAL_S,
        retry_cap: float = RETRY_CAP_S,
        db_timeout: float = 5.0,
        max_series: int = MAX_PENDING_SERIES,
    ) -> None:
        self.store = store
        store.enable_history_tap()
        self.url = parse_db_url(url) if isinstance(url, str) else url
        self.interval = interval
        self.series_days = series_days
        self.candle_days = candle_days
        self._clock = clock
        self._retry_initial = retry_initial
        self._retry_cap = retry_cap
        self._db_timeout = db_timeout
        self._max_series = max_series
        self._started_minute = _minute(int(clock() * 1000))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.backfill: Backfiller | None = None  # set before start(): asks for new markets
        self._live: set[MarketKey] = set()
        # The writer thread's own (never touched by another thread):
        self._db: Database | None = None
        self._acc: dict[CandleKey, _Acc] = {}
        self._newest: dict[tuple[str, str, str], int] = {}  # market+source → newest minute
        self._pruned: dict[tuple[str, str, str], int] = {}  # … → newest minute forgotten
        self._series_after: dict[MarketKey, float] = {}
        self._sources: Mapping[MarketKey, str] = {}
        self._last_status: dict[str, tuple[str, str, str]] = {}
        self._retry_delay = retry_initial
        self._next_attempt = 0.0
        self._next_sweep = 0.0
        self._prior_loaded: set[tuple[str, str, str]] = set()
        # Guards everything below: the pending rows, the prior candles and the status.
        self._lock = threading.Lock()
        self._candles: dict[CandleKey, float] = {}  # dirty candle keys → when first dirty
        self._venue: dict[CandleKey, tuple[Any, ...]] = {}  # backfilled rows (their values)
        self._series: deque[tuple[float, tuple[Any, ...]]] = deque()  # (collected at, row)
        self._alerts: deque[tuple[float, tuple[Any, ...]]] = deque()
        self._statuses: deque[tuple[float, tuple[Any, ...]]] = deque()
        # market+source → open_ms → (stored candle, of this source rather than the venue's)
        self._prior: dict[tuple[str, str, str], dict[int, tuple[Candle, bool]]] = {}
        self._state: State = "starting"
        self._detail = f"opening {self.url.shown}"
        self._dropped = 0
        self._written = 0

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> HistoryWriter:
        self._thread = threading.Thread(target=self._run, name="market-history", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after one last collect and flush (tried even while backing off)."""
        if self.backfill is not None:
            self.backfill.stop()  # first: what it fetched is in the last flush
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.cycle()
            self.cycle(final=True)
        except Exception:  # a bug: say so on the page rather than die silently
            log.exception("history writer failed")
            with self._lock:
                self._state, self._detail = "failing", "history writer crashed (see the log)"
            return
        finally:
            if self._db is not None:
                self._db.close()
                self._db = None
        with self._lock:
            if self._state == "ok":
                self._state, self._detail = "stopped", "stopped; everything written"

    # -- one cycle (the writer thread) --------------------------------------------------------

    def cycle(self, final: bool = False) -> None:
        """Collect what is new, then write it if the database is (or can now be) reached."""
        now = self._clock()
        self._collect(self.store.take_history(self._series_after), now)
        if not final and now < self._next_attempt:
            return
        try:
            db = self._open()
            self._load_priors(db)
            self._flush(db, now)
            if now >= self._next_sweep:
                self._sweep(db, now)
                self._next_sweep = now + SWEEP_EVERY_S
        except HistoryError as exc:
            self._failed(str(exc), now)
            return
        self._retry_delay = self._retry_initial
        self._next_attempt = 0.0
        with self._lock:
            self._state, self._detail = "ok", f"writing to {self.url.shown}"

    def _open(self) -> Database:
        if self._db is None:
            self._db = Database(self.url, timeout=self._db_timeout)
        return self._db

    def _failed(self, reason: str, now: float) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        delay = self._retry_delay
        self._next_attempt = now + delay
        self._retry_delay = min(delay * 2, self._retry_cap)
        with self._lock:
            was = self._state
            self._state = "failing"
            self._detail = f"{reason[:160]} — retrying in {delay:g} s; the live view goes on"
        if was != "failing":
            log.warning("history: %s; retrying in %g s", reason, delay)

    def _collect(self, take: HistoryTake, now: float) -> None:
        self._sources = take.sources
        live = {key for key, source in take.sources.items() if source == "live"}
        if self.backfill is not None:
            for exchange, symbol in sorted(live - self._live):  # started, or a symbol added
                self.backfill.request(exchange, symbol)
        self._live = live
        touched: list[CandleKey] = []
        key: CandleKey
        for exchange, symbol, source, batch in take.trades:
            for t in batch:
                if t.backfill:  # fetched history of the feed's own: not this run's trades
                    continue
                key = (exchange, symbol, source, t.ts_ms - t.ts_ms % MINUTE_MS)
                acc = self._acc.get(key)
                if acc is None:
                    acc = self._acc[key] = _Acc(t.price)
                    market = key[:3]
                    if key[3] > self._newest.get(market, -1):
                        self._newest[market] = key[3]
                    base_possible = key[3] <= self._started_minute or key[3] <= self._pruned.get(
                        market, -1
                    )
                    acc.based = not base_possible or source == "replay"  # replays overwrite
                acc.add(t.price, t.qty, t.side == "buy")
                touched.append(key)
        series = []
        for mkey, rows in take.series.items():
            after = self._series_after.get(mkey, -math.inf)
            source = take.sources.get(mkey, "live")
            for row in rows:
                at = row[0]
                if at < after or not math.isfinite(at):
                    continue
                after = math.floor(at) + 1.0  # the first row of each second
                values = (clean(row[i]) for i in _SERIES_INDEX)
                series.append((*mkey, source, int(at * 1000), *values))
            self._series_after[mkey] = after
        alerts = [
            (a.exchange, a.symbol, source, a.ts_ms, a.side, a.price, a.qty, a.notional)
            for source, a in take.alerts
        ]
        statuses = self._status_changes(take.statuses, now)
        with self._lock:
            for key in touched:
                self._candles.setdefault(key, now)
            dropped = take.trades_dropped
            dropped += _extend(self._series, series, now, self._max_series)
            dropped += _extend(self._alerts, alerts, now, MAX_PENDING_EVENTS)
            dropped += _extend(self._statuses, statuses, now, MAX_PENDING_EVENTS)
            while len(self._candles) > MAX_PENDING_CANDLES:
                oldest = min(self._candles, key=lambda k: k[3])
                del self._candles[oldest]
                self._acc.pop(oldest, None)
                dropped += 1
            self._dropped += dropped

    def _status_changes(self, statuses: dict[str, FeedStatus] | Any, now: float) -> list[Any]:
        out = []
        for name, s in statuses.items():
            seen = (s.state, s.detail, s.source)
            if self._last_status.get(name) != seen:
                self._last_status[name] = seen
                out.append((name, s.source, int(now * 1000), s.state, s.detail[:500]))
        return out

    def _load_priors(self, db: Database) -> None:
        """The stored candles of each market seen for the first time (before this run writes
        any of its own for it): joined to the session's on the CLI line and the page."""
        markets = {k[:3] for k in self._acc} | {
            (*key, source) for key, source in self._sources.items()
        }
        for market in markets - self._prior_loaded:
            exchange, symbol, source = market
            venue = "venue" if source == "live" else source  # never real under simulated
            rows = db.query(
                "SELECT source, open_ms, open, high, low, close, volume, trades, notional "
                "FROM candles WHERE exchange = ? AND symbol = ? AND source IN (?, ?) "
                "ORDER BY open_ms DESC LIMIT ?",
                (exchange, symbol, source, venue, PRIOR_CANDLES * 2),
            )
            with self._lock:
                prior = self._prior.setdefault(market, {})
                for src, *values in rows:  # a minute of its own source wins over the venue's
                    candle = _candle(values)
                    if src == source or candle.open_ms not in prior:
                        prior[candle.open_ms] = (candle, src == source)
            self._prior_loaded.add(market)

    def _flush(self, db: Database, now: float) -> None:
        with self._lock:
            dirty = dict(self._candles)
            venue = dict(self._venue)
            series = list(self._series)
            alerts = list(self._alerts)
            statuses = list(self._statuses)
        for key in dirty:  # a minute a previous run stored is continued
            acc = self._acc.get(key)
            if acc is not None and not acc.based:
                rows = db.query(
                    "SELECT open, high, low, close, volume, notional, trades, buy_volume, "
                    "sell_volume FROM candles WHERE exchange = ? AND symbol = ? AND source = ? "
                    "AND open_ms = ?",
                    key,
                )
                if rows:
                    acc.merge_before(rows[0])
                acc.based = True
        candle_rows = [
            (*key, a.open, a.high, a.low, a.close, a.volume, a.notional, a.trades, a.buy, a.sell)
            for key in dirty
            if (a := self._acc.get(key)) is not None
        ]
        db.transaction(
            [
                (UPSERT_CANDLE, candle_rows + list(venue.values())),
                (INSERT_SERIES, [row for _, row in series]),
                (INSERT_ALERT, [row for _, row in alerts]),
                (INSERT_STATUS, [row for _, row in statuses]),
            ]
        )
        written = len(candle_rows) + len(venue) + len(series) + len(alerts) + len(statuses)
        with self._lock:
            for key, since in dirty.items():
                if self._candles.get(key) == since and key in self._acc:
                    # rewritten again only if new trades arrive (they re-mark it dirty)
                    del self._candles[key]
            for key in venue:
                self._venue.pop(key, None)
            for _ in series:
                self._series.popleft()
            for _ in alerts:
                self._alerts.popleft()
            for _ in statuses:
                self._statuses.popleft()
            self._written += written
            still_dirty = set(self._candles)
        self._prune(still_dirty)

    def _prune(self, dirty: set[CandleKey]) -> None:
        """Forget written candles more than two minutes older than their market's newest."""
        for key in [k for k in self._acc if k not in dirty]:
            market = key[:3]
            if key[3] < self._newest.get(market, 0) - 2 * MINUTE_MS:
                del self._acc[key]
                self._pruned[market] = max(self._pruned.get(market, -1), key[3])

    def _sweep(self, db: Database, now: float) -> None:
        """Retention: series older than ``series_days``; candles, alerts and statuses older
        than ``candle_days`` (0: kept forever)."""
        work: list[tuple[str, Sequence[Sequence[Any]] | None]] = []
        if self.series_days > 0:
            cutoff = int(now * 1000 - self.series_days * DAY_MS)
            work.append(("DELETE FROM series WHERE t_ms < ?", [(cutoff,)]))
        if self.candle_days > 0:
            cutoff = int(now * 1000 - self.candle_days * DAY_MS)
            work.append(("DELETE FROM candles WHERE open_ms < ?", [(cutoff,)]))
            work.append(("DELETE FROM alerts WHERE ts_ms < ?", [(cutoff,)]))
            work.append(("DELETE FROM statuses WHERE t_ms < ?", [(cutoff,)]))
        if work:
            db.transaction(work)

    # -- for other threads --------------------------------------------------------------------

    def add_venue_candles(self, exchange: str, symbol: str, klines: Sequence[Kline]) -> None:
        """Backfilled candles from the venue's REST API: stored with ``source='venue'``
        (written by the next cycle) and joined before the session's on the chart."""
        candles = [k.candle() for k in klines]
        with self._lock:
            for k in klines:
                key = (exchange, symbol, "venue", k.open_ms)
                self._venue[key] = (
                    *key, k.open, k.high, k.low, k.close, k.volume, k.notional, k.trades,
                    k.buy_volume, k.sell_volume,
                )  # fmt: skip
            while len(self._venue) > MAX_PENDING_CANDLES:
                del self._venue[min(self._venue, key=lambda k: k[3])]
                self._dropped += 1
            prior = self._prior.setdefault((exchange, symbol, "live"), {})  # live only
            for c in candles:
                prior.setdefault(c.open_ms, (c, False))

    def stored_candles(
        self, exchange: str, symbol: str, source: str, before_ms: float = math.inf
    ) -> list[Candle]:
        """The candles stored before this run (and backfilled), oldest first: those opening
        before ``before_ms``, and at ``before_ms`` one of this source's (a venue's candle of
        that minute overlaps the session's trades)."""
        with self._lock:
            prior = self._prior.get((exchange, symbol, source), {})
            keys = sorted(
                k for k, (_, own) in prior.items() if k < before_ms or (own and k == before_ms)
            )
            return [prior[k][0] for k in keys[-PRIOR_CANDLES:]]

    def joined_candles(
        self, exchange: str, symbol: str, source: str, session: Sequence[Candle]
    ) -> list[Candle]:
        """The session's candles with the stored ones before them (``join_candles``)."""
        first = session[0].open_ms if session else math.inf
        return join_candles(self.stored_candles(exchange, symbol, source, first), session)

    def status(self) -> WriterStatus:
        now = self._clock()
        with self._lock:
            oldest = min(
                [
                    *(q[0][0] for q in (self._series, self._alerts, self._statuses) if q),
                    *(self._candles.values()),
                ],
                default=now,
            )
            pending = (
                len(self._candles)
                + len(self._venue)
                + len(self._series)
                + len(self._alerts)
                + len(self._statuses)
            )
            return WriterStatus(
                self._state,
                self._detail,
                self.url.shown,
                pending,
                self._dropped,
                self._written,
                round(max(0.0, now - oldest), 3) if pending else 0.0,
                tuple(self.backfill.failures()) if self.backfill is not None else (),
            )


def _extend(queue: deque[tuple[float, Any]], rows: list[Any], now: float, cap: int) -> int:
    queue.extend((now, row) for row in rows)
    dropped = 0
    while len(queue) > cap:
        queue.popleft()
        dropped += 1
    return dropped


def _minute(ms: int) -> int:
    return ms - ms % MINUTE_MS


def _candle(values: Sequence[Any]) -> Candle:
    open_ms, o, h, lo, c, v, n, notional = values
    return Candle(int(open_ms), o, h, lo, c, v, int(n or 0), notional or 0.0)


def start_history(
    store: MarketStore, settings: Settings, *, backfill: bool = True
) -> HistoryWriter | None:
    """Start a writer for ``settings.db`` (MARKET_DB), with the venues' backfill for live
    markets; None when it is ``none``. An unopenable database does not raise: the writer says
    ``failing`` and keeps retrying."""
    url = parse_db_url(settings.db)
    if not url.enabled:
        return None
    writer = HistoryWriter(
        store, url, series_days=settings.db_series_days, candle_days=settings.db_candle_days
    )
    if backfill:
        urls = {
            v.name: (settings.url(v.rest_url), settings.url(v.ws_url) if v.ws_url else "")
            for v in VENUES
            if v.klines and v.rest_url is not None
        }
        writer.backfill = Backfiller(writer, urls, timeout=settings.connection_timeout).start()
    return writer.start()
