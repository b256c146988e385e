"""Ingest benchmark: the whole pipeline (decode → sync → apply → metrics → store) over the
depth events of a recording (Binance, Bybit or HyperLiquid), with the time split by stage.

    python -m market bench FILE [FILE …] [--repeat N] [--json]

Two passes over the same records, both with the replay's adapters (the exchange's own
parser and book discipline, market/replay.py): the real ``Pipeline`` gives the rate
(``events_per_s``, ``us_per_event``: every WebSocket frame of the recording, decoded and
handled, per depth event: a Binance diff, a Bybit snapshot or delta, a HyperLiquid image),
a second pass with a clock read around every stage gives the split (the clock reads cost
~0.1 µs each and are not in the rate). REST snapshots are a one-off cost per (re)sync,
reported apart as ``us_per_snapshot``. Figures are printed, never asserted.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from market.book import OrderBook
from market.errors import BadMessage, BookError, SettingsError
from market.events import BookDelta, BookSnapshot, Event
from market.pipeline import Pipeline
from market.recording import Record, companions, detect_exchange, read
from market.replay import ADAPTERS
from market.store import NO_ROW, MarketStore, series_row
from market.worker import PUBLISH_INTERVAL_S

STAGES = ("decode", "sync", "apply", "metrics", "store")
_DEPTH = (BookDelta, BookSnapshot)


def files_of(paths: Sequence[str | Path]) -> list[Path]:
    """The files given and their companions (cryptofeed's .http. snapshots), once each."""
    return list(dict.fromkeys(p for path in paths for p in companions(path)))


def load(paths: Sequence[str | Path]) -> tuple[str, list[Record]]:
    """(exchange, records) of a recording; ``SettingsError`` when it cannot be benchmarked."""
    files = files_of(paths)
    try:
        records = list(read(files))
    except OSError as exc:
        raise SettingsError(f"cannot read the recording: {exc}") from None
    exchange = detect_exchange(records)
    if exchange is None:
        raise SettingsError(f"{files[0]}: not a recording of Binance, Bybit or HyperLiquid frames")
    return exchange, records


def _symbols(exchange: str, records: Sequence[Record]) -> list[str]:
    adapter = ADAPTERS[exchange]()
    found: dict[str, None] = {}
    for record in records:
        try:
            events = adapter.events(record)
        except BadMessage:
            continue
        for event in events:
            if type(event) in _DEPTH:
                found.setdefault(event.symbol, None)  # type: ignore[union-attr]
    return list(found)


def run_untimed(exchange: str, records: Sequence[Record]) -> tuple[int, float]:
    """The real Pipeline, as the worker runs it. Returns (depth events, seconds)."""
    adapter = ADAPTERS[exchange]()
    interval = PUBLISH_INTERVAL_S  # books published as the worker does: at most every 50 ms
    pipeline = Pipeline(
        MarketStore(), exchange, _symbols(exchange, records), adapter.sync_factory,
        publish_interval=interval,
    )
    events_of = adapter.events
    handle = pipeline.handle
    clock = time.perf_counter
    n = 0
    spent = 0.0
    flushed_at = -math.inf
    for record in records:
        if record.received_at - flushed_at >= interval:  # the worker's flush, by record time
            t0 = clock()
            pipeline.flush()
            spent += clock() - t0
            flushed_at = record.received_at
        if record.snapshot_symbol is not None:  # a REST snapshot: a one-off cost, timed apart
            handle(events_of(record))
            continue
        t0 = clock()
        try:
            events = events_of(record)
        except BadMessage:
            spent += clock() - t0  # the worker pays for a bad frame too
            continue
        handle(events)
        spent += clock() - t0
        for event in events:
            if type(event) in _DEPTH:
                n += 1
    t0 = clock()
    pipeline.flush()
    return n, clock() - t0 + spent


class _TimedBook(OrderBook):
    __slots__ = ("apply_ns",)

    def __init__(self, symbol: str) -> None:
        super().__init__(symbol)
        self.apply_ns = 0

    def apply(self, bids: Any, asks: Any, update_id: int | None = None) -> None:
        t = time.perf_counter_ns()
        super().apply(bids, asks, update_id)
        self.apply_ns += time.perf_counter_ns() - t

    def replace(self, bids: Any, asks: Any, update_id: int = 0) -> None:
        t = time.perf_counter_ns()
        super().replace(bids, asks, update_id)
        self.apply_ns += time.perf_counter_ns() - t


def run_timed(exchange: str, records: Sequence[Record], depth: int = 20) -> dict[str, float]:
    """The same work, stage by stage, with a clock read around each. Returns ns per stage."""
    adapter = ADAPTERS[exchange]()
    store = MarketStore(depth=depth)
    syncs: dict[str, Any] = {}
    books: dict[str, _TimedBook] = {}
    ns = dict.fromkeys(STAGES, 0)
    last_point: dict[str, float] = {}
    clock = time.perf_counter_ns

    def sync_of(symbol: str) -> Any:
        sync = syncs.get(symbol)
        if sync is None:
            books[symbol] = _TimedBook(symbol)
            sync = syncs[symbol] = adapter.sync_factory(books[symbol])
        return sync

    for record in records:
        if record.snapshot_symbol is not None:
            for snap in adapter.events(record):
                with contextlib.suppress(BookError):  # a crossed snapshot: the next one fixes it
                    sync_of(snap.symbol).on_snapshot(snap)  # type: ignore[union-attr]
            continue
        t0 = clock()
        try:
            events: list[Event] = adapter.events(record)
        except BadMessage:
            ns["decode"] += clock() - t0
            continue
        t1 = clock()
        ns["decode"] += t1 - t0
        at = record.received_at
        for event in events:
            kind = type(event)
            if kind not in _DEPTH:
                continue
            symbol = event.symbol  # type: ignore[union-attr]
            sync = sync_of(symbol)
            book = books[symbol]
            before = book.apply_ns
            t2 = clock()
            try:
                changed = sync.on_delta(event) if kind is BookDelta else sync.on_snapshot(event)
            except BookError:
                changed = False
            t3 = clock()
            applied = book.apply_ns - before
            ns["apply"] += applied
            ns["sync"] += (t3 - t2) - applied
            if not changed:
                continue
            # as Pipeline._book: a change below the published levels only moves the book's id
            if kind is BookDelta and book.outside_top(store.depth, event.bids, event.asks):  # type: ignore[union-attr]
                t4 = clock()
                touched = store.touch_book(exchange, symbol, book.update_id, at)
                t5 = clock()
                ns["metrics"] += t4 - t3
                ns["store"] += t5 - t4
                if touched:
                    continue
                t3 = clock()
            bids, asks = book.top(store.depth)
            if at - last_point.get(symbol, -math.inf) >= store.series_interval:
                last_point[symbol] = at
                row = series_row(bids, asks, at)
            else:
                row = NO_ROW
            t4 = clock()
            store.update_book(exchange, symbol, bids, asks, book.update_id, at, row)
            t5 = clock()
            ns["metrics"] += t4 - t3
            ns["store"] += t5 - t4
    return {k: float(v) for k, v in ns.items()}


def bench(paths: Sequence[str | Path], repeat: int = 20) -> dict[str, Any]:
    exchange, records = load(paths)
    total_events = 0
    total_s = 0.0
    for _ in range(repeat):
        n, s = run_untimed(exchange, records)
        total_events += n
        total_s += s
    stage_ns = dict.fromkeys(STAGES, 0.0)
    for _ in range(repeat):
        for k, v in run_timed(exchange, records).items():
            stage_ns[k] += v
    snaps = [r for r in records if r.snapshot_symbol is not None]
    adapter = ADAPTERS[exchange]()
    t0 = time.perf_counter()
    for _ in range(repeat):
        for record in snaps:
            for snap in adapter.events(record):
                adapter.sync_factory(OrderBook(snap.symbol)).on_snapshot(snap)  # type: ignore[arg-type, union-attr]
    snapshot_us = (time.perf_counter() - t0) / max(1, repeat * len(snaps)) * 1e6
    per_event = total_s / total_events if total_events else 0.0
    return {
        "events": total_events // repeat if repeat else 0,
        "events_per_s": round(total_events / total_s, 1) if total_s else 0.0,
        "us_per_event": round(per_event * 1e6, 3),
        "stages": {
            k: round(v / 1e3 / total_events, 3) if total_events else 0.0
            for k, v in stage_ns.items()
        },
        "exchange": exchange,
        "frames": len(records) - len(snaps),
        "snapshots": len(snaps),
        "us_per_snapshot": round(snapshot_us, 1) if snaps else None,
        "repeat": repeat,
        "files": [str(p) for p in files_of(paths)],
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
