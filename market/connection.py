"""The one connection runner: carries out any venue ``Session``'s actions on a live socket.

    Connection.run() ──▶ connect (backoff with jitter, 1 s → 30 s, reset after a healthy one)
                          ├─ reader: frames → session.receive → events → Pipeline → store
                          ├─ writer: the outbox (subscriptions, pings, resubscribes), paced
                          ├─ pings: the venue's application ping, where it wants one
                          ├─ watchdog: silent for STALE_AFTER_SECONDS, or older than the
                          │  venue's maximum age → reconnect
                          ├─ REST: snapshots in a thread (≤ 1 in flight a symbol, retried
                          │  with backoff), bodies capped at the venue's size
                          └─ refusal: HTTP 451/403 → blocked, retried once a minute, with the
                             simulated feed meanwhile (unless MARKET_FALLBACK=none)

Everything a venue is (URLs, subscriptions, replies, how a book is rebuilt) lives in its
``market/venues/<name>.py``; nothing here knows one venue from another.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from market.backoff import backoff
from market.errors import BadMessage, FeedError, RegionBlocked, SnapshotError
from market.events import Event
from market.feed import Feed, FeedContext, update_pipeline
from market.pipeline import Pipeline
from market.redact import redact_url
from market.settings import NO_FALLBACK, Settings
from market.transport import HTTPRefused, classify, describe, http_request
from market.venues.base import (
    Action,
    FetchSnapshot,
    Later,
    NotListed,
    Reconnect,
    Rename,
    Resubscribe,
    Send,
    Session,
    Status,
)

log = logging.getLogger(__name__)

MAX_QUEUE = 64  # frames the socket buffers before it stops reading (× the venue's frame cap)


class _Reconnect(Exception):
    """Leave the current connection and connect again (reason in the message)."""


class Connection(Feed):
    """One WebSocket connection carrying every watched symbol of one venue."""

    def __init__(
        self, context: FeedContext, settings: Settings, session_type: type[Session]
    ) -> None:
        self.exchange = session_type.exchange
        self.session_type = session_type
        super().__init__(context, settings)
        t = self.timing
        markets = self.markets(settings.symbols)
        self.session = session_type(settings, list(markets))
        self.max_age = t.max_connection_age or session_type.max_age
        self.ping_interval = t.ping or session_type.ping_interval
        self.pipeline = Pipeline(
            self.store, self.exchange, markets, session_type.sync_factory,
            on_resync=self._on_resync, publish_interval=t.publish_interval,
        )  # fmt: skip
        self._fatal: asyncio.Future[BaseException] | None = None
        self._sim_task: asyncio.Task[None] | None = None
        self._sim: Pipeline | None = None
        self._outbox: asyncio.Queue[bytes] | None = None  # the open connection's, else None
        self._last_resync_at: dict[str, float] = {}
        self._resync_delays: dict[str, Iterator[float]] = {}
        self._healthy = False
        # REST calls run here, not in the loop's default executor: asyncio.run() waits for
        # that one at exit, so a hanging request would hold stop() for the whole timeout.
        self._rest: ThreadPoolExecutor | None = None
        self._snapshots: dict[str, asyncio.Task[None]] = {}  # the fetch in flight per symbol
        self._snapshot_delays: dict[str, Iterator[float]] = {}
        self._fetches: dict[str, asyncio.Future[bytes]] = {}  # the last REST call per symbol

    def venue(self, symbol: str) -> str:
        return self.session_type.venue_symbol(symbol)

    # -- carrying out a session's actions -----------------------------------------------------

    def act(self, actions: Sequence[Action], delay: float = 0.0) -> None:
        if delay > 0:
            self.later(delay, lambda: self.act(actions))
            return
        for action in actions:
            if isinstance(action, (Send, Resubscribe)):
                self.send(*action.frames)
            elif isinstance(action, FetchSnapshot):
                self._request_snapshot(action.symbol, action.url)
            elif isinstance(action, Later):
                self.later(action.delay, functools.partial(self._timer, action.token))
            elif isinstance(action, NotListed):
                self.pipeline.mark(action.symbol, action.detail)
                self._cancel_snapshot(action.symbol)
                log.warning("%s: %s", self.exchange, action.detail)
            elif isinstance(action, Rename):
                name = self.pipeline.names.get(action.old)
                if name is not None:
                    self.pipeline.remove_symbol(action.old)
                    self.pipeline.add_symbol(action.new, name, detail="subscribing")
            elif isinstance(action, Status):
                self.health.detail = action.detail
                log.warning("%s: %s", self.exchange, action.detail)
            elif (
                isinstance(action, Reconnect) and self._fatal is not None and not self._fatal.done()
            ):
                self._fatal.set_result(_Reconnect(action.reason))

    def handle(self, output: tuple[list[Event], Sequence[Action]]) -> None:
        events, actions = output
        if events:
            self.pipeline.handle(events)
        if actions:
            self.act(actions)

    def _timer(self, token: str) -> None:
        self.handle(self.session.timer(token, self.clock()))

    def send(self, *frames: bytes) -> None:
        """Queue frames for the open connection (dropped when there is none: the next
        connection subscribes afresh)."""
        if self._outbox is not None:
            for frame in frames:
                self._outbox.put_nowait(frame)

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

    def set_symbols(self, symbols: tuple[str, ...]) -> None:
        markets = self.markets(symbols)
        added, removed = update_pipeline(self.pipeline, markets)
        if self._sim is not None:
            update_pipeline(self._sim, markets)
        for venue in removed:
            self._last_resync_at.pop(venue, None)
            self._resync_delays.pop(venue, None)
            self._cancel_snapshot(venue)
        self.health.symbols = tuple(markets.values())
        if not (added or removed):
            return
        actions = self.session.changed(added, removed, self.clock())
        if self._outbox is not None and self._sim is None:
            log.info("%s: subscribing %s, unsubscribing %s", self.exchange, added, removed)
            self.act(actions)

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
        self.act(self.session.rebuild(symbol, reason), delay)

    # -- the connection loop -------------------------------------------------------------------

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
                    await self._connection()
                    reason = "connection closed"
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # every error is classified and shown; none is swallowed
                    blocked = classify(exc)
                    if blocked is not None:
                        self._closed()  # no retries of any kind while we are refused
                        await self._blocked(blocked)
                        delays = self._delays()
                        continue
                    reason = str(exc) if isinstance(exc, (_Reconnect, FeedError)) else describe(exc)
                finally:
                    self._closed()
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
            self._closed()
            if self._rest is not None:
                self._rest.shutdown(wait=False, cancel_futures=True)
            await self._stop_simulation(reset=False)

    def _closed(self) -> None:
        """The connection is gone: drop what belonged to it (pending requests, snapshots)."""
        self.session.closed()
        for task in self._snapshots.values():
            task.cancel()
        self._snapshots.clear()

    async def _connection(self) -> None:
        """One connection, from handshake to drop: always ends by raising why it ended."""
        session = self.session
        url = session.url()
        self._fatal = asyncio.get_running_loop().create_future()
        async with connect(
            url,
            open_timeout=self.settings.connection_timeout,
            close_timeout=self.timing.close_timeout,
            ping_interval=20,
            ping_timeout=20,
            max_size=session.max_frame_bytes,  # a hostile endpoint cannot make us buffer more
            max_queue=MAX_QUEUE,
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
            self.pipeline.reset_all(session.syncing)
            for symbol, detail in session.unlisted.items():
                self.pipeline.mark(symbol, detail)
            outbox: asyncio.Queue[bytes] = asyncio.Queue()
            self._outbox = outbox
            self.act(session.opened(opened))
            self.publish()
            log.info("%s: connected to %s", self.exchange, redact_url(url.split("?")[0]))
            tasks: set[asyncio.Task[Any]] = {
                asyncio.create_task(self._read(ws)),
                asyncio.create_task(self._write(ws, outbox)),
            }
            watchdog = asyncio.create_task(self._watch(opened))
            tasks.add(watchdog)
            if session.ping_frame is not None and math.isfinite(self.ping_interval):
                tasks.add(asyncio.create_task(self._ping(session.ping_frame)))
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
                error = task.exception() if task.done() and not task.cancelled() else None
                if error is not None:
                    raise error
            if watchdog.done() and not watchdog.cancelled():
                raise _Reconnect(watchdog.result())
            raise _Reconnect("connection closed")

    async def _read(self, ws: ClientConnection) -> None:
        h = self.health
        receive = self.session.receive
        handle = self.handle
        clock = self.clock
        interval = self.timing.bad_log_interval
        recorder = self.context.recorder
        async for raw in ws:
            now = clock()
            if recorder is not None:
                recorder.frame(raw, time.time_ns())
            h.messages += 1
            h.last_message_at = now
            try:
                handle(receive(raw, now))
            except BadMessage as exc:
                h.bad(exc, raw, now, interval)
                continue
            h.resyncs = self.pipeline.resyncs
        code, why = ws.close_code, ws.close_reason
        raise _Reconnect(f"closed by the server (code {code}{': ' + why[:80] if why else ''})")

    async def _write(self, ws: ClientConnection, outbox: asyncio.Queue[bytes]) -> None:
        pause = self.session.send_interval
        while True:
            frame = await outbox.get()
            await ws.send(frame.decode())  # text frames: what the exchanges expect
            if pause:
                await asyncio.sleep(pause)

    async def _ping(self, frame: bytes) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            self.send(frame)

    async def _watch(self, opened: float) -> str:
        """Return a reason to reconnect: silence past ``stale_after``, or the age limit."""
        h = self.health
        stale_after = self.settings.stale_after
        unlisted = self.session.unlisted
        while True:
            await asyncio.sleep(min(1.0, stale_after / 4))
            now = self.clock()
            if h.last_message_at is not None and now - h.last_message_at > stale_after:
                return f"no data for {now - h.last_message_at:.1f} s (watchdog)"
            if now - opened > self.max_age:
                return f"connection reached its maximum age ({self.session.max_age_note})"
            if h.detail.startswith("connected") and all(
                s.synced for v, s in self.pipeline.syncs.items() if v not in unlisted
            ):
                h.detail = "streaming"

    # -- REST snapshots ------------------------------------------------------------------------

    def _request_snapshot(self, symbol: str, url: str) -> None:
        task = self._snapshots.get(symbol)
        if task is not None and not task.done():
            return  # at most one request in flight per symbol
        self._snapshots[symbol] = asyncio.get_running_loop().create_task(
            self._snapshot(symbol, url)
        )

    def _cancel_snapshot(self, symbol: str) -> None:
        task = self._snapshots.pop(symbol, None)
        if task is not None:
            task.cancel()

    async def _snapshot(self, symbol: str, url: str) -> None:
        t = self.timing
        delays = self._snapshot_delays.setdefault(
            symbol, backoff(t.snapshot_retry_initial, 2.0, t.snapshot_retry_cap, t.backoff_jitter)
        )
        while True:
            try:
                body = await self._fetch(symbol, url)
                output = self.session.snapshot(symbol, body, self.clock())
            except RegionBlocked as exc:
                if self._fatal is not None and not self._fatal.done():
                    self._fatal.set_result(exc)
                return
            except (HTTPRefused, SnapshotError, BadMessage) as exc:
                why = str(exc)
                if isinstance(exc, HTTPRefused):
                    actions = self.session.refused(symbol, exc.status, exc.body)
                    if actions:  # the venue said why (e.g. not listed): not retried
                        self._snapshots.pop(symbol, None)
                        self.act(actions)
                        return
                    why = self.session.refusal(exc.status, exc.body)
                wait = next(delays)
                self.pipeline.mark(symbol, f"snapshot failed ({why}); retrying in {wait:.1f} s")
                log.info("%s %s: snapshot failed (%s); retrying in %.1f s",
                         self.exchange, symbol, exc, wait)  # fmt: skip
                await asyncio.sleep(wait)
                continue
            self._snapshot_delays.pop(symbol, None)  # success resets the snapshot backoff
            self._snapshots.pop(symbol, None)  # this fetch is over: a resync may start another
            recorder = self.context.recorder
            if recorder is not None:  # in the order the pipeline sees it
                recorder.snapshot(body, symbol, time.time_ns())
            self.handle(output)
            self.health.resyncs = self.pipeline.resyncs
            return

    async def _fetch(self, symbol: str, url: str) -> bytes:
        """GET ``url`` in a thread, never two at once for one symbol: a cancelled fetch's
        thread cannot be stopped (e.g. across a reconnect), so the next one waits for it."""
        previous = self._fetches.get(symbol)
        if previous is not None and not previous.done():
            await asyncio.wait({previous})
        if self._rest is None:
            self._rest = ThreadPoolExecutor(thread_name_prefix="market-rest")
        fetch = asyncio.get_running_loop().run_in_executor(
            self._rest, http_request, url, self.settings.connection_timeout,
            self.session.max_rest_bytes,
        )  # fmt: skip
        fetch.add_done_callback(_consume)  # its error may have no reader once we are cancelled
        self._fetches[symbol] = fetch
        return await asyncio.shield(fetch)  # cancelling us leaves ``fetch`` pending until done

    # -- refused for our location --------------------------------------------------------------

    async def _blocked(self, blocked: RegionBlocked) -> None:
        """Refused for our location: say so, stop hammering, show labelled simulated data."""
        h = self.health
        retry = self.timing.blocked_retry
        fallback = self.settings.fallback != NO_FALLBACK
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


def _consume(future: asyncio.Future[Any]) -> None:
    """Mark a future's error as retrieved (else asyncio logs it when it is collected)."""
    if not future.cancelled():
        future.exception()
