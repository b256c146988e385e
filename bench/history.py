"""Ingest with history on vs off: the real Pipeline over a recording, as ``python -m market
bench`` runs it, once with a bare store and once with a HistoryWriter thread writing the same
store to SQLite (WAL, a temp dir) or ``--db URL`` at the same time.

    .venv/bin/python bench/history.py [FILE …] [--rounds 7] [--loops 20] [--interval 1.0]

Each round replays the recording ``--loops`` times per mode, alternating off/on; the medians
of the depth events/s are printed with the change in %. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from market.bench import _symbols, load  # noqa: E402
from market.errors import BadMessage  # noqa: E402
from market.events import BookDelta, BookSnapshot  # noqa: E402
from market.history.writer import HistoryWriter  # noqa: E402
from market.pipeline import Pipeline  # noqa: E402
from market.recording import Record  # noqa: E402
from market.replay import ADAPTERS  # noqa: E402
from market.store import MarketStore  # noqa: E402
from market.worker import PUBLISH_INTERVAL_S  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures"
DEFAULT = [FIXTURES / "cryptofeed_BINANCE.ws.1.0"]


def run(
    exchange: str, records: list[Record], loops: int, db: str | None, interval: float
) -> tuple[float, float, dict[str, object]]:
    """Depth events/s (wall clock, the ingest only) and the process's CPU µs per event (the
    writer's included, its last flush too) over ``loops`` passes; with ``db``, a writer runs
    alongside."""
    cpu0 = time.process_time()
    store = MarketStore()
    writer = HistoryWriter(store, db, interval=interval) if db else None
    if writer is not None:
        writer.start()
    symbols = _symbols(exchange, records)
    n = 0
    spent = 0.0
    clock = time.perf_counter
    for _ in range(loops):
        adapter = ADAPTERS[exchange]()
        pipeline = Pipeline(
            store, exchange, symbols, adapter.sync_factory, publish_interval=PUBLISH_INTERVAL_S
        )
        flushed = -math.inf
        for record in records:
            t0 = clock()
            if record.received_at - flushed >= PUBLISH_INTERVAL_S:
                pipeline.flush()
                flushed = record.received_at
            if record.snapshot_symbol is not None:  # REST snapshots: timed apart, as bench does
                pipeline.handle(adapter.events(record))
                continue
            try:
                events = adapter.events(record)
            except BadMessage:
                spent += clock() - t0
                continue
            pipeline.handle(events)
            spent += clock() - t0
            n += sum(1 for e in events if type(e) in (BookDelta, BookSnapshot))
        pipeline.flush()
    info: dict[str, object] = {}
    if writer is not None:
        writer.stop()
        s = writer.status()
        info = {"state": s.state, "written_rows": s.written_rows, "dropped": s.dropped_rows}
    return n / spent, (time.process_time() - cpu0) / n * 1e6, info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--loops", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0, help="the writer's cycle (s)")
    parser.add_argument("--db", help="a MARKET_DB URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    files = args.files or DEFAULT
    if not all(f.is_file() for f in files):
        print(f"skipped: {', '.join(map(str, files))} not found", file=sys.stderr)
        return 0
    exchange, records = load(files)
    off: list[float] = []
    on: list[float] = []
    cpu_off: list[float] = []
    cpu_on: list[float] = []
    info: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite:///{tmp}/bench.db"
        for _ in range(args.rounds):
            rate, cpu, _ = run(exchange, records, args.loops, None, args.interval)
            off.append(rate)
            cpu_off.append(cpu)
            rate, cpu, info = run(exchange, records, args.loops, db, args.interval)
            on.append(rate)
            cpu_on.append(cpu)
    m_off, m_on = statistics.median(off), statistics.median(on)
    print(f"{files[0].name} ({exchange}), {args.rounds} rounds × {args.loops} loops")
    for name, rates, median in (("off", off, m_off), ("on ", on, m_on)):
        print(
            f"  history {name}: {median:,.0f} depth events/s "
            f"(median; min {min(rates):,.0f}, max {max(rates):,.0f})"
        )
    print(f"  change     : {(m_on / m_off - 1) * 100:+.1f} %   writer (last round): {info}")
    c_off, c_on = statistics.median(cpu_off), statistics.median(cpu_on)
    print(
        f"  CPU per event (process, writer included): off {c_off:.1f} µs, on {c_on:.1f} µs "
        f"({(c_on / c_off - 1) * 100:+.1f} %)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
