"""Replay a recording through the same venue Session, book sync, pipeline and store as live.

    python -m market watch --replay FILE.gz --speed 1|10|max
    MARKET_EXCHANGE=replay MARKET_REPLAY_FILE=FILE.gz [MARKET_REPLAY_SPEED=10] ./run.sh

    recording ──read()──▶ Player ──▶ the venue's own Session ──events──▶ Pipeline ──▶ store
       │  <ns> <frame> lines, REST snapshots inline      (market/venues/<name>.py)
       └─ paced by the receive times ÷ speed (max: no pauses, the loop yields every CHUNK)

The recording says which exchange it came from (``detect_exchange``); its frames go through
the very ``Session`` class the live connection runs (``market.venues.SESSIONS``), with its
book discipline: ``SnapshotSync`` fed by the REST snapshots recorded inline, a venue's level
window, whole images, backfill marking and de-duplication. Its actions are carried
out in recording time: ``Later`` timers fire as the recording passes them, a refused symbol
is marked, a ``Reconnect`` rebuilds every book; ``Send`` and ``FetchSnapshot`` do nothing,
since the recording holds what came of them (the live worker fetched a snapshot after every
gap, so the next one is there). Markets and status are published under the exchange
``replay``, ``source="replay"``. ``market bench`` times the same ``Player``.

Symbols: every symbol with a book or trades in the recording, or only those asked for
(``MARKET_SYMBOLS`` / ``--symbols``, mapped to the venue's names like the live feeds do).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from market.errors import BadMessage, InvalidSymbol, SettingsError
from market.events import BookDelta, BookSnapshot, Event, FeedState, Source, Trade
from market.pipeline import Pipeline
from market.recording import Pacer, Record, companions, read
from market.settings import REPLAY, Settings
from market.store import MarketStore
from market.symbols import MAX_SYMBOLS, SYMBOL_RE, validate_symbol
from market.venues import RECORDABLE, SESSIONS, described, detect_exchange
from market.venues.base import Action, Later, NotListed, Output, Reconnect, Rename, Session

log = logging.getLogger(__name__)

CHUNK = 256  # frames handled between two yields to the event loop when nothing else pauses


class Player:
    """Feeds records to a venue ``Session`` and a ``Pipeline`` as a live connection would,
    carrying out the session's actions in recording time (see the module docstring)."""

    def __init__(self, session: Session, pipeline: Pipeline) -> None:
        self.session = session
        self.pipeline = pipeline
        self._timers: list[tuple[float, int, str]] = []  # (due, order, token)
        self._order = 0

    def start(self, now: float) -> None:
        """The connection opens at ``now`` (the recording's first receive time)."""
        self._timers.clear()
        self.act(self.session.opened(now), now)

    def feed(self, record: Record) -> list[Event]:
        """One record through the session; returns its events. ``BadMessage`` when bad."""
        at = record.received_at
        timers = self._timers
        while timers and timers[0][0] <= at:
            due, _, token = heapq.heappop(timers)
            self.output(self.session.timer(token, due), due)
        if record.snapshot_symbol is not None:
            out = self.session.snapshot(record.snapshot_symbol, record.raw, at)
        else:
            out = self.session.receive(record.raw, at)
        self.output(out, at)
        return out[0]

    def output(self, out: Output, now: float) -> None:
        events, actions = out
        if events:
            self.pipeline.handle(events)
        if actions:
            self.act(actions, now)

    def act(self, actions: Sequence[Action], now: float) -> None:
        pipeline = self.pipeline
        for action in actions:
            if isinstance(action, Later):
                self._order += 1
                heapq.heappush(self._timers, (now + action.delay, self._order, action.token))
            elif isinstance(action, NotListed):
                pipeline.mark(action.symbol, action.detail)
            elif isinstance(action, Rename):
                name = pipeline.names.get(action.old)
                if name is not None:
                    pipeline.remove_symbol(action.old)
                    pipeline.add_symbol(action.new, name, detail="waiting for the replay")
            elif isinstance(action, Reconnect):  # the live feed connected again here
                pipeline.reset_all(f"reconnecting: {action.reason}")
                self.session.closed()
                self.start(now)
            # Send, FetchSnapshot, Resubscribe, Status: the recording holds what came of them


