"""CPU share of one core for many symbols at realistic rates (the goal: under 50 % for 100).

    .venv/bin/python bench/many_symbols.py [--symbols 100] [--seconds 30] [--feed binance|bybit|mock]

``binance``: the real worker (websockets client, parser, book sync, store) against the
loopback fake Binance (tests/fakes/binance.py) running in a *separate process*, so only our
side is measured. Per symbol: 10 depth diffs a second (``depth@100ms``, the stream's rate),
about 3 trades a second and one 24 h ticker a second; 40 symbols named in the URL, the rest
subscribed on the open connection, as in production.
``bybit``: the same against the loopback fake Bybit (``orderbook.50`` deltas at 20 a second
per symbol, Bybit spot's push rate for 50 levels; trades and tickers as above).
``mock``: the simulated feed (about 10 book updates and 5-20 trades a second per symbol).

Meanwhile a reader takes a store snapshot every 0.8 s, as an open overview page does. CPU
is this process's user+system time (every thread) over wall time, after a warm-up; the books
are then checked against the fake exchange's truth (binance), and nothing may be dropped.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import resource
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from market.settings import Settings  # noqa: E402
from market.store import MarketStore  # noqa: E402
from market.worker import Timing, Worker  # noqa: E402

DIFFS_PER_S = 10.0
BYBIT_DELTAS_PER_S = 20.0
TRADES_PER_S = 3.0
WARMUP_S = 5.0


def symbols_for(n: int) -> list[str]:
    return [f"S{i:03d}USDT" for i in range(n)]


def exchange_process(
    feed: str,
    symbols: list[str],
    urls: mp.Queue,  # type: ignore[type-arg]
    stop: mp.Event,  # type: ignore[valid-type]
    counts: mp.Queue,  # type: ignore[type-arg]
    release: mp.Event,  # type: ignore[valid-type]
) -> None:
    """The fake exchange, paced: every step one diff per symbol, trades, tickers each 1 s."""
    sys.path.insert(0, str(ROOT))
    from tests.fakes.binance import FakeBinance
    from tests.fakes.bybit import FakeBybit

    rng = random.Random(1)
    sent = {"diffs": 0, "trades": 0, "tickers": 0}
    rate = DIFFS_PER_S if feed == "binance" else BYBIT_DELTAS_PER_S
    fake = FakeBinance(symbols, seed=3) if feed == "binance" else FakeBybit(symbols, seed=3)
    with fake as ex:
        urls.put((ex.ws_url, getattr(ex, "rest_url", "")))
        step = 1.0 / rate
        next_at = time.monotonic()
        n = 0
        while not stop.is_set():
            ex.tick(1)
            sent["diffs"] += len(symbols)
            for symbol in symbols:
                if rng.random() < TRADES_PER_S * step:
                    bids, asks, _ = ex.truth(symbol, 1)
                    price = f"{(asks or bids)[0][0]:.2f}"
                    qty = f"{rng.uniform(0.01, 2):.4f}"
                    if feed == "binance":
                        ex.trade(symbol, price, qty, rng.random() < 0.5)
                    else:
                        ex.trade(symbol, price, qty, rng.choice(("Buy", "Sell")))
                    sent["trades"] += 1
            n += 1
            if n % int(rate) == 0:
                for symbol in symbols:
                    ex.ticker(symbol)
                sent["tickers"] += len(symbols)
            next_at += step
            time.sleep(max(0.0, next_at - time.monotonic()))
        truth = {s: ex.truth(s, 20) for s in symbols}
        counts.put((sent, truth))
        release.wait(60)  # stay up until the books are compared (a close would reset them)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run(feed: str, n: int, seconds: float) -> dict[str, object]:
    symbols = symbols_for(n)
    settings = Settings(exchanges=(feed,), symbols=tuple(symbols), mock_seed=1)
    proc = None
    if feed != "mock":
        ctx = mp.get_context("spawn")
        urls: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        counts: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        stop = ctx.Event()
        release = ctx.Event()
        proc = ctx.Process(
            target=exchange_process, args=(feed, symbols, urls, stop, counts, release), daemon=True
        )
        proc.start()
        ws_url, rest_url = urls.get(timeout=30)
        if feed == "binance":
            settings = settings.with_urls(BINANCE_WS_URL=ws_url, BINANCE_REST_URL=rest_url)
        else:
            settings = settings.with_urls(BYBIT_WS_URL=ws_url)
    store = MarketStore()
    worker = Worker(settings, store, timing=Timing()).start()
    snapshots: list[float] = []
    done = threading.Event()

    def reader() -> None:  # an open overview page
        while not done.wait(0.8):
            t0 = time.perf_counter()
            store.snapshot(series=False, max_trades=1)
            snapshots.append((time.perf_counter() - t0) * 1e3)

    threading.Thread(target=reader, daemon=True).start()
    try:
        time.sleep(WARMUP_S)
        snap0 = store.snapshot(series=False, max_trades=0)
        status0 = snap0.statuses[feed]
        c0, w0 = cpu_seconds(), time.monotonic()
        time.sleep(seconds)
        c1, w1 = cpu_seconds(), time.monotonic()
        snap1 = store.snapshot(series=False, max_trades=0)
        status1 = snap1.statuses[feed]
    finally:
        done.set()
    result: dict[str, object] = {
        "feed": feed,
        "symbols": n,
        "seconds": round(w1 - w0, 1),
        "cpu_share_of_one_core": round((c1 - c0) / (w1 - w0), 3),
        "messages_per_s": round((status1.messages - status0.messages) / (w1 - w0), 1),
        "book_updates_per_s": round(
            (
                sum(v.book_updates for v in snap1.markets.values())
                - sum(v.book_updates for v in snap0.markets.values())
            )
            / (w1 - w0),
            1,
        ),
        "synced": sum(v.synced for v in snap1.markets.values()),
        "bad_messages": status1.bad_messages,
        "resyncs": status1.resyncs,
        "reconnects": status1.reconnects,
        "snapshot_ms_median": round(sorted(snapshots)[len(snapshots) // 2], 3)
        if snapshots
        else None,
    }
    if proc is not None:
        stop.set()
        sent, truth = counts.get(timeout=60)
        time.sleep(1.0)  # let the last frames in flight arrive before comparing
        final = store.snapshot(series=False, max_trades=0)
        exact = sum(
            1
            for s in symbols
            if list(final.markets[(feed, s)].bids[:20]) == list(truth[s][0])
            and list(final.markets[(feed, s)].asks[:20]) == list(truth[s][1])
        )
        result["books_equal_truth"] = f"{exact}/{n}"
        result["sent"] = sent
        release.set()
        proc.join(10)
    worker.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--feed", choices=("binance", "bybit", "mock"), default="binance")
    args = parser.parse_args()
    print(json.dumps(run(args.feed, args.symbols, args.seconds)))


if __name__ == "__main__":
    main()
