"""Soak: the simulated feed and a replay at high speed in one process for a bounded time,
sampling memory (RSS) and threads every second; is memory flat over the second half?

    .venv/bin/python bench/soak.py [--seconds 60] [--symbols 20] [--replay FILE] [--speed max]

Two real workers, as the page would run them: one on ``mock`` with ``--symbols`` simulated
markets, one replaying a recording (a synthetic Binance one of ``--frames`` frames unless
``--replay`` names one), started again each time it ends; a reader takes a full store
snapshot every 0.8 s, as the page does. Every store deque is bounded, but the defaults take a
while to fill (20,000 series points a market: ~33 min at 10 a second; 1,000 trades: minutes):
here they are kept to ``--series-points`` and ``--trades-kept`` so that they are full well
within the first half, and what still grows after that is a leak.
Prints one line a second, then the slope of RSS over the second half (least squares, MB a
minute) and whether it is flat. Figures only.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from market.recording import Recorder  # noqa: E402
from market.settings import Settings, parse_speed  # noqa: E402
from market.store import MarketStore  # noqa: E402
from market.worker import Worker  # noqa: E402

FLAT_MB_PER_MIN = 1.0  # a slope under this over the second half counts as flat


def proc_status() -> tuple[float, int]:
    """(RSS in MB, OS threads) of this process, from /proc/self/status."""
    rss_kb, threads = 0, 0
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss_kb / 1024, threads


def synthetic_recording(path: Path, frames: int, symbols: int = 4, seed: int = 1) -> Path:
    """A Binance-style recording: one REST snapshot a symbol, then ``frames`` diffs."""
    rng = random.Random(seed)
    rec = Recorder(path)
    t_ns = 1_700_000_000_000_000_000
    books = {}
    for i in range(symbols):
        symbol = f"SYM{i}USDT"
        mid = 10_000 + 1_000 * i
        books[symbol] = [1000, mid]
        bids = [[f"{(mid - k) / 100:.2f}", f"{rng.randint(1, 99)}.0"] for k in range(1, 200)]
        asks = [[f"{(mid + k) / 100:.2f}", f"{rng.randint(1, 99)}.0"] for k in range(1, 200)]
        rec.snapshot(
            json.dumps({"lastUpdateId": 1000, "bids": bids, "asks": asks}).encode(), symbol, t_ns
        )
    names = list(books)
    for n in range(frames):
        symbol = names[n % len(names)]
        last, mid = books[symbol]
        first, last = last + 1, last + rng.randint(1, 3)
        books[symbol][0] = last
        b = [
            [f"{(mid - rng.randint(1, 150)) / 100:.2f}", f"{rng.randint(0, 99)}.0"]
            for _ in range(rng.randint(1, 5))
        ]
        a = [
            [f"{(mid + rng.randint(1, 150)) / 100:.2f}", f"{rng.randint(0, 99)}.0"]
            for _ in range(rng.randint(1, 5))
        ]
        data = {"e": "depthUpdate", "E": n, "s": symbol, "U": first, "u": last, "b": b, "a": a}
        t_ns += 25_000_000
        rec.frame(json.dumps({"stream": f"{symbol.lower()}@depth@100ms", "data": data}), t_ns)
    rec.close()
    return path


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    if len(samples) < 2:
        return 0.0
    ts = [t for t, _ in samples]
    ys = [y for _, y in samples]
    mt, my = statistics.fmean(ts), statistics.fmean(ys)
    var = sum((t - mt) ** 2 for t in ts)
    return 0.0 if var == 0 else sum((t - mt) * (y - my) for t, y in samples) / var * 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--replay", type=Path, help="a recording (default: a synthetic one)")
    parser.add_argument(
        "--frames", type=int, default=20_000, help="frames of the synthetic recording"
    )
    parser.add_argument("--speed", default="max")
    parser.add_argument(
        "--series-points",
        type=int,
        default=200,
        help="series points kept per market (the store's bound; small, so that the bounded "
        "deques fill in the first half and whatever grows after that is a leak)",
    )
    parser.add_argument(
        "--trades-kept", type=int, default=200, help="trades kept per market (the same reason)"
    )
    parser.add_argument("--json", action="store_true", help="the summary as one JSON object")
    args = parser.parse_args()
    speed = parse_speed("--speed", args.speed)
    tmp = tempfile.TemporaryDirectory(prefix="soak-")
    replay_file = args.replay or synthetic_recording(Path(tmp.name) / "synthetic.gz", args.frames)
    symbols = tuple(f"S{i:02d}USDT" for i in range(args.symbols))
    mock = Worker(
        Settings(exchanges=("mock",), symbols=symbols, mock_seed=1),
        MarketStore(series_points=args.series_points, trades_kept=args.trades_kept),
    ).start()
    replay_settings = Settings(
        exchanges=("replay",), symbols=(), replay_file=str(replay_file), replay_speed=speed
    )
    stop = threading.Event()
    passes = [0]
    replay_messages = [0]

    def replayer() -> None:  # a replay worker, started again each time its recording ends
        while not stop.is_set():
            store = MarketStore(series_points=args.series_points, trades_kept=args.trades_kept)
            worker = Worker(replay_settings, store).start()
            try:
                while not stop.wait(0.05):
                    status = worker.store.snapshot(series=False, max_trades=0).statuses.get(
                        "replay"
                    )
                    if status is not None and status.state == "stopped":
                        passes[0] += 1
                        replay_messages[0] += status.messages
                        break
            finally:
                worker.stop()

    def reader() -> None:  # what the page does every 0.8 s
        while not stop.wait(0.8):
            mock.store.snapshot()

    threads = [
        threading.Thread(target=replayer, daemon=True),
        threading.Thread(target=reader, daemon=True),
    ]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    samples: list[tuple[float, float, int]] = []
    print(
        f"soak: mock × {args.symbols} symbols + replay of {Path(replay_file).name} "
        f"at {args.speed}, "
        f"{args.seconds:g} s",
        flush=True,
    )
    print("     t   rss_MB  threads  mock_msgs  replay_passes", flush=True)
    try:
        while True:
            elapsed = time.monotonic() - started
            if elapsed >= args.seconds:
                break
            time.sleep(max(0.0, math.floor(elapsed) + 1 - elapsed))  # a sample on each second
            rss, n_threads = proc_status()
            t = time.monotonic() - started
            samples.append((t, rss, n_threads))
            status = mock.store.snapshot(series=False, max_trades=0).statuses.get("mock")
            print(
                f"{t:6.0f}  {rss:7.1f}  {n_threads:7d}  "
                f"{status.messages if status else 0:9d}  {passes[0]:13d}",
                flush=True,
            )
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        mock.stop()
        tmp.cleanup()
    second_half = [(t, rss) for t, rss, _ in samples if t >= args.seconds / 2]
    slope = slope_mb_per_min(second_half)
    rss_half = [rss for _, rss in second_half] or [0.0]
    summary: dict[str, Any] = {
        "seconds": round(samples[-1][0], 1) if samples else 0.0,
        "rss_mb": {
            "start": round(samples[0][1], 1) if samples else 0.0,
            "end": round(samples[-1][1], 1) if samples else 0.0,
            "second_half_min": round(min(rss_half), 1),
            "second_half_max": round(max(rss_half), 1),
        },
        "second_half_slope_mb_per_min": round(slope, 3),
        "flat": abs(slope) < FLAT_MB_PER_MIN,
        "threads": {"min": min(n for *_, n in samples), "max": max(n for *_, n in samples)}
        if samples
        else {},
        "replay_passes": passes[0],
        "replay_messages": replay_messages[0],
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"RSS {summary['rss_mb']['start']} → {summary['rss_mb']['end']} MB; second half "
            f"{summary['rss_mb']['second_half_min']}–{summary['rss_mb']['second_half_max']} MB, "
            "slope "
            f"{slope:+.3f} MB/min: {'flat' if summary['flat'] else 'GROWING'}; threads "
            f"{summary['threads']}; replay passes {passes[0]} ({replay_messages[0]} frames)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