# -- what a recording holds --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    paths: tuple[Path, ...]  # the file and its companions (cryptofeed's .http. snapshots)
    exchange: str
    symbols: tuple[str, ...]  # venue symbols with a book or trades, in order of appearance
    frames: int  # records, REST snapshots included
    snapshots: int  # REST snapshots recorded inline
    first_at: float
    last_at: float

    @property
    def name(self) -> str:
        return self.paths[0].name

    @property
    def duration(self) -> float:
        return max(0.0, self.last_at - self.first_at)

    def venue_of(self, symbol: str, to_venue: Callable[[str], str]) -> str | None:
        """The recording's name of the user's ``symbol``, or None when it is not recorded."""
        venue = to_venue(symbol)
        if venue in self.symbols:
            return venue
        folded = {s.upper(): s for s in self.symbols}
        return folded.get(venue.upper())


_cache: dict[tuple[str, int, int], RecordingInfo] = {}


def replay_paths(path: str | Path) -> tuple[Path, ...]:
    return tuple(companions(path))


def inspect(path: str | Path) -> RecordingInfo:
    """Read a recording once: its exchange, symbols and size (cached while the file is
    unchanged). ``SettingsError`` naming the file when it cannot be replayed."""
    paths = replay_paths(path)
    try:
        stats = [p.stat() for p in paths]
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the recording ({exc.strerror or exc})") from None
    key = (
        str(paths[0].resolve()),
        sum(s.st_size for s in stats),
        max(s.st_mtime_ns for s in stats),
    )
    info = _cache.get(key)
    if info is None:
        info = _cache[key] = _inspect(paths)
    return info


def _inspect(paths: tuple[Path, ...]) -> RecordingInfo:
    try:
        exchange = detect_exchange(read(paths))
        if exchange is None:
            raise SettingsError(
                f"{paths[0]}: not a recording of {described(RECORDABLE)} frames "
                "(`python -m market record` writes one)"
            )
        parse = SESSIONS[exchange].parse
        symbols: dict[str, None] = {}
        frames = snapshots = 0
        first_at = math.inf
        last_at = -math.inf
        for record in read(paths):
            frames += 1
            first_at = min(first_at, record.received_at)
            last_at = max(last_at, record.received_at)
            if record.snapshot_symbol is not None:
                snapshots += 1
                symbols.setdefault(record.snapshot_symbol, None)
                continue
            try:
                events = parse(record.raw, record.received_at)
            except BadMessage:
                continue
            for event in events:
                if isinstance(event, (BookDelta, BookSnapshot, Trade)):
                    symbols.setdefault(event.symbol, None)
    except (OSError, UnicodeError) as exc:
        raise SettingsError(f"{paths[0]}: cannot read the recording ({exc})") from None
    usable = tuple(s for s in symbols if isinstance(s, str) and SYMBOL_RE.match(s))
    if not usable:
        raise SettingsError(f"{paths[0]}: no order book or trades in the recording")
    return RecordingInfo(paths, exchange, usable, frames, snapshots, first_at, last_at)


def check_settings(settings: Settings) -> Settings:
    """``Settings`` for a replay: the recording must exist and be readable, the symbols are
    the recording's (all of them when none are given), refused with the reason otherwise."""
    if settings.exchanges != (REPLAY,):
        raise SettingsError(
            f"replay cannot be combined with other exchanges ({', '.join(settings.exchanges)})"
        )
    if not settings.replay_file:
        raise SettingsError("replay needs a recording: set MARKET_REPLAY_FILE (or --replay FILE)")
    info = inspect(settings.replay_file)
    to_venue = SESSIONS[info.exchange].venue_symbol
    if not settings.symbols:
        return replace(settings, symbols=info.symbols[:MAX_SYMBOLS])
    symbols: list[str] = []
    for raw in settings.symbols:
        symbol = validate_symbol(raw)
        if info.venue_of(symbol, to_venue) is None:
            raise InvalidSymbol(
                f"{symbol}: not in the recording {info.name} (it has {', '.join(info.symbols[:20])}"
                f"{', …' if len(info.symbols) > 20 else ''})"
            )
        if symbol not in symbols:
            symbols.append(symbol)
    if len(symbols) > MAX_SYMBOLS:
        raise InvalidSymbol(f"{len(symbols)} symbols: at most {MAX_SYMBOLS} at once")
    return replace(settings, symbols=tuple(symbols))


def speed_label(speed: float) -> str:
    return "max speed" if math.isinf(speed) else f"{speed:g}×"


# -- playing it --------------------------------------------------------------------------------


class Health(Protocol):
    """What a replay updates of its feed's health (the worker's ``_Health``)."""

    state: FeedState
    detail: str
    source: Source
    messages: int
    bad_messages: int
    resyncs: int
    last_message_at: float | None

    def bad(self, exc: BaseException, raw: object, now: float, interval: float) -> None: ...


