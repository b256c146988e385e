"""The worker: one daemon thread, one asyncio loop, the exchange connections.

    Worker.start() ──thread──▶ asyncio loop ──▶ feed task (one per configured exchange)
                                                 ├─ connect (backoff with jitter, 1 s → 30 s)
                                                 ├─ reader: frames → adapter.parse → Pipeline
                                                 ├─ watchdog: silent for STALE_AFTER_SECONDS,
                                                 │  or older than the 24 h limit → reconnect
                                                 ├─ snapshot fetches (≤ 1 in flight a symbol)
                                                 └─ status publisher (FeedStatus → store)

A refusal (HTTP 451, or 403 at the handshake) is not retried blindly: the feed says
``blocked``, retries at most once a ``blocked_retry`` (60 s), and meanwhile, unless
``MARKET_FALLBACK=none``, the symbols run on the simulated feed, labelled ``simulated``.
The worker never touches streamlit; ``stop()`` is idempotent and joins the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from market.errors import BadMessage, FeedError, InvalidSymbol, RegionBlocked, SnapshotError
from market.events import FeedState, FeedStatus, ServerNotice, Source
from market.feeds import binance, mock
from market.pipeline import Pipeline
from market.settings import Settings, validate_symbol
from market.store import MarketStore
from market.sync import BinanceSync, SequencedSync

log = logging.getLogger(__name__)

BLOCKED_STATUSES = {451: "restricted location", 403: "forbidden"}
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
    return f"{type(exc).__name__}: {exc}"


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
            next_retry_in_s=None if self.next_retry_at is None else max(0.0, self.next_retry_at - now),
            stale_after_s=min(STALE_WARN_S, self.stale_after),
            symbols=self.symbols,
        )

    def bad(self, exc: BaseException, raw: object, now: float, interval: float) -> None:
        self.bad_messages += 1
        if now - self._bad_logged_at >= interval:
            extra = f" ({self._bad_suppressed} more since the last report)" if self._bad_suppressed else ""
            log.warning("%s: bad message skipped: %s; frame %.120r%s", self.exchange, exc, raw, extra)
            self._bad_logged_at = now
            self._bad_suppressed = 0
        else:
            self._bad_suppressed += 1


class _Reconnect(Exception):
    """Leave the current connection and connect again (reason in the message)."""


class Worker:
    """Owns the thread, the loop and the feed; readers use ``store.snapshot()``."""

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
        self.timing = timing or Timing()
        self.clock = clock
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._feed_task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        # Guards _settings and the start/stop transitions; held briefly, never across a join.
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
        """Stop the feed and join the thread. Safe to call any number of times."""
        with self._lock:
            thread, loop = self._thread, self._loop
            already = self._stopped.is_set()
            self._stopped.set()
        if thread is None or already:
            return
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may have just closed
                loop.call_soon_threadsafe(self._cancel_feed)
        thread.join(timeout)

    def reconfigure(self, exchange: str | None = None, symbols: tuple[str, ...] | None = None) -> Settings:
        """Switch exchange and/or symbols; validated first (``InvalidSymbol``, nothing sent)."""
        with self._lock:
            new = self._settings
            if exchange is not None:
                new = replace(new, exchange=exchange)
            if symbols is not None:
                new = replace(new, symbols=symbols)
            new = check_symbols(new)
            if new == self._settings:
                return new
            self._settings = new
            loop = self._loop
        if loop is not None and self.running:
            loop.call_soon_threadsafe(self._restart_feed, new)
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
        self._loop = asyncio.get_running_loop()
        self._restart_feed(self.settings)
        self._ready.set()
        if self._stopped.is_set():
            self._cancel_feed()
        while self._feed_task is not None:
            task = self._feed_task
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if task is self._feed_task:  # not replaced by a reconfigure: we are done
                break

    def _cancel_feed(self) -> None:
        task, self._feed_task = self._feed_task, None
        if task is not None:
            task.cancel()

    def _restart_feed(self, settings: Settings) -> None:
        old = self._feed_task
        if old is not None:
            old.cancel()
        self._feed_task = asyncio.get_running_loop().create_task(self._feed(settings, old))

    async def _feed(self, settings: Settings, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await previous
        for key in list(self.store.snapshot(series=False).markets):
            if key[0] != settings.exchange or key[1] not in settings.symbols:
                self.store.remove_market(*key)
        if settings.exchange == "mock":
            feed: _Feed = _MockFeed(self, settings)
        elif settings.exchange == "binance":
            feed = _BinanceFeed(self, settings)
        else:
            feed = _UnsupportedFeed(self, settings)
        try:
            await feed.run()
        finally:
            feed.health.state = "stopped"
            feed.health.next_retry_at = None
            feed.publish()


def check_symbols(settings: Settings) -> Settings:
    """Apply the common symbol rules, then the exchange's own (raises ``InvalidSymbol``
    naming the symbol): a ``Settings`` built in code has not been through ``from_env``."""
    symbols = tuple(dict.fromkeys(validate_symbol(s) for s in settings.symbols))
    if not symbols:
        raise InvalidSymbol("no symbols given")
    if settings.exchange == "binance":
        symbols = tuple(dict.fromkeys(binance.venue_symbol(s) for s in symbols))
    return replace(settings, symbols=symbols)


class _Feed:
    """What every feed shares: health, status publishing, the simulated stand-in."""

    exchange: str

    def __init__(self, worker: Worker, settings: Settings) -> None:
        self.worker = worker
        self.settings = settings
        self.store = worker.store
        self.timing = worker.timing
        self.clock = worker.clock
        self.exchange = settings.exchange
        self.health = _Health(self.exchange, settings.stale_after)
        self.health.symbols = settings.symbols

    def publish(self) -> None:
        self.store.set_status(self.health.status(self.clock()), self.health.last_message_at)

    async def publish_forever(self) -> None:
        while True:
            self.publish()
            await asyncio.sleep(self.timing.status_interval)

    async def simulate(self, pipeline: Pipeline, seed: int | None) -> None:
        """Drive ``pipeline`` with the simulated exchange until cancelled."""
        sim = mock.MockExchange(pipeline.symbols, seed)
        now = self.clock()
        pipeline.handle(sim.start(now))
        self.health.last_message_at = now
        while True:
            await asyncio.sleep(self.timing.mock_interval)
            now = self.clock()
            events = sim.step(now)
            self.health.messages += len(events)
            self.health.last_message_at = now
            pipeline.handle(events)

    async def run(self) -> None:
        raise NotImplementedError


class _MockFeed(_Feed):
    async def run(self) -> None:
        h = self.health
        h.state, h.source, h.detail = "simulated", "simulated", "simulated feed (MARKET_EXCHANGE=mock)"
        pipeline = Pipeline(self.store, self.exchange, self.settings.symbols, SequencedSync, source="simulated")
        publisher = asyncio.create_task(self.publish_forever())
        try:
            await self.simulate(pipeline, self.settings.mock_seed)
        finally:
            publisher.cancel()


class _UnsupportedFeed(_Feed):
    async def run(self) -> None:
        self.health.state = "stopped"
        self.health.detail = f"{self.exchange}: not supported yet"
        self.publish()
        await asyncio.Event().wait()


class _BinanceFeed(_Feed):
    def __init__(self, worker: Worker, settings: Settings) -> None:
        super().__init__(worker, settings)
        self.pipeline = Pipeline(
            self.store, self.exchange, settings.symbols, BinanceSync, on_resync=self._on_resync
        )
        self._snapshots: dict[str, asyncio.Task[None]] = {}
        self._snapshot_delays: dict[str, Iterator[float]] = {}
        self._fatal: asyncio.Future[BaseException] | None = None
        self._sim_task: asyncio.Task[None] | None = None
        self._last_resync_at: dict[str, float] = {}
        self._resync_delays: dict[str, Iterator[float]] = {}
        self._healthy = False
        # REST calls run here, not in the loop's default executor: asyncio.run() waits for
        # that one at exit, so a hanging request would hold stop() for the whole timeout.
        self._rest = ThreadPoolExecutor(thread_name_prefix="market-rest")
        self._fetches: dict[str, asyncio.Future[bytes]] = {}  # the last REST call per symbol

    # -- connection loop ----------------------------------------------------------------------

    def _delays(self) -> Iterator[float]:
        t = self.timing
        return backoff(t.backoff_initial, t.backoff_factor, t.backoff_cap, t.backoff_jitter)

    async def run(self) -> None:
        delays = self._delays()
        publisher = asyncio.create_task(self.publish_forever())
        h = self.health
        try:
            while True:
                h.state = "connecting" if h.reconnects == 0 and self._sim_task is None else "reconnecting"
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
                        self._cancel_snapshots()  # no REST retries while we are refused
                        await self._blocked(blocked)
                        delays = self._delays()
                        continue
                    reason = str(exc) if isinstance(exc, (_Reconnect, FeedError)) else describe(exc)
                finally:
                    self._cancel_snapshots()
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
            self._cancel_snapshots()
            self._rest.shutdown(wait=False, cancel_futures=True)
            await self._stop_simulation()

    async def _session(self) -> None:
        """One connection, from handshake to drop: always ends by raising why it ended."""
        url = binance.stream_url(self.settings.binance_ws_url, self.pipeline.symbols)
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
            self.pipeline.reset_all("syncing: waiting for the snapshot")
            for symbol in self.pipeline.symbols:
                self._request_snapshot(symbol)
            self.publish()
            log.info("%s: connected to %s", self.exchange, url.split("?")[0])
            reader = asyncio.create_task(self._read(ws))
            watchdog = asyncio.create_task(self._watch(opened))
            try:
                await asyncio.wait({reader, watchdog, self._fatal}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                reader.cancel()
                watchdog.cancel()
            self._healthy = h.messages > messages_at_open
            if self._fatal.done():
                raise self._fatal.result()
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                raise reader.exception()  # type: ignore[misc]
            if watchdog.done() and not watchdog.cancelled():
                raise _Reconnect(watchdog.result())
            raise _Reconnect("connection closed")

    async def _read(self, ws: ClientConnection) -> None:
        h = self.health
        parse = binance.parse
        handle = self.pipeline.handle
        clock = self.clock
        async for raw in ws:
            now = clock()
            h.messages += 1
            h.last_message_at = now
            try:
                events = parse(raw, now)
            except BadMessage as exc:
                h.bad(exc, raw, now, self.timing.bad_log_interval)
                continue
            if events and type(events[0]) is ServerNotice:
                raise _Reconnect("the server announced a shutdown (serverShutdown)")
            handle(events)
            h.resyncs = self.pipeline.resyncs
        code, why = ws.close_code, ws.close_reason
        raise _Reconnect(f"closed by the server (code {code}{': ' + why if why else ''})")

    async def _watch(self, opened: float) -> str:
        """Return a reason to reconnect: silence past ``stale_after``, or the 24 h limit."""
        h = self.health
        stale_after = self.settings.stale_after
        while True:
            await asyncio.sleep(min(1.0, stale_after / 4))
            now = self.clock()
            if h.last_message_at is not None and now - h.last_message_at > stale_after:
                return f"no data for {now - h.last_message_at:.1f} s (watchdog)"
            if now - opened > self.timing.max_connection_age:
                return "connection reached its maximum age (Binance closes at 24 h)"
            if h.detail.startswith("connected") and all(s.synced for s in self.pipeline.syncs.values()):
                h.detail = "streaming"

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
            self.exchange, blocked.detail, retry, "; simulated data meanwhile" if fallback else "",
        )
        if fallback and self._sim_task is None:
            h.source = "simulated"
            sim = Pipeline(self.store, self.exchange, self.pipeline.symbols, SequencedSync, source="simulated")
            self._sim_task = asyncio.create_task(self.simulate(sim, self.settings.mock_seed))
        elif not fallback:
            for symbol in self.pipeline.symbols:
                self.store.mark_unsynced(self.exchange, symbol, blocked.detail, resync=False)
        self.publish()
        await asyncio.sleep(retry)

    async def _stop_simulation(self) -> None:
        task, self._sim_task = self._sim_task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self.health.source = "live"
        for symbol in self.pipeline.symbols:
            self.store.reset_market(self.exchange, symbol, "live", "connecting")

    # -- snapshots ----------------------------------------------------------------------------

    def _on_resync(self, symbol: str, reason: str) -> None:
        """A book must be rebuilt: fetch a snapshot now, or later if resyncs keep coming."""
        t = self.timing
        now = self.clock()
        last = self._last_resync_at.get(symbol)
        self._last_resync_at[symbol] = now
        if last is None or now - last > t.resync_calm:
            self._resync_delays[symbol] = backoff(
                t.snapshot_retry_initial, 2.0, t.snapshot_retry_cap, t.backoff_jitter
            )
            delay = t.snapshot_too_old_retry if "older" in reason else 0.0
        else:  # a resync storm (e.g. the snapshots themselves are bad): do not hammer REST
            delay = next(self._resync_delays[symbol])
        self._request_snapshot(symbol, delay)

    def _request_snapshot(self, symbol: str, delay: float = 0.0) -> None:
        task = self._snapshots.get(symbol)
        if task is not None and not task.done():
            return  # at most one request in flight per symbol
        self._snapshots[symbol] = asyncio.get_running_loop().create_task(self._snapshot(symbol, delay))

    def _cancel_snapshots(self) -> None:
        for task in self._snapshots.values():
            task.cancel()
        self._snapshots.clear()

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
                detail = f"{symbol}: {exc}: no such market"
                self.store.mark_unsynced(self.exchange, symbol, detail, resync=False)
                log.warning("%s: %s", self.exchange, detail)
                return
            except (SnapshotError, BadMessage) as exc:
                wait = next(delays)
                self.store.mark_unsynced(
                    self.exchange, symbol, f"snapshot failed ({exc}); retrying in {wait:.1f} s", resync=False
                )
                log.info("%s %s: snapshot failed (%s); retrying in %.1f s", self.exchange, symbol, exc, wait)
                await asyncio.sleep(wait)
                continue
            self._snapshot_delays.pop(symbol, None)  # success resets the snapshot backoff
            self._snapshots.pop(symbol, None)  # this fetch is over: a resync may start another
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
            raise InvalidSymbol(f"{detail or 'invalid symbol'} (Binance)") from exc
        raise SnapshotError(f"HTTP {code}{': ' + detail if detail else ''}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SnapshotError(f"REST request failed: {reason}") from exc


