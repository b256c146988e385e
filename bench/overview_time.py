"""How long one run of the Overview fragment takes with many markets (budget: ~30 ms a run).

    .venv/bin/python bench/overview_time.py [--markets 100 200] [--repeat 50] [--json]

For each size it runs that many simulated markets (``SYM000USDT``…) through the real
pipeline into a ``MarketStore`` for 60 s of synthetic time (books, trades, tickers), then
times the fragment body ``draw_overview`` outside a Streamlit run (every ``st.*`` call still
builds and serializes its element, only nothing is sent), and each stage on its own:
snapshot, rows, sort, frame, the dataframe element (Arrow). ``fragment_ms`` is a run that
builds its table (the first tab of a store version); ``fragment_shared_ms`` a run that finds
it built by another tab. Times are CPU time of the running thread per run (what a run costs
the server, little changed by other load on the machine), in ms: median and 90th
percentile. It also times ``MockExchange.step`` for the same markets (µs a step,
all markets at once; the worker steps 10 times a second).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app.components import overview  # noqa: E402
from app.components.overview import COLUMN_CONFIG, draw_overview  # noqa: E402
from app.components.overview_data import (  # noqa: E402
    DEFAULT_SORT,
    overview_frame,
    overview_rows,
    sort_rows,
)
from market.events import FeedStatus  # noqa: E402
from market.pipeline import Pipeline  # noqa: E402
from market.store import MarketStore  # noqa: E402
from market.sync import SequencedSync  # noqa: E402
from market.venues.mock import MockExchange  # noqa: E402

SECONDS = 60.0
STEP_S = 0.1


def symbols_of(n: int) -> tuple[str, ...]:
    return tuple(f"SYM{i:03d}USDT" for i in range(n))


def filled_store(n: int, seed: int = 1) -> MarketStore:
    clock = {"now": 1_700_000_000.0}
    store = MarketStore(clock=lambda: clock["now"])
    symbols = symbols_of(n)
    pipeline = Pipeline(store, "mock", symbols, SequencedSync, source="simulated")
    sim = MockExchange(symbols, seed)
    pipeline.handle(sim.start(clock["now"]))
    for _ in range(round(SECONDS / STEP_S)):
        clock["now"] += STEP_S
        pipeline.handle(sim.step(clock["now"]))
    store.set_status(
        FeedStatus(
            "mock", state="simulated", source="simulated", msg_rate=n * 23.0,
            last_message_at=clock["now"],
        )
    )
    return store


def timed(fn: Callable[[], object], repeat: int, unit: float = 1000.0) -> dict[str, float]:
    fn()  # warm up
    samples = []
    for _ in range(repeat):
        t0 = time.thread_time()
        fn()
        samples.append((time.thread_time() - t0) * unit)
    samples.sort()
    return {
        "median": round(statistics.median(samples), 2),
        "p90": round(samples[int(0.9 * (len(samples) - 1))], 2),
    }


def step_time(n: int, repeat: int) -> dict[str, float]:
    sim = MockExchange(symbols_of(n), 1)
    clock = {"now": 1_700_000_000.0}
    sim.start(clock["now"])

    def step() -> None:
        clock["now"] += STEP_S
        sim.step(clock["now"])

    return timed(step, max(repeat, 200), unit=1e6)


def bench(n: int, repeat: int) -> dict[str, object]:
    store = filled_store(n)
    watched = [("mock", s) for s in symbols_of(n)]
    snap = store.snapshot(series=False, max_trades=1)
    rows = overview_rows(snap, watched)
    shown = sort_rows(rows, DEFAULT_SORT)
    frame = overview_frame(shown)
    stages = {
        "snapshot": timed(lambda: store.snapshot(series=False, max_trades=1), repeat),
        "rows": timed(lambda: overview_rows(snap, watched), repeat),
        "sort": timed(lambda: sort_rows(rows, DEFAULT_SORT), repeat),
        "frame": timed(lambda: overview_frame(shown), repeat),
        "table": timed(
            lambda: st.dataframe(frame, hide_index=True, column_config=COLUMN_CONFIG), repeat
        ),
    }

    def unshared() -> None:
        overview._TABLES.clear()  # as the first tab of a new store version
        draw_overview(store, watched)

    return {
        "markets": n,
        "rows": len(rows),
        "fragment_ms": timed(unshared, repeat),
        "fragment_shared_ms": timed(lambda: draw_overview(store, watched), repeat),
        "stages_ms": stages,
        "mock_step_us": step_time(n, repeat),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, nargs="+", default=[100])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # "missing ScriptRunContext", once per st.* call
    for n in args.markets:
        result = bench(n, args.repeat)
        if args.json:
            print(json.dumps(result))
            continue
        frag = result["fragment_ms"]
        shared = result["fragment_shared_ms"]
        step = result["mock_step_us"]
        stages = " ".join(f"{k}={v['median']}" for k, v in result["stages_ms"].items())  # type: ignore[attr-defined]
        print(
            f"{n:>4} markets: overview fragment median {frag['median']} ms, "  # type: ignore[index]
            f"p90 {frag['p90']} ms; shared by another tab: median {shared['median']} ms "  # type: ignore[index]
            f"| {stages} | MockExchange.step for all {n}: "
            f"median {step['median']:.0f} us, p90 {step['p90']:.0f} us"  # type: ignore[index]
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
