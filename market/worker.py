"""The worker: one daemon thread, one asyncio loop, the exchange connections.

    Worker.start() ──thread──▶ asyncio loop ──▶ feed task (one per watched exchange)
                                                 ├─ connect (backoff with jitter, 1 s → 30 s)
                                                 ├─ reader: frames → adapter.parse → Pipeline
                                                 ├─ writer: subscriptions, app pings (Bybit
                                                 │  20 s, HyperLiquid 30 s), live (un)subscribe
                                                 ├─ watchdog: silent for STALE_AFTER_SECONDS,
                                                 │  or older than the 24 h limit → reconnect
                                                 ├─ book rebuilds: Binance REST snapshots
                                                 │  (≤ 1 in flight a symbol), Bybit resubscribe
                                                 └─ status publisher (FeedStatus → store)

Every exchange's connection carries all watched symbols; ``reconfigure`` adds or removes
symbols on the open connections and opens or closes a connection only for an exchange added
or removed. Symbols are the user's names (``BTCUSDT``); each feed maps them to its venue's.

A refusal (HTTP 451, or 403 at the handshake) is not retried blindly: the feed says
``blocked``, retries at most once a ``blocked_retry`` (60 s), and meanwhile, unless
``MARKET_FALLBACK=none``, the symbols run on the simulated feed, labelled ``simulated``.
The worker never touches streamlit; ``stop()`` is idempotent and joins the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import math
import random
import re
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, cast

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from market.errors import BadMessage, FeedError, InvalidSymbol, RegionBlocked, SnapshotError
from market.events import Event, FeedState, FeedStatus, ServerNotice, Source, Ticker, Trade
from market.feeds import binance, bybit, hyperliquid, mock
from market.pipeline import Pipeline, SyncFactory
from market.recording import Recorder
from market.replay import ReplaySession, check_settings
from market.settings import MAX_SYMBOLS, Settings, redact_text, redact_url, validate_symbol
from market.store import MarketStore
from market.sync import BinanceSync, SequencedSync

log = logging.getLogger(__name__)

BLOCKED_STATUSES = {451: "restricted location", 403: "forbidden"}
PUBLISH_INTERVAL_S = 0.1  # the page reads every 0.8 s: 10 copies a second per book are plenty
SUBSCRIBE_REPLY_WAIT_S = 3.0  # Binance: fetch a subscribed symbol's snapshot anyway after this
MIDS_WAIT_S = 2.0  # HyperLiquid: subscribe the coins anyway if allMids has not come by then
MIDS_COMPLETE = 100  # an allMids naming fewer coins than this is not trusted to list them all
STALE_WARN_S = 5.0  # the page turns red after this much silence, long before the watchdog


@dataclass(frozen=True, slots=True)
class Timing:
    """Every delay of the worker; tests inject small ones through the constructor."""

    backoff_initial: float = 1.0
    backoff_factor: float = 2.0
    backoff_cap: float = 30.0
    backoff_jitter: float = 0.2  # each delay is drawn from [(1 - jitter) * d, d]
    blocked_retry: float = 60.0
    max_connection_age: float = binance.MAX_CONNECTION_AGE_S
    status_interval: float = 0.25
    snapshot_retry_initial: float = 1.0
    snapshot_retry_cap: float = 30.0
    snapshot_too_old_retry: float = 0.5
    resync_calm: float = 10.0  # a resync within this long of the previous one is delayed
    mock_interval: float = 0.1
    publish_interval: float = PUBLISH_INTERVAL_S  # a busy book is copied out at most this often
    bybit_ping: float = bybit.PING_INTERVAL_S
    hyperliquid_ping: float = hyperliquid.PING_INTERVAL_S
    bad_log_interval: float = 10.0
    close_timeout: float = 2.0


def backoff(
    initial: float = 1.0,
    factor: float = 2.0,
    cap: float = 30.0,
    jitter: float = 0.2,
    rng: Callable[[], float] = random.random,
) -> Iterator[float]:
    """Reconnect delays: ``initial`` doubling to ``cap``, each shortened by up to ``jitter``.

    With the defaults: about 1, 2, 4, 8, 16, 30, 30 … seconds. Jitter spreads out many
    clients reconnecting at once; a delay never exceeds the cap.
    """
    delay = min(initial, cap)
    while True:
        yield delay * (1.0 - jitter * rng())
        delay = min(cap, delay * factor)


def classify(exc: BaseException) -> RegionBlocked | None:
    """A refusal that must not be retried blindly, or None for an ordinary retryable error."""
    if isinstance(exc, RegionBlocked):
        return exc
    if isinstance(exc, InvalidStatus):
        code = exc.response.status_code
        if code in BLOCKED_STATUSES:
            return RegionBlocked(code, f"HTTP {code}: {BLOCKED_STATUSES[code]}")
    return None


def describe(exc: BaseException) -> str:
    """A short human reason for a dropped or failed connection."""
    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code} at the handshake"
    if isinstance(exc, ConnectionClosed):
        rcvd = exc.rcvd
        if rcvd is None:
            return "connection dropped (no close frame)"
        return f"closed by the server (code {rcvd.code}{': ' + rcvd.reason if rcvd.reason else ''})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return f"network error: {exc.strerror or exc}"
    return redact_text(f"{type(exc).__name__}: {exc}")


class _Health:
    """Counters of one connection; only the loop thread touches them."""

    def __init__(self, exchange: str, stale_after: float) -> None:
        self.exchange = exchange
        self.stale_after = stale_after
        self.state: FeedState = "connecting"
        self.detail = ""
        self.source: Source = "live"
        self.reconnects = 0
        self.resyncs = 0
        self.messages = 0
        self.bad_messages = 0
        self.last_message_at: float | None = None
        self.next_retry_at: float | None = None
        self.symbols: tuple[str, ...] = ()
        self._samples: deque[tuple[float, int]] = deque(maxlen=16)
        self._bad_logged_at = -1e18
        self._bad_suppressed = 0

    def status(self, now: float) -> FeedStatus:
        self._samples.append((now, self.messages))
        t0, n0 = self._samples[0]
        rate = (self.messages - n0) / (now - t0) if now - t0 > 0.2 else 0.0
        return FeedStatus(
            exchange=self.exchange,
            state=self.state,
            detail=self.detail,
            source=self.source,
            reconnects=self.reconnects,
            resyncs=self.resyncs,
            messages=self.messages,
            bad_messages=self.bad_messages,
            last_message_age_s=None if self.last_message_at is None else now - self.last_message_at,
            msg_rate=round(rate, 2),
            next_retry_in_s=None
            if self.next_retry_at is None
            else max(0.0, self.next_retry_at - now),
            stale_after_s=min(STALE_WARN_S, self.stale_after),
            symbols=self.symbols,
        )

    def bad(self, exc: BaseException, raw: object, now: float, interval: float) -> None:
        self.bad_messages += 1
        if now - self._bad_logged_at >= interval:
            extra = (
                f" ({self._bad_suppressed} more since the last report)"
                if self._bad_suppressed
                else ""
            )
            log.warning(
                "%s: bad message skipped: %s; frame %.120r%s", self.exchange, exc, raw, extra
            )
            self._bad_logged_at = now
            self._bad_suppressed = 0
        else:
            self._bad_suppressed += 1


class _Reconnect(Exception):
    """Leave the current connection and connect again (reason in the message)."""


class Worker:
    """Owns the thread, the loop and one feed per exchange; readers use ``store.snapshot()``."""

    def __init__(
        self,
        settings: Settings,
        store: MarketStore | None = None,
        *,
        timing: Timing | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = check_symbols(settings)
        self.store = store if store is not None else MarketStore()
        self.store.set_whale_threshold(self._settings.whale_notional)
        for symbol, notional in self._settings.whale_thresholds:
            self.store.set_whale_threshold(notional, symbol)
        self.timing = timing or Timing()
        self.clock = clock
        # `python -m market record`: every frame and REST snapshot as received (set before start)
        self.recorder: Recorder | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None
        # loop thread only: the feed of each watched exchange and the task running it
        self._feeds: dict[str, _Feed] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._ready = threading.Event()
        self._stopped = threading.Event()
        # Guards _settings, _loop and the start/stop transitions; held briefly, never across a join.
        self._lock = threading.Lock()

    @property
    def settings(self) -> Settings:
        with self._lock:
            return self._settings

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopped.is_set()

    def start(self) -> Worker:
        with self._lock:
            if self._thread is not None:
                return self
            self._thread = threading.Thread(target=self._run, name="market-worker", daemon=True)
        self._thread.start()  # started last, once everything it reads exists
        self._ready.wait(5.0)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every feed and join the thread. Safe to call any number of times."""
        with self._lock:
            thread, loop = self._thread, self._loop
            already = self._stopped.is_set()
            self._stopped.set()
        if thread is None or already:
            return
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may have just closed
                loop.call_soon_threadsafe(self._finish)
        thread.join(timeout)

    def reconfigure(
        self,
        exchange: str | None = None,
        symbols: tuple[str, ...] | None = None,
        *,
        exchanges: tuple[str, ...] | None = None,
    ) -> Settings:
        """Switch exchanges and/or symbols; validated first (``InvalidSymbol``, nothing sent).

        Symbols added or removed on an exchange already connected are subscribed or
        unsubscribed on its live connection; only an exchange added or removed opens or
        closes one.
        """
        if exchange is not None:
            exchanges = (exchange,)
        with self._lock:
            new = self._settings
            if exchanges is not None:
                new = replace(new, exchanges=_known_exchanges(exchanges))
            if symbols is not None:
                new = replace(new, symbols=tuple(symbols))
            new = check_symbols(new)
            if new == self._settings:
                return new
            self._settings = new
            loop = self._loop
        if loop is not None and self.running:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._apply, new)
        return new

    # -- loop thread --------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:  # pragma: no cover - a bug; the page shows the feed as stopped
            log.exception("market worker crashed")
        finally:
            self._stopped.set()
            self._ready.set()

    async def _main(self) -> None:
        done = self._done = asyncio.Event()
        with self._lock:
            self._loop = asyncio.get_running_loop()
            stopped = self._stopped.is_set()
        if not stopped:
            self._apply(self.settings)
        self._ready.set()
        if not stopped:
            await done.wait()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _finish(self) -> None:
        if self._done is not None:
            self._done.set()

    def _apply(self, settings: Settings) -> None:
        """Bring the running feeds in line with ``settings`` (loop thread)."""
        if self._done is None or self._done.is_set():
            return
        for exchange in list(self._feeds):
            if exchange not in settings.exchanges:
                del self._feeds[exchange]
                self._tasks[exchange].cancel()  # kept: a feed added again waits for it to end
        self._purge(settings)
        for exchange in settings.exchanges:
            feed = self._feeds.get(exchange)
            if feed is not None:
                feed.set_symbols(settings.symbols)
                continue
            feed = FEEDS[exchange](self, settings)
            previous = self._tasks.get(exchange)
            self._feeds[exchange] = feed
            feed.publish()  # readers see "connecting" from the start
            self._tasks[exchange] = asyncio.get_running_loop().create_task(
                self._run_feed(feed, previous)
            )

    def _purge(self, settings: Settings) -> None:
        """Forget the markets and statuses of what ``settings`` no longer watches."""
        for key in list(self.store.snapshot(series=False, max_trades=0).markets):
            if key[0] not in settings.exchanges or key[1] not in settings.symbols:
                self.store.remove_market(*key)
        for exchange in list(self.store.snapshot(series=False, max_trades=0).statuses):
            if exchange not in settings.exchanges:
                self.store.remove_status(exchange)

    async def _run_feed(self, feed: _Feed, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:  # the same exchange, removed and added again: let it finish
            with contextlib.suppress(asyncio.CancelledError):
                await previous
        try:
            await feed.run()
        finally:
            feed.health.state = "stopped"
            feed.health.next_retry_at = None
            feed.publish()
            if self._feeds.get(feed.exchange) is not feed:  # removed, not stopped with the rest
                self._purge(self.settings)


def _known_exchanges(exchanges: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(e.strip().lower() for e in exchanges if e.strip()))
    if not names:
        raise InvalidSymbol("no exchange chosen")
    unknown = [e for e in names if e not in FEEDS]
    if unknown:
        raise FeedError(f"unknown exchange {unknown[0]!r}: one of {', '.join(FEEDS)}")
    return names


def check_symbols(settings: Settings) -> Settings:
    """Apply the common symbol rules, then each exchange's own (raises ``InvalidSymbol``
    naming the symbol): a ``Settings`` built in code has not been through ``from_env``.

    The user's names are upper case without separators (``btc-usdt`` → ``BTCUSDT``); each
    feed maps them to its venue's own (HyperLiquid: ``BTC``) in ``venue_symbol``.
    """
    if "replay" in settings.exchanges:  # the recording's symbols (market/replay.py)
        return check_settings(settings)
    symbols: list[str] = []
    for raw in settings.symbols:
        symbol = validate_symbol(raw).replace("-", "")
        if not symbol:
            raise InvalidSymbol(f"{raw!r}: no letters or digits")
        if symbol not in symbols:
            symbols.append(symbol)
    if not symbols:
        raise InvalidSymbol("no symbols given")
    if len(symbols) > MAX_SYMBOLS:
        raise InvalidSymbol(f"{len(symbols)} symbols: at most {MAX_SYMBOLS} at once")
    exchanges = _known_exchanges(settings.exchanges)
    for exchange in exchanges:
        to_venue = VENUE_SYMBOL.get(exchange)
        if to_venue is not None:
            for symbol in symbols:
                to_venue(symbol)
    return replace(settings, exchanges=exchanges, symbols=tuple(symbols))


def _seed(seed: int | None, symbol: str) -> int | None:
    """One simulated market's seed: the same seed and symbol, the same stream."""
    return None if seed is None else seed * 1_000_003 + zlib.crc32(symbol.encode())


class _Feed:
    """What every feed shares: health, status publishing, the simulated stand-in."""

    exchange: str

    def __init__(self, worker: Worker, settings: Settings) -> None:
        self.worker = worker
        self.settings = settings
        self.store = worker.store
        self.timing = worker.timing
        self.clock = worker.clock
        self.health = _Health(self.exchange, settings.stale_after)
        self.health.symbols = settings.symbols
        self._sim_restart: set[str] = set()  # simulated markets to start afresh

    def venue(self, symbol: str) -> str:
        """The venue's name of the user's ``symbol``."""
        return symbol

    def markets(self, symbols: tuple[str, ...]) -> dict[str, str]:
        """Venue symbol → the user's symbol (the first user name wins a shared venue name)."""
        out: dict[str, str] = {}
        for symbol in symbols:
            out.setdefault(self.venue(symbol), symbol)
        return out

    def set_symbols(self, symbols: tuple[str, ...]) -> None:
        raise NotImplementedError

    def publish(self) -> None:
        self.store.set_status(self.health.status(self.clock()), self.health.last_message_at)

    async def publish_forever(self) -> None:
        while True:
            self.publish()
            await asyncio.sleep(self.timing.status_interval)

    def sim_pipeline(self, markets: dict[str, str]) -> Pipeline:
        """A pipeline for simulated data; a book that fails is restarted by ``simulate``."""
        return Pipeline(
            self.store, self.exchange, markets, SequencedSync, source="simulated",
            on_resync=lambda symbol, reason: self._sim_restart.add(symbol),
        )

    async def simulate(self, pipeline: Pipeline, seed: int | None) -> None:
        """Drive ``pipeline`` with simulated markets until cancelled; follows its symbols
        as they are added and removed (one seeded simulator per market)."""
        sims: dict[str, mock.MockExchange] = {}
        self._sim_restart.clear()
        h = self.health
        while True:
            now = self.clock()
            events: list[Event] = []
            for symbol in pipeline.symbols:
                sim = sims.get(symbol)
                if sim is None or symbol in self._sim_restart:
                    sim = sims[symbol] = mock.MockExchange((symbol,), _seed(seed, symbol))
                    events.extend(sim.start(now))
                else:
                    events.extend(sim.step(now))
            self._sim_restart.clear()
            for symbol in [s for s in sims if s not in pipeline.syncs]:
                del sims[symbol]
            h.messages += len(events)
            h.last_message_at = now
            pipeline.handle(events)
            h.resyncs = pipeline.resyncs
            await asyncio.sleep(self.timing.mock_interval)

    async def run(self) -> None:
        raise NotImplementedError


class _MockFeed(_Feed):
    exchange = "mock"

    def __init__(self, worker: Worker, settings: Settings) -> None:
        super().__init__(worker, settings)
        self.pipeline = self.sim_pipeline(self.markets(settings.symbols))

    def set_symbols(self, symbols: tuple[str, ...]) -> None:
        _update_pipeline(self.pipeline, self.markets(symbols))
        self.health.symbols = symbols

    async def run(self) -> None:
        h = self.health
        h.state, h.source, h.detail = (
            "simulated",
            "simulated",
            "simulated feed (MARKET_EXCHANGE=mock)",
        )
        publisher = asyncio.create_task(self.publish_forever())
        try:
            await self.simulate(self.pipeline, self.settings.mock_seed)
        finally:
            publisher.cancel()


def _update_pipeline(pipeline: Pipeline, markets: dict[str, str]) -> tuple[list[str], list[str]]:
    """Make ``pipeline`` watch exactly ``markets``; returns (added, removed) venue symbols."""
    removed = [v for v, name in pipeline.names.items() if markets.get(v) != name]
    for venue in removed:
        pipeline.remove_symbol(venue)
    added = [v for v in markets if v not in pipeline.syncs]
    for venue in added:
        pipeline.add_symbol(venue, markets[venue], detail="subscribing")
    return added, removed


class _StreamFeed(_Feed):
    """One WebSocket connection carrying every watched symbol of an exchange.

    The connection loop, backoff, watchdog, application pings, the refusal fallback and
    live subscribe/unsubscribe live here; an exchange says how in the hooks below.
    """

    sync_factory: SyncFactory = SequencedSync
    ping_frame: bytes | None = None  # an application ping, where the exchange wants one
    send_interval = 0.0  # pause after each frame we send (Binance: 5 messages a second)
    syncing = "syncing: waiting for the book"  # what an unsynced market says after connecting

    def __init__(self, worker: Worker, settings: Settings) -> None:
        super().__init__(worker, settings)
        self.pipeline = Pipeline(
            self.store,
            self.exchange,
            self.markets(settings.symbols),
            self.sync_factory,
            on_resync=self._on_resync,
            publish_interval=self.timing.publish_interval,
        )
        self.unlisted: dict[str, str] = {}  # venue symbol → why the venue does not serve it
        self._fatal: asyncio.Future[BaseException] | None = None
        self._sim_task: asyncio.Task[None] | None = None
        self._sim: Pipeline | None = None
        self._outbox: asyncio.Queue[bytes] | None = None  # the open connection's, else None
        self._last_resync_at: dict[str, float] = {}
        self._resync_delays: dict[str, Iterator[float]] = {}
        self._healthy = False

    # -- hooks --------------------------------------------------------------------------------

    def url(self) -> str:
        raise NotImplementedError

    def subscriptions(self, symbols: list[str], subscribe: bool = True) -> list[bytes]:
        """Frames that (un)subscribe the venue ``symbols`` on an open connection."""
        raise NotImplementedError

    def on_open(self) -> None:
        """A connection is open: ask for every book (subscriptions, snapshots)."""
        self.send(*self.subscriptions(list(self.pipeline.symbols)))

    def on_frame(self, raw: str | bytes, now: float) -> None:
        """Parse one frame and feed the pipeline; ``BadMessage`` or ``_Reconnect`` may escape."""
        raise NotImplementedError

    def rebuild(self, symbol: str, delay: float) -> None:
        """Get a fresh book for ``symbol`` in ``delay`` seconds (resubscribe, snapshot…)."""

    def on_symbols_changed(self, added: list[str], removed: list[str]) -> None:
        """Live subscription changes; by default (un)subscribe on the open connection."""
        if removed:
            self.send(*self.subscriptions(removed, subscribe=False))
        if added:
            self.send(*self.subscriptions(added))

    @property
    def max_age(self) -> float:
        return math.inf

    # -- shared machinery ---------------------------------------------------------------------

    def send(self, *frames: bytes) -> None:
        """Queue frames for the open connection (dropped when there is none: the next
        connection subscribes afresh)."""
        if self._outbox is not None:
            for frame in frames:
                self._outbox.put_nowait(frame)

    def set_symbols(self, symbols: tuple[str, ...]) -> None:
        markets = self.markets(symbols)
        added, removed = _update_pipeline(self.pipeline, markets)
        if self._sim is not None:
            _update_pipeline(self._sim, markets)
        for venue in removed:
            self.unlisted.pop(venue, None)
            self._last_resync_at.pop(venue, None)
            self._resync_delays.pop(venue, None)
        self.health.symbols = tuple(markets.values())
        if (added or removed) and self._outbox is not None and self._sim is None:
            log.info("%s: subscribing %s, unsubscribing %s", self.exchange, added, removed)
            self.on_symbols_changed(added, removed)

    def not_listed(self, symbol: str, detail: str) -> None:
        """The venue does not serve ``symbol``: say so on its market; never retried blindly."""
        if symbol in self.pipeline.syncs and symbol not in self.unlisted:
            self.unlisted[symbol] = detail
            self.pipeline.mark(symbol, detail)
            log.warning("%s: %s", self.exchange, detail)

    def _delays(self) -> Iterator[float]:
        t = self.timing
        return backoff(t.backoff_initial, t.backoff_factor, t.backoff_cap, t.backoff_jitter)

    async def _flush_forever(self) -> None:
        """Publish the books whose last changes were coalesced (``Pipeline.flush``)."""
        interval = self.timing.publish_interval
        while True:
            await asyncio.sleep(interval)
            self.pipeline.flush()

    async def run(self) -> None:
        delays = self._delays()
        publisher = asyncio.create_task(self.publish_forever())
        flusher = asyncio.create_task(self._flush_forever())
        h = self.health
        try:
            while True:
                h.state = (
                    "connecting" if h.reconnects == 0 and self._sim_task is None else "reconnecting"
                )
                h.next_retry_at = None
                self.publish()
                self._healthy = False
                try:
                    await self._session()
                    reason = "connection closed"
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # every error is classified and shown; none is swallowed
                    blocked = classify(exc)
                    if blocked is not None:
                        self.on_closed()  # no retries of any kind while we are refused
                        await self._blocked(blocked)
                        delays = self._delays()
                        continue
                    reason = str(exc) if isinstance(exc, (_Reconnect, FeedError)) else describe(exc)
                finally:
                    self.on_closed()
                if self._healthy:  # the connection delivered data: start the schedule again
                    delays = self._delays()
                delay = next(delays)
                h.reconnects += 1
                h.state = "reconnecting" if self._sim_task is None else "blocked"
                h.detail = f"{reason}; reconnecting in {delay:.1f} s"
                h.next_retry_at = self.clock() + delay
                if self._sim_task is None:
                    self.pipeline.reset_all(f"reconnecting: {reason}")
                self.publish()
                log.info("%s: %s; reconnecting in %.1f s", self.exchange, reason, delay)
                await asyncio.sleep(delay)
        finally:
            publisher.cancel()
            flusher.cancel()
            self.on_closed()
            self.on_stop()
            await self._stop_simulation(reset=False)

    def on_closed(self) -> None:
        """The connection is gone: drop what belonged to it (pending snapshots…)."""

    def on_stop(self) -> None:
        """The feed is stopping for good: release what it holds."""

    async def _session(self) -> None:
        """One connection, from handshake to drop: always ends by raising why it ended."""
        url = self.url()
        loop = asyncio.get_running_loop()
        self._fatal = loop.create_future()
        async with connect(
            url,
            open_timeout=self.settings.connection_timeout,
            close_timeout=self.timing.close_timeout,
            ping_interval=20,
            ping_timeout=20,
            max_size=2**23,
            max_queue=1024,
            compression=None,
            proxy=None,
        ) as ws:
            h = self.health
            opened = self.clock()
            if self._sim_task is not None:
                await self._stop_simulation()  # real data again: simulated books are dropped
                log.info("%s: connected again; simulated data replaced by live data", self.exchange)
            h.state, h.source, h.detail = "live", "live", "connected; syncing books"
            h.last_message_at = opened
            messages_at_open = h.messages
            self.pipeline.reset_all(self.syncing)
            for symbol, detail in self.unlisted.items():
                self.pipeline.mark(symbol, detail)
            outbox: asyncio.Queue[bytes] = asyncio.Queue()
            self._outbox = outbox
            self.on_open()
            self.publish()
            log.info("%s: connected to %s", self.exchange, redact_url(url.split("?")[0]))
            tasks: set[asyncio.Task[Any]] = {
                asyncio.create_task(self._read(ws)),
                asyncio.create_task(self._write(ws, outbox)),
            }
            watchdog = asyncio.create_task(self._watch(opened))
            tasks.add(watchdog)
            if self.ping_frame is not None:
                tasks.add(asyncio.create_task(self._ping()))
            try:
                waits: set[asyncio.Future[Any]] = {*tasks, self._fatal}
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._outbox = None
                for task in tasks:
                    task.cancel()
            self._healthy = h.messages > messages_at_open
            if self._fatal.done():
                raise self._fatal.result()
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if watchdog.done() and not watchdog.cancelled():
                raise _Reconnect(watchdog.result())
            raise _Reconnect("connection closed")

    async def _read(self, ws: ClientConnection) -> None:
        h = self.health
        on_frame = self.on_frame
        clock = self.clock
        interval = self.timing.bad_log_interval
        recorder = self.worker.recorder
        async for raw in ws:
            now = clock()
            if recorder is not None:
                recorder.frame(raw, time.time_ns())
            h.messages += 1
            h.last_message_at = now
            try:
                on_frame(raw, now)
            except BadMessage as exc:
                h.bad(exc, raw, now, interval)
                continue
            h.resyncs = self.pipeline.resyncs
        code, why = ws.close_code, ws.close_reason
        raise _Reconnect(f"closed by the server (code {code}{': ' + why if why else ''})")

    async def _write(self, ws: ClientConnection, outbox: asyncio.Queue[bytes]) -> None:
        pause = self.send_interval
        while True:
            frame = await outbox.get()
            await ws.send(frame.decode())  # text frames: what the exchanges expect
            if pause:
                await asyncio.sleep(pause)

    async def _ping(self) -> None:
        assert self.ping_frame is not None
        interval = self.ping_interval
        while True:
            await asyncio.sleep(interval)
            self.send(self.ping_frame)

    @property
    def ping_interval(self) -> float:
        return math.inf

    async def _watch(self, opened: float) -> str:
        """Return a reason to reconnect: silence past ``stale_after``, or the age limit."""
        h = self.health
        stale_after = self.settings.stale_after
        while True:
            await asyncio.sleep(min(1.0, stale_after / 4))
            now = self.clock()
            if h.last_message_at is not None and now - h.last_message_at > stale_after:
                return f"no data for {now - h.last_message_at:.1f} s (watchdog)"
            if now - opened > self.max_age:
                return "connection reached its maximum age (Binance closes at 24 h)"
            if h.detail.startswith("connected") and all(
                s.synced for v, s in self.pipeline.syncs.items() if v not in self.unlisted
            ):
                h.detail = "streaming"

    def _on_resync(self, symbol: str, reason: str) -> None:
        """A book must be rebuilt: now, or later if resyncs of it keep coming."""
        t = self.timing
        now = self.clock()
        last = self._last_resync_at.get(symbol)
        self._last_resync_at[symbol] = now
        if last is None or now - last > t.resync_calm:
            self._resync_delays[symbol] = backoff(
                t.snapshot_retry_initial, 2.0, t.snapshot_retry_cap, t.backoff_jitter
            )
            delay = t.snapshot_too_old_retry if "older" in reason else 0.0
        else:  # a resync storm (e.g. the books themselves are bad): do not hammer the venue
            delay = next(self._resync_delays[symbol])
        self.rebuild(symbol, delay)

    def later(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` in ``delay`` s if the same connection is still open then."""
        outbox = self._outbox

        def fire() -> None:
            if self._outbox is outbox and outbox is not None:
                action()

        if delay <= 0:
            fire()
        else:
            asyncio.get_running_loop().call_later(delay, fire)

    async def _blocked(self, blocked: RegionBlocked) -> None:
        """Refused for our location: say so, stop hammering, show labelled simulated data."""
        h = self.health
        retry = self.timing.blocked_retry
        fallback = self.settings.fallback == "mock"
        h.state = "blocked"
        h.next_retry_at = self.clock() + retry
        h.detail = blocked.detail + (
            " — showing SIMULATED data" if fallback else " — no data (MARKET_FALLBACK=none)"
        )
        log.warning(
            "%s refused us (%s); next attempt in %.0f s%s",
            self.exchange,
            blocked.detail,
            retry,
            "; simulated data meanwhile" if fallback else "",
        )
        if fallback and self._sim_task is None:
            h.source = "simulated"
            self._sim = self.sim_pipeline(dict(self.pipeline.names))
            self._sim_task = asyncio.create_task(self.simulate(self._sim, self.settings.mock_seed))
        elif not fallback:
            for symbol in self.pipeline.symbols:
                self.pipeline.mark(symbol, blocked.detail)
        self.publish()
        await asyncio.sleep(retry)

    async def _stop_simulation(self, reset: bool = True) -> None:
        task, self._sim_task, self._sim = self._sim_task, None, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self.health.source = "live"
        if reset:
            for name in self.pipeline.names.values():
                self.store.reset_market(self.exchange, name, "live", "connecting")


class _BinanceFeed(_StreamFeed):
    exchange = "binance"
    sync_factory = BinanceSync
    send_interval = binance.SEND_INTERVAL_S
    syncing = "syncing: waiting for the snapshot"

    def __init__(self, worker: Worker, settings: Settings) -> None:
        super().__init__(worker, settings)
        self._snapshots: dict[str, asyncio.Task[None]] = {}
        self._snapshot_delays: dict[str, Iterator[float]] = {}
        self._request_ids = itertools.count(1)
        self._pending: dict[int, list[str]] = {}  # SUBSCRIBE id → its symbols, until confirmed
        # REST calls run here, not in the loop's default executor: asyncio.run() waits for
        # that one at exit, so a hanging request would hold stop() for the whole timeout.
        self._rest = ThreadPoolExecutor(thread_name_prefix="market-rest")
        self._fetches: dict[str, asyncio.Future[bytes]] = {}  # the last REST call per symbol

    def venue(self, symbol: str) -> str:
        return binance.venue_symbol(symbol)

    @property
    def max_age(self) -> float:
        return self.timing.max_connection_age

    def url(self) -> str:
        return binance.stream_url(
            self.settings.binance_ws_url, self.pipeline.symbols[: binance.URL_SYMBOLS]
        )

    def subscriptions(self, symbols: list[str], subscribe: bool = True) -> list[bytes]:
        """(UN)SUBSCRIBE requests; a subscribed symbol's snapshot is fetched once Binance
        confirms (its diffs are flowing by then, as the book procedure wants)."""
        per_request = binance.MAX_PARAMS // len(binance.STREAM_KINDS)
        frames = []
        for i in range(0, len(symbols), per_request):
            chunk = symbols[i : i + per_request]
            request_id = next(self._request_ids)
            method = "SUBSCRIBE" if subscribe else "UNSUBSCRIBE"
            frames += binance.subscribe_frames(binance.streams(chunk), request_id, method)
            if subscribe:
                self._pending[request_id] = chunk
                self.later(SUBSCRIBE_REPLY_WAIT_S, functools.partial(self._confirmed, request_id))
        return frames

    def _confirmed(self, request_id: int) -> None:
        """Binance answered a SUBSCRIBE (or did not in time): fetch those snapshots."""
        for symbol in self._pending.pop(request_id, []):
            if symbol in self.pipeline.syncs:
                self._request_snapshot(symbol)

    def on_open(self) -> None:
        self._pending.clear()
        rest = list(self.pipeline.symbols[binance.URL_SYMBOLS :])
        if rest:  # the URL names the first ones; the others are subscribed on the connection
            self.send(*self.subscriptions(rest))
        for symbol in self.pipeline.symbols[: binance.URL_SYMBOLS]:
            self._request_snapshot(symbol)

    def on_symbols_changed(self, added: list[str], removed: list[str]) -> None:
        for symbol in removed:
            task = self._snapshots.pop(symbol, None)
            if task is not None:
                task.cancel()
        super().on_symbols_changed(added, removed)

    def on_frame(self, raw: str | bytes, now: float) -> None:
        events = binance.parse(raw, now)
        if events and type(events[0]) is ServerNotice:
            notice = events[0]
            if notice.kind == "reply":
                self._confirmed(int(notice.detail))
                return
            if notice.kind == "shutdown":
                raise _Reconnect("the server announced a shutdown (serverShutdown)")
            log.warning("%s: %s", self.exchange, notice.detail)
            self.health.detail = f"Binance: {notice.detail}"
            return
        self.pipeline.handle(events)

    def rebuild(self, symbol: str, delay: float) -> None:
        self._request_snapshot(symbol, delay)

    def on_closed(self) -> None:
        for task in self._snapshots.values():
            task.cancel()
        self._snapshots.clear()

    def on_stop(self) -> None:
        self._rest.shutdown(wait=False, cancel_futures=True)

    # -- snapshots ----------------------------------------------------------------------------

    def _request_snapshot(self, symbol: str, delay: float = 0.0) -> None:
        task = self._snapshots.get(symbol)
        if task is not None and not task.done():
            return  # at most one request in flight per symbol
        self._snapshots[symbol] = asyncio.get_running_loop().create_task(
            self._snapshot(symbol, delay)
        )

    async def _snapshot(self, symbol: str, delay: float) -> None:
        t = self.timing
        delays = self._snapshot_delays.setdefault(
            symbol, backoff(t.snapshot_retry_initial, 2.0, t.snapshot_retry_cap, t.backoff_jitter)
        )
        if delay:
            await asyncio.sleep(delay)
        url = binance.snapshot_url(self.settings.binance_rest_url, symbol)
        while True:
            try:
                body = await self._fetch(symbol, url)
                snap = binance.parse_snapshot(body, symbol, self.clock())
            except RegionBlocked as exc:
                if self._fatal is not None and not self._fatal.done():
                    self._fatal.set_result(exc)
                return
            except InvalidSymbol as exc:
                self.not_listed(symbol, f"{symbol}: not listed on Binance ({exc})")
                return
            except (SnapshotError, BadMessage) as exc:
                wait = next(delays)
                self.pipeline.mark(symbol, f"snapshot failed ({exc}); retrying in {wait:.1f} s")
                log.info(
                    "%s %s: snapshot failed (%s); retrying in %.1f s",
                    self.exchange,
                    symbol,
                    exc,
                    wait,
                )
                await asyncio.sleep(wait)
                continue
            self._snapshot_delays.pop(symbol, None)  # success resets the snapshot backoff
            self._snapshots.pop(symbol, None)  # this fetch is over: a resync may start another
            if self.worker.recorder is not None:  # in the order the pipeline sees it
                self.worker.recorder.snapshot(body, symbol, time.time_ns())
            self.pipeline.handle([snap])
            self.health.resyncs = self.pipeline.resyncs
            return

    async def _fetch(self, symbol: str, url: str) -> bytes:
        """GET ``url`` in a thread, never two at once for one symbol: a cancelled fetch's
        thread cannot be stopped (e.g. across a reconnect), so the next one waits for it."""
        previous = self._fetches.get(symbol)
        if previous is not None and not previous.done():
            await asyncio.wait({previous})
        loop = asyncio.get_running_loop()
        fetch = loop.run_in_executor(self._rest, _http_get, url, self.settings.connection_timeout)
        fetch.add_done_callback(_consume)  # its error may have no reader once we are cancelled
        self._fetches[symbol] = fetch
        return await asyncio.shield(fetch)  # cancelling us leaves ``fetch`` pending until done


class _BybitFeed(_StreamFeed):
    """Bybit v5: snapshots and ``u``-chained deltas on the stream; a gap resubscribes."""

    exchange = "bybit"
    ping_frame = bybit.PING_FRAME
    sync_factory = staticmethod(functools.partial(SequencedSync, depth=bybit.BOOK_DEPTH))

    def __init__(self, worker: Worker, settings: Settings) -> None:
        super().__init__(worker, settings)
        self._requests: dict[str, list[str]] = {}  # req_id → the topics it asked for
        url = settings.bybit_ws_url.rstrip("/")
        self.category = url.rsplit("/", 1)[-1] if "/v5/public/" in url else "spot"

    def venue(self, symbol: str) -> str:
        return bybit.venue_symbol(symbol)

    @property
    def ping_interval(self) -> float:
        return self.timing.bybit_ping

    def url(self) -> str:
        return self.settings.bybit_ws_url

    def subscriptions(self, symbols: list[str], subscribe: bool = True) -> list[bytes]:
        topics = [t for s in symbols for t in bybit.topics(s)]
        return self._requests_for(topics, "subscribe" if subscribe else "unsubscribe")

    def _requests_for(self, topics: list[str], op: str) -> list[bytes]:
        frames = bybit.subscribe_frames(topics, op)
        if op == "subscribe":
            for frame in frames:
                request = orjson.loads(frame)
                self._requests[request["req_id"]] = request["args"]
        return frames

    def on_closed(self) -> None:
        self._requests.clear()

    def rebuild(self, symbol: str, delay: float) -> None:
        """Resubscribe the book topic: Bybit answers with a fresh snapshot."""
        topic = bybit.topics(symbol)[0]

        def resubscribe() -> None:
            if symbol in self.pipeline.syncs and symbol not in self.unlisted:
                self.send(
                    *self._requests_for([topic], "unsubscribe"),
                    *self._requests_for([topic], "subscribe"),
                )

        self.later(delay, resubscribe)

    def on_frame(self, raw: str | bytes, now: float) -> None:
        events = bybit.parse(raw, now)
        if events and type(events[0]) is bybit.Ack:
            self._ack(events[0])
            return
        self.pipeline.handle(events)  # type: ignore[arg-type]

    def _ack(self, ack: bybit.Ack) -> None:
        topics = self._requests.pop(ack.req_id, [])
        if ack.success or ack.op not in ("subscribe", "unsubscribe"):
            return
        if ack.op == "unsubscribe":
            log.info("%s: unsubscribe refused: %s", self.exchange, ack.message)
            return
        if "already subscribed" in ack.message:
            return  # the topic streams already: nothing is missing
        bad = _bybit_bad_symbols(ack.message)
        if not bad:  # we cannot tell which: every symbol of that request says why
            for symbol in {t.rsplit(".", 1)[-1] for t in topics}:
                self.not_listed(symbol, f"{symbol}: Bybit refused the subscription: {ack.message}")
            self.health.detail = f"Bybit refused a subscription: {ack.message}"
            return
        for symbol in bad:
            self.not_listed(
                symbol, f"{symbol}: not listed on Bybit {self.category} ({ack.message})"
            )
        # Bybit refuses the whole request: ask again for the topics of the symbols that exist
        retry = [
            t
            for t in topics
            if t.rsplit(".", 1)[-1] not in bad and t.rsplit(".", 1)[-1] in self.pipeline.syncs
        ]
        if retry:
            self.send(*self._requests_for(retry, "subscribe"))


def _bybit_bad_symbols(message: str) -> set[str]:
    """The symbols a refusal names: spot ``Invalid symbol :[orderbook.50.XYZUSDT]``, linear
    ``error:handler not found,topic:orderbook.50.XYZUSDT`` → {"XYZUSDT"}."""
    found: set[str] = set()
    groups = re.findall(r"\[([^\]]*)\]", message) + re.findall(r"topic:([\w.,]+)", message)
    for group in groups:
        for topic in group.split(","):
            topic = topic.strip()
            if "." in topic:
                found.add(topic.rsplit(".", 1)[-1])
    return found


class _HyperLiquidFeed(_StreamFeed):
    """HyperLiquid: whole-image books (replace), trades with a backfill, mids and 24 h ctx."""

    exchange = "hyperliquid"
    ping_frame = hyperliquid.PING_FRAME
    CHANNELS = ("l2Book", "trades", "activeAssetCtx")

    def __init__(self, worker: Worker, settings: Settings) -> None:
        super().__init__(worker, settings)
        self._dedupe = hyperliquid.TradeDeduper()
        # coin → when we subscribed (ms): its next trades frame replays history from before
        self._backfill: dict[str, float] = {}
        self._listed: set[str] | None = None  # every coin, from this connection's first allMids
        self._books_asked = False

    def venue(self, symbol: str) -> str:
        return hyperliquid.venue_symbol(symbol)

    @property
    def ping_interval(self) -> float:
        return self.timing.hyperliquid_ping

    def url(self) -> str:
        return self.settings.hyperliquid_ws_url

    def subscriptions(self, symbols: list[str], subscribe: bool = True) -> list[bytes]:
        method = "subscribe" if subscribe else "unsubscribe"
        coins = [c for c in symbols if c not in self.unlisted]
        if subscribe:
            now_ms = self.clock() * 1000.0
            self._backfill.update((coin, now_ms) for coin in coins)
        return [
            hyperliquid.subscribe_frame(kind, coin, method)
            for coin in coins
            for kind in self.CHANNELS
        ]

    def on_open(self) -> None:
        """Ask for ``allMids`` first and subscribe the coins once it names them all: HyperLiquid
        may close the whole connection on a subscription to a coin it does not have."""
        self._listed = None
        self._books_asked = False
        self.send(hyperliquid.subscribe_frame("allMids"))
        self.later(MIDS_WAIT_S, self._ask_books)  # no allMids in time: subscribe anyway

    def _ask_books(self) -> None:
        if not self._books_asked:
            self._books_asked = True
            self.send(*self.subscriptions(list(self.pipeline.symbols)))

    def on_symbols_changed(self, added: list[str], removed: list[str]) -> None:
        if removed:
            self.send(*self.subscriptions(removed, subscribe=False))
        if self._listed is not None:
            added = self._check_listed(added)
        if added and self._books_asked:
            self.send(*self.subscriptions(added))

    def on_frame(self, raw: str | bytes, now: float) -> None:
        events = hyperliquid.parse(raw, now)
        if not events:
            return
        first = events[0]
        kind = type(first)
        if isinstance(first, hyperliquid.Reply):
            self._reply(first)
            return
        if kind is Trade:
            trades = cast("list[Trade]", events)
            since = self._backfill.pop(trades[0].symbol, None)
            if since is not None:  # the first frame after subscribing replays history
                trades = [replace(t, backfill=True) if t.ts_ms <= since else t for t in trades]
            self.pipeline.handle(self._dedupe.fresh(trades))
            return
        if kind is Ticker and self._listed is None and "allMids" in str(raw[:40]):
            listed = {cast(Ticker, e).symbol for e in events}
            if len(listed) >= MIDS_COMPLETE:  # the whole list (the real one has hundreds)
                self._listed = listed
                self._check_listed(list(self.pipeline.symbols))
            self._ask_books()
        self.pipeline.handle(cast("list[Event]", events))

    def _check_listed(self, coins: list[str]) -> list[str]:
        """Keep the coins HyperLiquid lists; fix a coin's case (``KPEPE`` → ``kPEPE``); say
        which do not exist. Returns the coins to subscribe."""
        listed = self._listed or set()
        keep = []
        for coin in coins:
            if coin in listed or coin in self.unlisted:
                keep.append(coin)
                continue
            near = [c for c in listed if c.upper() == coin.upper()]
            if near and near[0] not in self.pipeline.syncs:
                name = self.pipeline.names[coin]
                self.pipeline.remove_symbol(coin)
                self.pipeline.add_symbol(near[0], name, detail="subscribing")
                keep.append(near[0])
                continue
            self.not_listed(coin, f"{coin}: not listed on HyperLiquid")
        return [c for c in keep if c not in self.unlisted]

    def _reply(self, reply: hyperliquid.Reply) -> None:
        if reply.ok:
            return
        if "allMids" in reply.message:  # no list of coins to check against: subscribe now
            self._ask_books()
        match = re.search(r'"coin"\s*:\s*"([^"]+)"', reply.message)
        if match and match.group(1) in self.pipeline.syncs:
            coin = match.group(1)
            self.not_listed(coin, f"{coin}: not listed on HyperLiquid ({reply.message[:80]})")
        else:
            log.warning("%s: error from the server: %s", self.exchange, reply.message[:200])
            self.health.detail = f"HyperLiquid: {reply.message[:120]}"


class _ReplayFeed(_Feed):
    """A recording (``MARKET_REPLAY_FILE``) through the same adapters, book sync, pipeline and
    store as the live feeds, paced by ``MARKET_REPLAY_SPEED``, labelled ``replay``
    (market/replay.py). When it is over the books stay on screen: "replay finished"."""

    exchange = "replay"

    def __init__(self, worker: Worker, settings: Settings) -> None:
        super().__init__(worker, settings)
        self.session = ReplaySession(
            self.store, settings, clock=self.clock, bad_log_interval=self.timing.bad_log_interval
        )
        self.health.source = "replay"

    def set_symbols(self, symbols: tuple[str, ...]) -> None:
        self.session.set_symbols(symbols)
        self.health.symbols = symbols

    async def run(self) -> None:
        publisher = asyncio.create_task(self.publish_forever())
        try:
            await self.session.play(self.health)
        finally:
            publisher.cancel()


FEEDS: dict[str, Callable[[Worker, Settings], _Feed]] = {
    "binance": _BinanceFeed,
    "bybit": _BybitFeed,
    "hyperliquid": _HyperLiquidFeed,
    "mock": _MockFeed,
    "replay": _ReplayFeed,
}
VENUE_SYMBOL: dict[str, Callable[[str], str]] = {
    "binance": binance.venue_symbol,
    "bybit": bybit.venue_symbol,
    "hyperliquid": hyperliquid.venue_symbol,
}


def _consume(future: asyncio.Future[Any]) -> None:
    """Mark a future's error as retrieved (else asyncio logs it when it is collected)."""
    if not future.cancelled():
        future.exception()


def _http_get(url: str, timeout: float) -> bytes:
    """GET a REST resource; refusals and errors translated into the market error tree."""
    request = urllib.request.Request(url, headers={"User-Agent": "market-monitor/0.1"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        code = exc.code
        if code in BLOCKED_STATUSES:
            raise RegionBlocked(code, f"HTTP {code}: {BLOCKED_STATUSES[code]}") from exc
        payload: Any = None
        with contextlib.suppress(Exception):
            payload = orjson.loads(exc.read())
        if not isinstance(payload, dict):
            payload = {}
        detail = str(payload.get("msg", ""))
        if payload.get("code") == -1121:  # Binance: "Invalid symbol."
            raise InvalidSymbol(detail or "invalid symbol") from exc
        raise SnapshotError(f"HTTP {code}{': ' + detail if detail else ''}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SnapshotError(f"REST request failed: {reason}") from exc
