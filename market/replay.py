"""Replay a recording through the same adapters, book sync, pipeline and store as a live feed.

    python -m market watch --replay FILE.gz --speed 1|10|max
    MARKET_EXCHANGE=replay MARKET_REPLAY_FILE=FILE.gz [MARKET_REPLAY_SPEED=10] ./run.sh

    recording ──read()──▶ Adapter (the exchange's own parse) ──events──▶ Pipeline ──▶ store
       │  <ns> <frame> lines, REST snapshots inline              BinanceSync / SequencedSync
       └─ paced by the receive times ÷ speed (max: no pauses, the loop yields every CHUNK)

The recording says which exchange it came from (``detect_exchange``); its frames go through
that exchange's parser and the book discipline of its live feed: ``BinanceSync`` fed by the
REST snapshots recorded inline, ``SequencedSync`` for Bybit's snapshot/delta stream and
HyperLiquid's whole images. Markets and status are published under the exchange ``replay``,
``source="replay"``. A gap cannot ask a recording for a new snapshot: the book waits for the
next one recorded (the recording worker fetched one after every gap, so it is there).

Symbols: every symbol with a book or trades in the recording, or only those asked for
(``MARKET_SYMBOLS`` / ``--symbols``, mapped to the venue's names like the live feeds do).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from market.errors import BadMessage, InvalidSymbol, SettingsError
from market.events import BookDelta, BookSnapshot, Event, FeedState, Source, Trade
from market.feeds import binance, bybit, hyperliquid
from market.pipeline import Pipeline, SyncFactory
from market.recording import Record, companions, detect_exchange, read
from market.settings import MAX_SYMBOLS, REPLAY, SYMBOL_RE, Settings, validate_symbol
from market.store import MarketStore
from market.sync import BinanceSync, SequencedSync

log = logging.getLogger(__name__)

CHUNK = 256  # frames handled between two yields to the event loop when nothing else pauses


# -- adapters: frames → events, as each live feed does it ------------------------------------


class Adapter:
    """One exchange's parse and book discipline, with the state its live feed keeps."""

    exchange = ""
    sync_factory: SyncFactory = SequencedSync

    def venue(self, symbol: str) -> str:
        raise NotImplementedError

    def events(self, record: Record) -> list[Event]:
        """The events of one record (replies and notices are harmless: the pipeline skips
        them); ``BadMessage`` for a frame the live feed would count as bad."""
        raise NotImplementedError


class BinanceAdapter(Adapter):
    exchange = "binance"
    sync_factory = BinanceSync

    def venue(self, symbol: str) -> str:
        return binance.venue_symbol(symbol)

    def events(self, record: Record) -> list[Event]:
        if record.snapshot_symbol is not None:
            return [binance.parse_snapshot(record.raw, record.snapshot_symbol, record.received_at)]
        return binance.parse(record.raw, record.received_at)


class BybitAdapter(Adapter):
    exchange = "bybit"

    def venue(self, symbol: str) -> str:
        return bybit.venue_symbol(symbol)

    def events(self, record: Record) -> list[Event]:
        if record.snapshot_symbol is not None:
            raise BadMessage("a REST snapshot in a Bybit recording")
        return bybit.parse(record.raw, record.received_at)  # type: ignore[return-value]


class HyperLiquidAdapter(Adapter):
    """Whole-image books; the first ``trades`` frame of a coin replays history (backfill:
    trades from before that frame arrived), and trades seen before are dropped, as the live
    feed does."""

    exchange = "hyperliquid"

    def __init__(self) -> None:
        self._dedupe = hyperliquid.TradeDeduper()
        self._seen_trades: set[str] = set()

    def venue(self, symbol: str) -> str:
        return hyperliquid.venue_symbol(symbol)

    def events(self, record: Record) -> list[Event]:
        if record.snapshot_symbol is not None:
            raise BadMessage("a REST snapshot in a HyperLiquid recording")
        events = hyperliquid.parse(record.raw, record.received_at)
        if events and type(events[0]) is Trade:
            trades: list[Trade] = events  # type: ignore[assignment]
            coin = trades[0].symbol
            if coin not in self._seen_trades:  # history from before the recording started
                self._seen_trades.add(coin)
                since = record.received_at * 1000.0
                trades = [replace(t, backfill=True) if t.ts_ms <= since else t for t in trades]
            return self._dedupe.fresh(trades)  # type: ignore[return-value]
        return events  # type: ignore[return-value]


ADAPTERS: dict[str, Callable[[], Adapter]] = {
    "binance": BinanceAdapter,
    "bybit": BybitAdapter,
    "hyperliquid": HyperLiquidAdapter,
}


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
                f"{paths[0]}: not a recording of Binance, Bybit or HyperLiquid frames "
                "(`python -m market record` writes one)"
            )
        adapter = ADAPTERS[exchange]()
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
                events = adapter.events(record)
            except BadMessage:
                continue
            for event in events:
                if type(event) in (BookDelta, BookSnapshot, Trade):
                    symbols.setdefault(event.symbol, None)  # type: ignore[union-attr]
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
    to_venue = ADAPTERS[info.exchange]().venue
    if not settings.symbols:
        return replace(settings, symbols=info.symbols[:MAX_SYMBOLS])
    symbols: list[str] = []
    for raw in settings.symbols:
        symbol = validate_symbol(raw).replace("-", "")
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
        self.adapter = ADAPTERS[self.info.exchange]()
        self.pipeline = Pipeline(
            store, REPLAY, self.markets(settings.symbols), self.adapter.sync_factory,
            source="replay", on_resync=self._on_resync,
        )  # fmt: skip
        self.played = 0  # records of the current pass
        self.finished = False
        self._restart = asyncio.Event()

    def markets(self, symbols: tuple[str, ...]) -> dict[str, str]:
        """Venue symbol → the user's name, for the symbols present in the recording."""
        out: dict[str, str] = {}
        to_venue = self.adapter.venue
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
        self.adapter = ADAPTERS[self.info.exchange]()
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
        handle = pipeline.handle
        events_of = self.adapter.events
        clock = self.clock
        restart = self._restart
        paced = not math.isinf(self.speed)
        speed = self.speed
        start = clock()
        first_at: float | None = None
        unpaused = 0
        for record in read(self.info.paths):
            if paced:
                if first_at is None:
                    first_at = record.received_at
                wait = start + (record.received_at - first_at) / speed - clock()
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
                events = events_of(record)
            except BadMessage as exc:
                health.bad(exc, record.raw, now, self.bad_log_interval)
                continue
            handle(events)
            health.resyncs = pipeline.resyncs
        return True

    def _on_resync(self, symbol: str, reason: str) -> None:
        """A live feed would fetch a new book; a replay waits for the next one recorded."""
        self.pipeline.mark(symbol, f"resyncing ({reason}): waiting for the recording's next book")
