"""HistoryWriter: a thread that copies what is new in the ``MarketStore`` to the database.

Every ``interval`` (1 s) it takes what is new from the store (``MarketStore.take_history``:
a copy under the store's lock, nothing else), then, outside any store lock:

- builds one-minute candles from every trade (open, high, low, close, volume, price × size,
  trade count, buy and sell volume); the current minute's candle is rewritten (upserted) until
  it closes. A minute a previous run already stored is continued, not overwritten;
- keeps the first series row of each second (best bid, ask, mid, spread, imbalances, depth
  delta), every whale alert and every change of a feed's (state, detail);
- writes them in one transaction. ``stop()`` flushes what is pending.

The candle math is ``candles.py``'s; this module keeps the thread, the batching, the SQL
and the retry. Rows are built from the structs by column name (``db.row_of``).

A database that cannot be opened or written does not stop anything else: ``status()`` says
``failing`` and why, the rows stay pending and the write is retried with backoff
(``market.backoff.Backoff`` without jitter: 1 s doubling to 30 s, reset by a successful
write). Pending rows are bounded: past ``MAX_PENDING_SERIES`` one-second rows (about 28 h of
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

from market.analytics import Candle
from market.backoff import Backoff
from market.events import FeedStatus
from market.history.backfill import Backfiller
from market.history.candles import (
    CANDLE_FIELDS,
    CANDLE_KEY,
    CANDLE_VALUES,
    PRIOR_CANDLES,
    CandleKey,
    LiveCandles,
    Market,
    StoredCandles,
    candle_of,
    join_candles,
    kline_row,
)
from market.history.db import (
    ALERT_COLUMNS,
    INSERT_ALERT,
    INSERT_SERIES,
    INSERT_STATUS,
    SERIES_TABLE_COLUMNS,
    STATUS_COLUMNS,
    UPSERT_CANDLE,
    Database,
    HistoryError,
    clean,
    row_of,
)
from market.settings import Settings
from market.store import MarketStore
from market.urls import DbUrl, parse_db_url
from market.venues import VENUES
from market.venues.base import Kline
from market.views import SERIES_COLUMNS, HistoryTake, MarketKey

log = logging.getLogger(__name__)

MAX_PENDING_SERIES = 100_000
MAX_PENDING_CANDLES = 50_000
MAX_PENDING_EVENTS = 10_000
SWEEP_EVERY_S = 3_600.0
DAY_MS = 86_400_000

State = Literal["starting", "ok", "failing", "stopped"]

# where each stored series value is in the store's series row (by name)
_SERIES_INDEX = tuple(SERIES_COLUMNS.index(name) for name in SERIES_TABLE_COLUMNS[4:])
# a stored row of this minute of this run's source, or none, read to be continued
_STORED_MINUTE = f"SELECT {', '.join(CANDLE_VALUES)} FROM candles WHERE " + " AND ".join(
    f"{c} = ?" for c in CANDLE_KEY
)
# the stored candles of a market (its source's and the venue's), newest first
_STORED_CANDLES = (
    f"SELECT source, {', '.join(CANDLE_FIELDS)} FROM candles WHERE exchange = ? AND symbol = ? "
    "AND source IN (?, ?) ORDER BY open_ms DESC LIMIT ?"
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
        retry_initial: float = 1.0,
        retry_cap: float = 30.0,
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
        self._db_timeout = db_timeout
        self._max_series = max_series
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.backfill: Backfiller | None = None  # set before start(): asks for new markets
        self._live: set[MarketKey] = set()
        # The writer thread's own (never touched by another thread):
        self._db: Database | None = None
        self._live_candles = LiveCandles(int(clock() * 1000))
        self._series_after: dict[MarketKey, float] = {}
        self._sources: Mapping[MarketKey, str] = {}
        self._last_status: dict[str, tuple[str, str, str]] = {}
        self._retry = Backoff(retry_initial, retry_cap, jitter=0.0)
        self._next_attempt = 0.0
        self._next_sweep = 0.0
        self._prior_loaded: set[Market] = set()
        # Guards everything below: the pending rows, the prior candles and the status.
        self._lock = threading.Lock()
        self._candles: dict[CandleKey, float] = {}  # dirty candle keys → when first dirty
        self._venue: dict[CandleKey, tuple[Any, ...]] = {}  # backfilled rows
        self._series: deque[tuple[float, tuple[Any, ...]]] = deque()  # (collected at, row)
        self._alerts: deque[tuple[float, tuple[Any, ...]]] = deque()
        self._statuses: deque[tuple[float, tuple[Any, ...]]] = deque()
        self._stored = StoredCandles()  # from before this run, and the venue's
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
        self._retry.reset()
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
        delay = self._retry.next()
        self._next_attempt = now + delay
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
        for exchange, symbol, source, batch in take.trades:
            touched += self._live_candles.add(exchange, symbol, source, batch)
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
        alerts = [row_of(ALERT_COLUMNS, a, source=source) for source, a in take.alerts]
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
                self._live_candles.drop(oldest)
                dropped += 1
            self._dropped += dropped

    def _status_changes(
        self, statuses: Mapping[str, FeedStatus], now: float
    ) -> list[tuple[Any, ...]]:
        """A row for each feed whose (state, detail, source) changed: its exchange column is
        the feed's name, its time now; the other columns are its fields of the same names."""
        out = []
        for name, s in statuses.items():
            seen = (s.state, s.detail, s.source)
            if self._last_status.get(name) != seen:
                self._last_status[name] = seen
                t_ms = int(now * 1000)
                out.append(
                    row_of(STATUS_COLUMNS, s, exchange=name, t_ms=t_ms, detail=s.detail[:500])
                )
        return out

    def _load_priors(self, db: Database) -> None:
        """The stored candles of each market seen for the first time (before this run writes
        any of its own for it): joined to the session's on the CLI line and the page."""
        markets = self._live_candles.markets() | {
            (*key, source) for key, source in self._sources.items()
        }
        for market in markets - self._prior_loaded:
            exchange, symbol, source = market
            venue = "venue" if source == "live" else source  # never real under simulated
            rows = db.query(_STORED_CANDLES, (exchange, symbol, source, venue, PRIOR_CANDLES * 2))
            candles = [(str(r[0]), candle_of(r[1:])) for r in rows]
            with self._lock:
                self._stored.load(market, candles)
            self._prior_loaded.add(market)

    def _flush(self, db: Database, now: float) -> None:
        with self._lock:
            dirty = dict(self._candles)
            venue = dict(self._venue)
            series = list(self._series)
            alerts = list(self._alerts)
            statuses = list(self._statuses)
        for key in dirty:  # a minute a previous run stored is continued
            candle = self._live_candles.get(key)
            if candle is not None and not candle.based:
                rows = db.query(_STORED_MINUTE, key)
                if rows:
                    candle.merge_before(dict(zip(CANDLE_VALUES, rows[0], strict=True)))
                candle.based = True
        candle_rows = [
            c.row(key) for key in dirty if (c := self._live_candles.get(key)) is not None
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
                if self._candles.get(key) == since and key in self._live_candles:
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
        self._live_candles.prune(still_dirty)

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
        rows = {
            (exchange, symbol, "venue", k.open_ms): kline_row(exchange, symbol, k) for k in klines
        }
        with self._lock:
            self._venue.update(rows)
            while len(self._venue) > MAX_PENDING_CANDLES:
                del self._venue[min(self._venue, key=lambda k: k[3])]
                self._dropped += 1
            self._stored.add_venue(exchange, symbol, klines)

    def stored_candles(
        self, exchange: str, symbol: str, source: str, before_ms: float = math.inf
    ) -> list[Candle]:
        """The candles stored before this run (and backfilled), oldest first: those opening
        before ``before_ms``, and at ``before_ms`` one of this source's (a venue's candle of
        that minute overlaps the session's trades)."""
        with self._lock:
            return self._stored.before((exchange, symbol, source), before_ms)

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
