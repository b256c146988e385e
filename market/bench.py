"""Ingest benchmark: the whole pipeline (decode → sync → apply → metrics → store) over the
frames of a recording (of any venue ``record`` writes), with the time split by stage.

    python -m market bench FILE [FILE …] [--repeat N] [--json]

Both passes drive what replay drives: the venue's own ``Session`` and the real ``Pipeline``
through ``market.replay.Player`` (nothing here re-implements a step of either). The first
pass gives the rate (``events_per_s``, ``us_per_event``: every WebSocket frame decoded and
handled, per depth event: a diff, a snapshot or delta, a whole image);
the second turns on the pipeline's stage hook (``Pipeline.stage_ns``) and an order book that
times its own ``apply``, for the split (decode is the rest: parse, session and dispatch).
REST snapshots are a one-off cost per (re)sync, reported apart as ``us_per_snapshot``.
The recording is streamed, never loaded whole: each pass reads it again. Figures are printed,
never asserted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from market.book import OrderBook
from market.errors import BadMessage, BookError, SettingsError
from market.events import BookDelta, BookSnapshot, Level
from market.feed import PUBLISH_INTERVAL_S
from market.pipeline import Pipeline
from market.recording import Record, companions, read
from market.replay import Player
from market.settings import Settings
from market.store import MarketStore
from market.sync import Sync
from market.venues import RECORDABLE, SESSIONS, described, detect_exchange
from market.venues.base import Session

STAGES = ("decode", "sync", "apply", "metrics", "store")
_DEPTH = (BookDelta, BookSnapshot)


def files_of(paths: Sequence[str | Path]) -> list[Path]:
    """The files given and their companions (cryptofeed's .http. snapshots), once each."""
    return list(dict.fromkeys(p for path in paths for p in companions(path)))


def records(files: Sequence[Path]) -> Iterator[Record]:
    """The recording's records, streamed; ``SettingsError`` when it cannot be read."""
    try:
        yield from read(files)
    except OSError as exc:
        raise SettingsError(f"cannot read the recording: {exc.strerror or exc}") from None


def exchange_of(files: Sequence[Path]) -> str:
    exchange = detect_exchange(records(files))
    if exchange is None:
        raise SettingsError(f"{files[0]}: not a recording of {described(RECORDABLE)} frames")
    return exchange


def _symbols(session_type: type[Session], files: Sequence[Path]) -> list[str]:
    found: dict[str, None] = {}
    parse = session_type.parse
    for record in records(files):
        if record.snapshot_symbol is not None:
            found.setdefault(record.snapshot_symbol, None)
            continue
        try:
            events = parse(record.raw, record.received_at)
        except BadMessage:
            continue
        for event in events:
            if isinstance(event, _DEPTH):
                found.setdefault(event.symbol, None)
    return list(found)


class _TimedBook(OrderBook):
    """An order book that adds the time of its own ``apply``/``replace`` to ``ns[0]``."""

    __slots__ = ("ns",)

    def __init__(self, symbol: str, ns: list[int]) -> None:
        super().__init__(symbol)
        self.ns = ns

    def apply(
        self, bids: Iterable[Level], asks: Iterable[Level], update_id: int | None = None
    ) -> None:
        t = time.perf_counter_ns()
        super().apply(bids, asks, update_id)
        self.ns[0] += time.perf_counter_ns() - t

    def replace(self, bids: Iterable[Level], asks: Iterable[Level], update_id: int = 0) -> None:
        t = time.perf_counter_ns()
        super().replace(bids, asks, update_id)
        self.ns[0] += time.perf_counter_ns() - t


def run(
    session_type: type[Session], files: Sequence[Path], symbols: list[str], timed: bool = False
) -> dict[str, Any]:
    """One pass: the session and the real Pipeline, as the worker runs them (books published
    at most every ``PUBLISH_INTERVAL_S``, flushed by record time). Returns the counts, the
    seconds spent on WebSocket frames and, when ``timed``, ns per stage."""
    apply_ns = [0]
    factory = session_type.sync_factory

    def timed_sync(book: OrderBook) -> Sync:
        return factory(_TimedBook(book.symbol, apply_ns))

    pipeline = Pipeline(
        MarketStore(), session_type.exchange, symbols, timed_sync if timed else factory,
        publish_interval=PUBLISH_INTERVAL_S,
    )  # fmt: skip
    player = Player(session_type(Settings(), symbols), pipeline)
    if timed:
        pipeline.stage_ns = dict.fromkeys(("sync", "metrics", "store"), 0)
    feed, flush = player.feed, pipeline.flush
    clock = time.perf_counter_ns
    events = frames = snapshots = bad = 0
    spent = snapshot_ns = 0
    flushed_at = -math.inf
    started = False
    for record in records(files):
        if not started:
            player.start(record.received_at)
            started = True
        if record.received_at - flushed_at >= PUBLISH_INTERVAL_S:  # the worker's flush
            t0 = clock()
            flush()
            spent += clock() - t0
            flushed_at = record.received_at
        t0 = clock()
        try:
            out = feed(record)
        except (BadMessage, BookError):
            bad += 1
            out = []
        t1 = clock()
        if record.snapshot_symbol is not None:  # a REST snapshot: a one-off cost, timed apart
            snapshots += 1
            snapshot_ns += t1 - t0
            continue
        frames += 1
        spent += t1 - t0
        for event in out:
            if isinstance(event, _DEPTH):
                events += 1
    t0 = clock()
    flush()
    spent += clock() - t0
    result: dict[str, Any] = {
        "events": events, "frames": frames, "snapshots": snapshots, "bad": bad,
        "ns": spent, "snapshot_ns": snapshot_ns,
    }  # fmt: skip
    if timed and pipeline.stage_ns is not None:
        stages = dict(pipeline.stage_ns)
        stages["apply"] = apply_ns[0]
        stages["sync"] -= apply_ns[0]
        stages["decode"] = spent - sum(stages.values())
        result["stages"] = stages
    return result


def bench(paths: Sequence[str | Path], repeat: int = 20) -> dict[str, Any]:
    files = files_of(paths)
    exchange = exchange_of(files)
    session_type = SESSIONS[exchange]
    symbols = _symbols(session_type, files)
    total_events = total_ns = 0
    first: dict[str, Any] = {}
    for _ in range(max(1, repeat)):
        first = run(session_type, files, symbols)
        total_events += first["events"]
        total_ns += first["ns"]
    stage_ns = dict.fromkeys(STAGES, 0)
    for _ in range(max(1, repeat)):
        for k, v in run(session_type, files, symbols, timed=True)["stages"].items():
            stage_ns[k] += v
    per_event = total_ns / total_events / 1e9 if total_events else 0.0
    snaps = first["snapshots"]
    return {
        "events": first["events"],
        "events_per_s": round(total_events / (total_ns / 1e9), 1) if total_ns else 0.0,
        "us_per_event": round(per_event * 1e6, 3),
        "stages": {
            k: round(max(0, v) / 1e3 / total_events, 3) if total_events else 0.0
            for k, v in stage_ns.items()
        },
        "exchange": exchange,
        "frames": first["frames"],
        "bad_frames": first["bad"],
        "snapshots": snaps,
        "us_per_snapshot": round(first["snapshot_ns"] / snaps / 1e3, 1) if snaps else None,
        "repeat": repeat,
        "files": [str(p) for p in files],
    }


def describe(result: dict[str, Any]) -> str:
    """The figures for people: two lines."""
    stages = ", ".join(f"{k} {v:.2f}" for k, v in result["stages"].items())
    snaps = (
        f"; REST snapshot {result['us_per_snapshot']:.0f} µs each ({result['snapshots']})"
        if result["snapshots"]
        else ""
    )
    return (
        f"{result['exchange']} recording {Path(result['files'][0]).name}: "
        f"{result['events']} depth events in {result['frames']} frames{snaps}\n"
        f"pipeline: {result['events_per_s']:,.0f} depth events/s, "
        f"{result['us_per_event']:.2f} µs/event "
        f"(by stage, µs/event: {stages})"
    )
