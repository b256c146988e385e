"""The worker: one daemon thread, one asyncio loop, one feed per watched exchange.

    Worker.start() ──thread──▶ asyncio loop ──▶ one feed task per exchange
                                                 ├─ Connection (market/connection.py) running
                                                 │  the venue's Session (market/venues/)
                                                 ├─ SimulatedFeed: the simulated venue
                                                 └─ ReplayFeed: a recording (market/replay.py)

Every exchange's connection carries all watched symbols; ``reconfigure`` adds or removes
symbols on the open connections and opens or closes a connection only for an exchange added
or removed. Symbols are the user's names (``BTCUSDT``); each venue maps them to its own.
The worker never touches streamlit; ``stop()`` is idempotent and joins the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from market.connection import Connection
from market.errors import FeedError, InvalidSymbol
from market.feed import PUBLISH_INTERVAL_S, Feed, FeedContext, ReplayFeed, SimulatedFeed, Timing
from market.recording import Recorder
from market.replay import check_settings
from market.settings import REPLAY, Settings
from market.store import MarketStore
from market.symbols import parse_symbols
from market.venues import SESSIONS, SIMULATED

__all__ = ["PUBLISH_INTERVAL_S", "Timing", "Worker", "check_symbols"]

log = logging.getLogger(__name__)

FeedFactory = Callable[[FeedContext, Settings], Feed]
FEEDS: dict[str, FeedFactory] = {
    **{name: functools.partial(Connection, session_type=s) for name, s in SESSIONS.items()},
    SIMULATED: SimulatedFeed,
    REPLAY: ReplayFeed,
}


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
        # what each feed gets of the worker (never the worker itself)
        self.context = FeedContext(self.store, self.timing, clock)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None
        # loop thread only: the feed of each watched exchange and the task running it
        self._feeds: dict[str, Feed] = {}
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
    def recorder(self) -> Recorder | None:
        """``python -m market record``: every frame and REST snapshot as received (set before
        ``start``); the feeds read it from their context."""
        return self.context.recorder

    @recorder.setter
    def recorder(self, recorder: Recorder | None) -> None:
        self.context.recorder = recorder

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
                new = replace(new, exchanges=known_exchanges(exchanges))
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
            feed = FEEDS[exchange](self.context, settings)
            previous = self._tasks.get(exchange)
            self._feeds[exchange] = feed
            feed.publish()  # readers see "connecting" from the start
            self._tasks[exchange] = asyncio.get_running_loop().create_task(
                self._run_feed(feed, previous)
            )

    def _purge(self, settings: Settings) -> None:
        """Forget the markets and statuses of what ``settings`` no longer watches."""
        snap = self.store.snapshot(series=False, max_trades=0)
        for key in list(snap.markets):
            if key[0] not in settings.exchanges or key[1] not in settings.symbols:
                self.store.remove_market(*key)
        for exchange in list(snap.statuses):
            if exchange not in settings.exchanges:
                self.store.remove_status(exchange)

    async def _run_feed(self, feed: Feed, previous: asyncio.Task[None] | None) -> None:
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


def known_exchanges(exchanges: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(e.strip().lower() for e in exchanges if e.strip()))
    if not names:
        raise InvalidSymbol("no exchange chosen")
    unknown = [e for e in names if e not in FEEDS]
    if unknown:
        raise FeedError(f"unknown exchange {unknown[0][:40]!r}: one of {', '.join(FEEDS)}")
    return names


def check_symbols(settings: Settings) -> Settings:
    """The one symbol check (``parse_symbols``), then each venue's own mapping (raises
    ``InvalidSymbol`` naming the symbol): a ``Settings`` built in code has not been through
    ``from_env``. A replay's symbols are the recording's (market/replay.py)."""
    if REPLAY in settings.exchanges:
        return check_settings(settings)
    symbols = parse_symbols(settings.symbols)
    exchanges = known_exchanges(settings.exchanges)
    for exchange in exchanges:
        session = SESSIONS.get(exchange)
        if session is not None:
            for symbol in symbols:
                session.venue_symbol(symbol)
    return replace(settings, exchanges=exchanges, symbols=symbols)
