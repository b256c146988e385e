"""One collector, many readers over a real Redis: CPU, end-to-end latency, Redis memory.

    .venv/bin/python bench/bus.py [--symbols 200] [--readers 5] [--seconds 30]

Starts Debian's ``redis-server`` on a free loopback port (temp dir, no persistence), then, each
in its own process: one collector (the simulated feed on ``--symbols`` symbols through the real
``Worker`` and ``BusPublisher``; ``--feed direct``: books written straight into its store every
100 ms per symbol, to see the bus alone) and ``--readers`` readers (``BusReader`` into a
``MarketStore``, every symbol). After a warm-up, for ``--seconds``:

- CPU: each process's user+system time over wall time (100 % = one core);
- latency: for every book a reader stores, its store time minus the book's ``at`` (the local
  receive time of the exchange frame that last changed it, stamped in the collector): exchange
  receive → reader store, the 100 ms coalescing of the publisher included. Same machine, same
  clock; and the bus hop alone (the collector's publication → reader store);
- Redis: ``INFO memory`` used_memory and the server's own CPU.

Figures are printed (and ``--json``), never asserted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WARMUP_S = 5.0


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def symbols_for(n: int) -> tuple[str, ...]:
    return tuple(f"S{i:03d}USDT" for i in range(n))


def direct_feed(store: Any, n: int, stop: Any) -> None:
    """A cheap stand-in for the feed: every 100 ms each symbol's top-20 book moves (a new
    update id, time stamped like a received frame) and one trade in three ticks."""
    import random

    from market.events import Trade

    rng = random.Random(1)
    symbols = symbols_for(n)
    mids = {s: 100.0 + i for i, s in enumerate(symbols)}
    uid = 0
    tick = 0
    while not stop.wait(0.1):
        tick += 1
        for s in symbols:
            uid += 1
            mid = mids[s] = mids[s] + rng.choice((-0.01, 0.0, 0.01))
            bids = tuple((round(mid - 0.01 * (i + 1), 2), 1.0 + i) for i in range(20))
            asks = tuple((round(mid + 0.01 * (i + 1), 2), 1.0 + i) for i in range(20))
            now = time.time()
            store.update_book("mock", s, bids, asks, uid, now)
            if tick % 3 == 0:
                side = rng.choice(("buy", "sell"))
                trade = Trade("mock", s, mid, 0.5, side, int(now * 1000), str(uid), now)
                store.add_trades("mock", s, (trade,))


def collector_process(url: str, n: int, seconds: float, feed: str, out: Any) -> None:
    sys.path.insert(0, str(ROOT))
    import threading

    from market.bus.publisher import BusPublisher
    from market.settings import Settings
    from market.store import MarketStore
    from market.worker import Worker

    stop = threading.Event()
    if feed == "mock":
        settings = Settings(exchanges=("mock",), symbols=symbols_for(n), mock_seed=1)
        worker: Any = Worker(settings, MarketStore()).start()
        store = worker.store
    else:
        store = MarketStore()
        worker = threading.Thread(target=direct_feed, args=(store, n, stop), daemon=True)
        worker.start()
    publisher = BusPublisher(store, url).start()
    time.sleep(WARMUP_S)

    def updates() -> int:
        snap = store.snapshot(series=False, max_trades=0)
        return sum(v.book_updates for v in snap.markets.values())

    c0, t0, p0, u0 = cpu_s(), time.monotonic(), publisher.published, updates()
    time.sleep(seconds)
    c1, t1, p1, u1 = cpu_s(), time.monotonic(), publisher.published, updates()
    publisher.stop()
    if feed == "mock":
        worker.stop()
    stop.set()
    out.put({
        "role": "collector", "cpu_pct": 100.0 * (c1 - c0) / (t1 - t0),
        "messages_per_s": (p1 - p0) / (t1 - t0),
        "book_updates_per_s": (u1 - u0) / (t1 - t0), "errors": publisher.errors,
    })  # fmt: skip


def reader_process(url: str, n: int, seconds: float, index: int, out: Any) -> None:
    sys.path.insert(0, str(ROOT))
    from market.bus import schema
    from market.bus.reader import BusReader
    from market.store import MarketStore

    latencies: list[float] = []  # exchange receive → reader store
    bus: list[float] = []  # collector publication → reader store
    measuring = [False]

    class TimedReader(BusReader):
        def _put_book(self, st: Any, b: schema.Book) -> None:
            super()._put_book(st, b)
            if measuring[0] and b.at is not None:
                now = time.time()
                latencies.append(now - b.at)
                bus.append(now - b.sent)

    store = MarketStore()
    reader = TimedReader(url, store, symbols_for(n), role="bench").start()
    time.sleep(WARMUP_S)
    measuring[0] = True
    c0, t0, m0 = cpu_s(), time.monotonic(), reader.info().received
    time.sleep(seconds)
    c1, t1, m1 = cpu_s(), time.monotonic(), reader.info().received
    measuring[0] = False
    info = reader.info()
    markets = len(store.snapshot(series=False, max_trades=0).markets)
    reader.stop()
    out.put({
        "role": f"reader{index}", "cpu_pct": 100.0 * (c1 - c0) / (t1 - t0),
        "messages_per_s": (m1 - m0) / (t1 - t0),
        "cpu_us_per_message": 1e6 * (c1 - c0) / max(1, m1 - m0),
        "latencies": latencies, "bus": bus, "markets": markets, "garbage": info.garbage,
        "dropped": info.dropped, "received": info.received,
    })  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_info(url: str, section: str) -> dict[str, Any]:
    import redis

    with redis.Redis.from_url(url) as r:
        return dict(r.info(section))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--readers", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--feed", choices=("mock", "direct"), default="mock",
        help="mock: the real Worker on the simulated feed; direct: books written straight into "
        "the store every 100 ms per symbol (the bus alone)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(binary, os.X_OK):
        print("bench/bus.py: redis-server is not installed", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="bench-bus-")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", tmp],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis_info(url, "server")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        procs = [
            ctx.Process(
                target=collector_process, args=(url, args.symbols, args.seconds, args.feed, out)
            )
        ]
        procs += [
            ctx.Process(target=reader_process, args=(url, args.symbols, args.seconds, i, out))
            for i in range(args.readers)
        ]
        for p in procs:
            p.start()
        time.sleep(WARMUP_S)
        cpu0 = redis_info(url, "cpu")
        time.sleep(args.seconds)
        cpu1 = redis_info(url, "cpu")
        memory = redis_info(url, "memory")
        results = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(30)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    redis_cpu = (
        cpu1["used_cpu_user"] + cpu1["used_cpu_sys"] - cpu0["used_cpu_user"] - cpu0["used_cpu_sys"]
    )
    collector = next(r for r in results if r["role"] == "collector")
    readers = sorted((r for r in results if r["role"] != "collector"), key=lambda r: r["role"])
    lat = sorted(x for r in readers for x in r.pop("latencies"))
    hop = sorted(x for r in readers for x in r.pop("bus"))
    summary = {
        "feed": args.feed, "symbols": args.symbols, "readers": args.readers,
        "seconds": args.seconds,
        "load_avg_1m": os.getloadavg()[0], "cpus": os.cpu_count(),
        "collector_cpu_pct": round(collector["cpu_pct"], 1),
        "collector_messages_per_s": round(collector["messages_per_s"]),
        "collector_book_updates_per_s": round(collector["book_updates_per_s"]),
        "reader_cpu_pct": [round(r["cpu_pct"], 1) for r in readers],
        "reader_cpu_pct_mean": round(statistics.mean(r["cpu_pct"] for r in readers), 1),
        "reader_messages_per_s": round(statistics.mean(r["messages_per_s"] for r in readers)),
        "reader_cpu_us_per_message": round(
            statistics.mean(r["cpu_us_per_message"] for r in readers), 1
        ),
        "collector_cpu_us_per_book_update": round(
            1e4 * collector["cpu_pct"] / max(1.0, collector["book_updates_per_s"]), 1
        ),
        "reader_markets": [r["markets"] for r in readers],
        "reader_garbage": sum(r["garbage"] for r in readers),
        "books_measured": len(lat),
        "latency_ms_median": round(1000 * lat[len(lat) // 2], 1) if lat else None,
        "latency_ms_p99": round(1000 * lat[int(len(lat) * 0.99)], 1) if lat else None,
        "latency_ms_max": round(1000 * lat[-1], 1) if lat else None,
        "bus_hop_ms_median": round(1000 * hop[len(hop) // 2], 1) if hop else None,
        "bus_hop_ms_p99": round(1000 * hop[int(len(hop) * 0.99)], 1) if hop else None,
        "redis_used_memory_mb": round(memory["used_memory"] / 1e6, 2),
        "redis_cpu_pct": round(100.0 * redis_cpu / args.seconds, 1),
    }  # fmt: skip
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:28s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