class ReplaySession:
    """Plays one recording into ``store`` under the exchange ``replay``; restarts from the
    beginning when the symbols change; keeps the books on screen when it is over."""

    def __init__(
        self,
        store: MarketStore,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        bad_log_interval: float = 10.0,
    ) -> None:
        if not settings.replay_file:
            raise SettingsError(
                "replay needs a recording: set MARKET_REPLAY_FILE (or --replay FILE)"
            )
        self.info = inspect(settings.replay_file)
        self.speed = settings.replay_speed
        self.clock = clock
        self.sleep = sleep
        self.bad_log_interval = bad_log_interval
        self.settings = settings
        self.session_type = SESSIONS[self.info.exchange]
        self.pipeline = Pipeline(
            store, REPLAY, self.markets(settings.symbols), self.session_type.sync_factory,
            source="replay", on_resync=self._on_resync,
        )  # fmt: skip
        self.player = Player(self.session_type(settings, self.pipeline.symbols), self.pipeline)
        self.played = 0  # records of the current pass
        self.finished = False
        self._restart = asyncio.Event()

    def markets(self, symbols: tuple[str, ...]) -> dict[str, str]:
        """Venue symbol → the user's name, for the symbols present in the recording."""
        out: dict[str, str] = {}
        to_venue = self.session_type.venue_symbol
        for symbol in symbols:
            venue = self.info.venue_of(symbol, to_venue)
            if venue is not None:
                out.setdefault(venue, symbol)
        return out

    def set_symbols(self, symbols: tuple[str, ...]) -> None:
        """Watch other symbols: the replay starts again from the beginning with them."""
        markets = self.markets(symbols)
        pipeline = self.pipeline
        for venue, name in list(pipeline.names.items()):
            if markets.get(venue) != name:
                pipeline.remove_symbol(venue)
        for venue, name in markets.items():
            pipeline.add_symbol(venue, name, detail="waiting for the replay")
        self._restart.set()

    async def play(self, health: Health) -> None:
        """Play the recording, then wait (books kept) until the symbols change; forever."""
        health.source = "replay"
        while True:
            self._restart.clear()
            self._rewind(health)
            started = self.clock()
            if await self._play_once(health):
                self.finished = True
                health.state = "stopped"
                health.detail = (
                    f"replay finished: {self.info.name} ({self.info.exchange}), "
                    f"{self.played} frames in {self.clock() - started:.1f} s"
                )
                log.info("replay of %s finished: %d frames", self.info.name, self.played)
                await self._restart.wait()

    def _rewind(self, health: Health) -> None:
        self.player = Player(self.session_type(self.settings, self.pipeline.symbols), self.pipeline)
        self.played = 0
        self.finished = False
        pipeline = self.pipeline
        pipeline.tickers.clear()
        pipeline.resyncs = 0
        for venue, sync in pipeline.syncs.items():
            sync.reset()
            pipeline.store.reset_market(
                REPLAY, pipeline.names[venue], "replay", "waiting for the replay"
            )
        health.state = "live"
        health.messages = health.bad_messages = health.resyncs = 0
        health.detail = self._progress()

    def _progress(self) -> str:
        done = 100.0 * self.played / max(1, self.info.frames)
        return (
            f"replay of {self.info.name} ({self.info.exchange}) at {speed_label(self.speed)}: "
            f"{done:.0f} % done"
        )

    async def _play_once(self, health: Health) -> bool:
        """One pass over the recording; False when interrupted by a restart."""
        pipeline = self.pipeline
        player = self.player
        clock = self.clock
        restart = self._restart
        pacer = Pacer(self.speed, clock)  # each pause at most MAX_PAUSE_S, whatever the times
        first_at: float | None = None
        unpaused = 0
        for record in read(self.info.paths):
            if first_at is None:
                first_at = record.received_at
                player.start(first_at)
            wait = pacer.pause(record.received_at)
            if wait > 0:
                health.detail = self._progress()
                await self.sleep(wait)
                unpaused = 0
            if unpaused >= CHUNK:  # never hold the loop for long, whatever the speed
                health.detail = self._progress()
                await self.sleep(0)
                unpaused = 0
            if restart.is_set():
                return False
            unpaused += 1
            self.played += 1
            now = clock()
            if record.snapshot_symbol is None:  # a WebSocket frame; REST snapshots are not
                health.messages += 1
                health.last_message_at = now
            try:
                player.feed(record)
            except BadMessage as exc:
                health.bad(exc, record.raw, now, self.bad_log_interval)
                continue
            health.resyncs = pipeline.resyncs
        return True

    def _on_resync(self, symbol: str, reason: str) -> None:
        """A live feed would fetch a new book; a replay waits for the next one recorded."""
        self.pipeline.mark(symbol, f"resyncing ({reason}): waiting for the recording's next book")
