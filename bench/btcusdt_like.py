"""Write a Binance BTCUSDT-like recording for the ingest benches (no exchange needed).

    python bench/btcusdt_like.py OUT.gz [--seconds 120] [--seed 1]

The shape of a busy real book, as measured on real BTCUSDT traffic: a 1,000-level REST
snapshot a side, a ``depth@100ms`` diff every 100 ms carrying about 36 levels (most within a
few dollars of the touch, some deep, about a fifth of them removals), and about 2.8 ``trade``
frames per diff. The same hftbacktest-style lines ``python -m market record`` writes, so
``python -m market bench`` and ``bench/peers.py`` read it like a real recording. It is a
stand-in: the figures it gives are for the shape, not for Binance itself.
"""

from __future__ import annotations

import argparse
import gzip
import random
import sys
from pathlib import Path

import orjson

TICK = 0.01
LEVELS = 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    mid_ticks = 6_000_000  # 60,000.00
    bids = {mid_ticks - i: round(rng.uniform(0.001, 3.0), 5) for i in range(1, LEVELS + 1)}
    asks = {mid_ticks + i: round(rng.uniform(0.001, 3.0), 5) for i in range(1, LEVELS + 1)}
    update_id = 50_000_000_000
    t_ns = 1_733_000_000_000_000_000
    trade_id = 4_000_000_000

    def px(ticks: int) -> str:
        return f"{ticks * TICK:.2f}"

    with gzip.open(args.out, "wt", encoding="utf-8", compresslevel=5) as fh:
        snapshot = {
            "lastUpdateId": update_id,
            "bids": [[px(p), f"{q:.5f}"] for p, q in sorted(bids.items(), reverse=True)],
            "asks": [[px(p), f"{q:.5f}"] for p, q in sorted(asks.items())],
            "symbol": "BTCUSDT",
        }
        fh.write(f"{t_ns} {orjson.dumps(snapshot).decode()}\n")
        for _ in range(int(args.seconds * 10)):
            t_ns += 100_000_000
            first = update_id + 1
            changes: dict[str, dict[int, float]] = {"b": {}, "a": {}}
            best_bid, best_ask = max(bids), min(asks)
            for _ in range(max(4, int(rng.gauss(36, 8)))):
                side = "b" if rng.random() < 0.5 else "a"
                book = bids if side == "b" else asks
                near = rng.random() < 0.8
                offset = int(rng.expovariate(1 / 40)) if near else rng.randint(40, 900)
                ticks = best_bid - offset if side == "b" else best_ask + offset
                qty = 0.0 if rng.random() < 0.2 else round(rng.uniform(0.0001, 3.0), 5)
                if qty == 0.0:
                    book.pop(ticks, None)
                else:
                    book[ticks] = qty
                changes[side][ticks] = qty
            if not bids or not asks:
                continue
            update_id += rng.randint(20, 60)
            diff = {
                "e": "depthUpdate", "E": t_ns // 1_000_000, "s": "BTCUSDT",
                "U": first, "u": update_id,
                "b": [[px(p), f"{q:.5f}"] for p, q in sorted(changes["b"].items(), reverse=True)],
                "a": [[px(p), f"{q:.5f}"] for p, q in sorted(changes["a"].items())],
            }  # fmt: skip
            frame = {"stream": "btcusdt@depth@100ms", "data": diff}
            fh.write(f"{t_ns} {orjson.dumps(frame).decode()}\n")
            for k in range(rng.choices((1, 2, 3, 4, 5), (15, 25, 30, 20, 10))[0]):
                trade_id += 1
                maker = rng.random() < 0.5
                price = max(bids) if maker else min(asks)
                trade = {
                    "e": "trade", "E": t_ns // 1_000_000 + k, "s": "BTCUSDT", "t": trade_id,
                    "p": px(price), "q": f"{rng.uniform(0.00001, 0.5):.5f}",
                    "T": t_ns // 1_000_000 + k, "m": maker, "M": True,
                }  # fmt: skip
                frame = {"stream": "btcusdt@trade", "data": trade}
                fh.write(f"{t_ns + (k + 1) * 1000} {orjson.dumps(frame).decode()}\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
