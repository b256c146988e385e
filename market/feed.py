"""What every feed shares: its timing, health counters and status, the simulated stand-in.

A feed is what the worker runs for one exchange: ``market.connection.Connection`` for a venue
(a WebSocket and its ``Session``), ``SimulatedFeed`` for the simulated venue, ``ReplayFeed`` for a
recording. A feed gets a ``FeedContext`` (the store, its delays, the clock, the recorder), never
the worker. Each keeps a ``Health`` (touched by the loop thread only) and publishes it to the
store as a ``FeedStatus`` every ``status_interval``.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from market.events import Event, FeedState, FeedStatus, Source
from market.pipeline import Pipeline
from market.replay import ReplaySession
from market.settings import REPLAY, Settings
from market.sync import SequencedSync
from market.venues import SIMULATED, SIMULATOR
from market.venues.base import Simulator

if TYPE_CHECKING:
    from market.recording import Recorder
    from market.store import MarketStore

log = logging.getLogger(__name__)

PUBLISH_INTERVAL_S = 0.1  # the page reads every 0.8 s: 10 copies a second per book are plenty
STALE_WARN_S = 5.0  # the page turns red after this much silence, long before the watchdog


@dataclass(frozen=True, slots=True)
class Timing:
    """Every delay of the worker; tests inject small ones through the constructor."""

    backoff_initial: float = 1.0
    backoff_factor: float = 2.0
    backoff_cap: float = 30.0
    backoff_jitter: float = 0.2  # each delay is drawn from [(1 - jitter) * d, d]
    blocked_retry: float = 60.0
    max_connection_age: float | None = None  # None: the venue's own (Session.max_age)
    status_interval: float = 0.25
    snapshot_retry_initial: float = 1.0
    snapshot_retry_cap: float = 30.0
    snapshot_too_old_retry: float = 0.5
    resync_calm: float = 10.0  # a resync within this long of the previous one is delayed
    mock_interval: float = 0.1
    publish_interval: float = PUBLISH_INTERVAL_S  # a busy book is copied out at most this often
    ping: float | None = None  # application pings, where a venue wants them; None: its own
    bad_log_interval: float = 10.0
    close_timeout: float = 2.0


class Health:
    """Counters of one feed; only the loop thread touches them."""

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
        """The feed's status; ``now`` dates a sample of the message rate (the last 16)."""
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
            last_message_at=self.last_message_at,
            msg_rate=round(rate, 2),
            next_retry_at=self.next_retry_at,
            stale_after_s=min(STALE_WARN_S, self.stale_after),
            symbols=self.symbols,
        )

    def bad(self, exc: BaseException, raw: object, now: float, interval: float) -> None:
        """Count a bad message; log it at most once an ``interval`` (with a short excerpt)."""
        self.bad_messages += 1
        if now - self._bad_logged_at >= interval:
            extra = (
                f" ({self._bad_suppressed} more since the last report)"
                if self._bad_suppressed
                else ""
            )
            excerpt = raw[:120] if isinstance(raw, (str, bytes)) else raw
            log.warning(
                "%s: bad message skipped: %s; frame %.120r%s", self.exchange, exc, excerpt, extra
            )
            self._bad_logged_at = now
            self._bad_suppressed = 0
        else:
            self._bad_suppressed += 1


def seed_of(seed: int | None, symbol: str) -> int | None:
    """One simulated market's seed: the same seed and symbol, the same stream."""
    return None if seed is None else seed * 1_000_003 + zlib.crc32(symbol.encode())


def update_pipeline(pipeline: Pipeline, markets: dict[str, str]) -> tuple[list[str], list[str]]:
    """Make ``pipeline`` watch exactly ``markets``; returns (added, removed) venue symbols."""
    removed = [v for v, name in pipeline.names.items() if markets.get(v) != name]
    for venue in removed:
        pipeline.remove_symbol(venue)
    added = [v for v in markets if v not in pipeline.syncs]
    for venue in added:
        pipeline.add_symbol(venue, markets[venue], detail="subscribing")
    return added, removed


@dataclass(slots=True)
class FeedContext:
    """What a feed gets of the worker that runs it, and nothing more: the store it writes, its
    delays, its clock, and the recorder of raw frames (``python -m market record``; None but
    while recording, set by the worker's owner before the feeds start)."""

    store: MarketStore
    timing: Timing
    clock: Callable[[], float]
    recorder: Recorder | None = None


class Feed:
    """What every feed shares: health, status publishing, the simulated stand-in."""

    exchange: str

    def __init__(self, context: FeedContext, settings: Settings) -> None:
        self.context = context
        self.settings = settings
        self.store = context.store
        self.timing = context.timing
        self.clock = context.clock
        self.health = Health(self.exchange, settings.stale_after)
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
        self.store.set_status(self.health.status(self.clock()))

    async def publish_forever(self) -> None:
        while True:
            self.publish()
            await asyncio.sleep(self.timing.status_interval)

    def sim_pipeline(self, markets: dict[str, str]) -> Pipeline:
        """A pipeline for simulated data; a book that fails is restarted by ``simulate``."""
        return Pipeline(
            self.store, self.exchange, markets, SequencedSync, source="simulated",
            on_resync=lambda symbol, reason: self._sim_restart.add(symbol),
        )  # fmt: skip

    async def simulate(self, pipeline: Pipeline, seed: int | None) -> None:
        """Drive ``pipeline`` with simulated markets until cancelled; follows its symbols
        as they are added and removed (one seeded simulator per market)."""
        sims: dict[str, Simulator] = {}
        self._sim_restart.clear()
        h = self.health
        while True:
            now = self.clock()
            events: list[Event] = []
            for symbol in pipeline.symbols:
                sim = sims.get(symbol)
                if sim is None or symbol in self._sim_restart:
                    sim = sims[symbol] = SIMULATOR((symbol,), seed_of(seed, symbol))
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


class SimulatedFeed(Feed):
    """The simulated venue (``MARKET_EXCHANGE`` naming it), labelled ``simulated`` everywhere."""

    exchange = SIMULATED

    def __init__(self, context: FeedContext, settings: Settings) -> None:
        super().__init__(context, settings)
        self.pipeline = self.sim_pipeline(self.markets(settings.symbols))

    def set_symbols(self, symbols: tuple[str, ...]) -> None:
        update_pipeline(self.pipeline, self.markets(symbols))
        self.health.symbols = symbols

    async def run(self) -> None:
        h = self.health
        h.state, h.source = "simulated", "simulated"
        h.detail = f"simulated feed (MARKET_EXCHANGE={self.exchange})"
        publisher = asyncio.create_task(self.publish_forever())
        try:
            await self.simulate(self.pipeline, self.settings.mock_seed)
        finally:
            publisher.cancel()


class ReplayFeed(Feed):
    """A recording (``MARKET_REPLAY_FILE``) through the venue's own ``Session``, book sync,
    pipeline and store, paced by ``MARKET_REPLAY_SPEED``, labelled ``replay``
    (market/replay.py). When it is over the books stay on screen: "replay finished"."""

    exchange = REPLAY

    def __init__(self, context: FeedContext, settings: Settings) -> None:
        super().__init__(context, settings)
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
