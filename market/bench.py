"""Ingest benchmark: the whole pipeline (decode → sync → apply → metrics → store) over the
depth events of a real recording, with the time split by stage.

    python -m market bench FILE [FILE …] [--repeat N] [--json]

Two passes over the same records: the real ``Pipeline`` gives the rate (``events_per_s``,
``us_per_event``: every WebSocket frame of the recording, decoded and handled, per depth
event), a second pass with a clock read around every stage gives the split (the clock reads
cost ~0.1 µs each and are not in the rate). REST snapshots are a one-off cost per (re)sync,
reported apart as ``us_per_snapshot``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from market.book import OrderBook
from market.errors import BadMessage, BookError
from market.events import BookDelta, BookSnapshot
from market.feeds import binance
from market.pipeline import Pipeline
from market.recording import Record, read
from market.store import MarketStore, series_row
from market.sync import BinanceSync


def _frames(records: Sequence[Record]) -> list[tuple[float, str, str | None]]:
    return [(r.received_at, r.raw, r.snapshot_symbol) for r in records]


def run_untimed(frames: list[tuple[float, str, str | None]]) -> tuple[int, float]:
    """The real Pipeline, as the worker runs it. Returns (depth events, seconds)."""
    store = MarketStore()
    pipeline = Pipeline(store, "binance", (), BinanceSync)
    symbols = {s for _, _, s in frames if s}
    for s in symbols:
        pipeline.add_symbol(s)
    parse = binance.parse
    parse_snapshot = binance.parse_snapshot
    handle = pipeline.handle
    n = 0
    clock = time.perf_counter
    spent = 0.0
    for at, raw, snap_symbol in frames:
        if snap_symbol is not None:  # a REST snapshot: a one-off cost, timed apart (bench())
            handle([parse_snapshot(raw, snap_symbol, at)])
            continue
        t0 = clock()
        try:
            events = parse(raw, at)
        except BadMessage:
            continue
        handle(events)
        spent += clock() - t0
        for ev in events:
            if type(ev) is BookDelta:
                n += 1
    return n, spent


class _TimedBook(OrderBook):
    __slots__ = ("apply_ns",)

    def __init__(self, symbol: str) -> None:
        super().__init__(symbol)
        self.apply_ns = 0

    def apply(self, bids: Any, asks: Any, update_id: int | None = None) -> None:
        t = time.perf_counter_ns()
        super().apply(bids, asks, update_id)
        self.apply_ns += time.perf_counter_ns() - t


def run_timed(frames: list[tuple[float, str, str | None]], depth: int = 20) -> dict[str, float]:
    """The same work, stage by stage, with a clock read around each. Returns ns per stage."""
    store = MarketStore(depth=depth)
    syncs: dict[str, BinanceSync] = {}
    books: dict[str, _TimedBook] = {}
    ns = {"decode": 0, "sync": 0, "apply": 0, "metrics": 0, "store": 0}
    clock = time.perf_counter_ns
    for at, raw, snap_symbol in frames:
        if snap_symbol is not None:
            if snap_symbol not in syncs:
                books[snap_symbol] = _TimedBook(snap_symbol)
                syncs[snap_symbol] = BinanceSync(books[snap_symbol])
            syncs[snap_symbol].on_snapshot(binance.parse_snapshot(raw, snap_symbol, at))
            continue
        t0 = clock()
        try:
            events = binance.parse(raw, at)
        except BadMessage:
            continue
        t1 = clock()
        ns["decode"] += t1 - t0
        for ev in events:
            if type(ev) is not BookDelta:
                continue
            sync = syncs.get(ev.symbol)
            if sync is None:
                books[ev.symbol] = _TimedBook(ev.symbol)
                sync = syncs[ev.symbol] = BinanceSync(books[ev.symbol])
            book = books[ev.symbol]
            before = book.apply_ns
            t2 = clock()
            try:
                changed = sync.on_delta(ev)
            except BookError:
                changed = False
            t3 = clock()
            applied = book.apply_ns - before
            ns["apply"] += applied
            ns["sync"] += (t3 - t2) - applied
            if not changed:
                continue
            bids, asks = book.top(store.depth)
            row = series_row(bids, asks, at)
            t4 = clock()
            store.update_book("binance", ev.symbol, bids, asks, book.update_id, at, row)
            t5 = clock()
            ns["metrics"] += t4 - t3
            ns["store"] += t5 - t4
    return {k: float(v) for k, v in ns.items()}


def bench(paths: Sequence[str | Path], repeat: int = 20) -> dict[str, Any]:
    records = list(read(paths))
    frames = _frames(records)
    total_events = 0
    total_s = 0.0
    for _ in range(repeat):
        n, s = run_untimed(frames)
        total_events += n
        total_s += s
    stage_ns = {k: 0.0 for k in ("decode", "sync", "apply", "metrics", "store")}
    for _ in range(repeat):
        for k, v in run_timed(frames).items():
            stage_ns[k] += v
    snaps = [(at, raw, sym) for at, raw, sym in frames if sym is not None]
    t0 = time.perf_counter()
    for _ in range(repeat):
        for at, raw, sym in snaps:
            BinanceSync(OrderBook(sym)).on_snapshot(binance.parse_snapshot(raw, sym, at))  # type: ignore[arg-type]
    snapshot_us = (time.perf_counter() - t0) / max(1, repeat * len(snaps)) * 1e6
    per_event = total_s / total_events if total_events else 0.0
    return {
        "events": total_events // repeat if repeat else 0,
        "events_per_s": round(total_events / total_s, 1) if total_s else 0.0,
        "us_per_event": round(per_event * 1e6, 3),
        "stages": {
            k: round(v / 1e3 / total_events, 3) if total_events else 0.0 for k, v in stage_ns.items()
        },
        "snapshots": len(snaps),
        "us_per_snapshot": round(snapshot_us, 1),
        "repeat": repeat,
        "files": [str(p) for p in paths],
    }
