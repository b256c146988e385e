"""How long one run of the dashboard fragment takes (the budget is ~30 ms at 0.8 s refresh).

    .venv/bin/python bench/page_time.py [--points 3600 20000] [--repeat 50] [--json]

For each size it fills a ``MarketStore`` with that many series points (and 1,000 trades) from
the simulated exchange on a synthetic clock, then times the fragment body ``draw`` outside a
Streamlit run (every ``st.*`` call still builds and serializes its element, only nothing is
sent), and each stage on its own: snapshot, numpy columns, cards, figure, figure JSON,
ladder, tape. Times are per run, in ms: median and 90th percentile.
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

import plotly.io  # type: ignore[import-untyped]  # noqa: E402
import plotly.tools  # type: ignore[import-untyped]  # noqa: E402

from app.components.book import ladder_html  # noqa: E402
from app.components.cards import card_values  # noqa: E402
from app.components.charts import build_price_figure  # noqa: E402
from app.components.dashboard import draw, reference_price  # noqa: E402
from app.components.fmt import price_decimals  # noqa: E402
from app.components.series import series_array, thin_rows, window  # noqa: E402
from app.components.sidebar import Prefs  # noqa: E402
from app.components.trades import TAPE_ROWS, tape_html  # noqa: E402
from market.events import FeedStatus  # noqa: E402
from market.feeds.mock import MockExchange  # noqa: E402
from market.pipeline import Pipeline  # noqa: E402
from market.store import DEFAULT_SERIES_INTERVAL, MarketStore, StoreSnapshot  # noqa: E402
from market.sync import SequencedSync  # noqa: E402

SYMBOL = "BTCUSDT"


def filled_store(points: int, seed: int = 1) -> MarketStore:
    """A store holding exactly ``points`` series points of one simulated market."""
    clock = {"now": 1_700_000_000.0}
    store = MarketStore(series_points=max(points, 1), clock=lambda: clock["now"])
    pipeline = Pipeline(store, "mock", (SYMBOL,), SequencedSync, source="simulated")
    sim = MockExchange((SYMBOL,), seed)
    pipeline.handle(sim.start(clock["now"]))
    for _ in range(points):
        clock["now"] += DEFAULT_SERIES_INTERVAL * 1.001  # exactly one series point a step
        pipeline.handle(sim.step(clock["now"]))
    store.set_status(
        FeedStatus("mock", state="simulated", source="simulated", messages=points, msg_rate=60.0),
        clock["now"],
    )
    return store


def timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    fn()  # warm up (first plotly figure validates its schema once)
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000.0)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p90_ms": round(samples[int(0.9 * (len(samples) - 1))], 2),
    }


def bench(points: int, window_name: str, repeat: int) -> dict[str, object]:
    store = filled_store(points)
    prefs = Prefs(exchange="mock", symbol=SYMBOL, depth=5, window=window_name, paused=False)
    key = ("mock", SYMBOL)

    def snap() -> StoreSnapshot:
        return store.snapshot(
            markets=[key], max_series_points=prefs.series_points, max_trades=TAPE_ROWS
        )

    view = snap().markets[key]
    series = window(series_array(thin_rows(view.series)), prefs.window_s)
    decimals = price_decimals(reference_price(view, series))
    fig = build_price_figure(series, exchange="mock", symbol=SYMBOL, depth=5, simulated=True)

    def figure_json() -> str:  # what st.plotly_chart does with a figure
        f = plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True)
        return str(plotly.io.to_json(f, validate=False))

    stages = {
        "snapshot": timed(snap, repeat),
        "series_array": timed(
            lambda: window(series_array(thin_rows(view.series)), prefs.window_s), repeat
        ),
        "cards": timed(lambda: card_values(view, series, 5, decimals), repeat),
        "figure": timed(
            lambda: build_price_figure(
                series, exchange="mock", symbol=SYMBOL, depth=5, simulated=True
            ),
            repeat,
        ),
        "figure_json": timed(figure_json, repeat),
        "ladder": timed(
            lambda: ladder_html(view.bids, view.asks, decimals, symbol=SYMBOL, simulated=True),
            repeat,
        ),
        "tape": timed(lambda: tape_html(view.trades, decimals, simulated=True), repeat),
    }
    return {
        "points_in_store": len(store.snapshot(markets=[key]).markets[key].series),
        "window": window_name,
        "rows_in_window": len(series),
        "points_drawn": len(fig.data[0].x),
        "figure_json_kb": round(len(figure_json()) / 1024, 1),
        "fragment": timed(lambda: draw(store, prefs), repeat),
        "stages": stages,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[3_600, 20_000])
    parser.add_argument("--windows", nargs="+", default=["5 min", "all kept"])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()
    for name in list(logging.root.manager.loggerDict):  # "missing ScriptRunContext" warnings
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)
    for points in args.points:
        for window_name in args.windows:
            result = bench(points, window_name, args.repeat)
            if args.json:
                print(json.dumps(result))
                continue
            frag = result["fragment"]
            stages = " ".join(f"{k}={v['median_ms']}" for k, v in result["stages"].items())  # type: ignore[attr-defined]
            print(
                f"{result['points_in_store']:>6} points, window {window_name:<8} "
                f"({result['rows_in_window']} rows, {result['points_drawn']} drawn, "
                f"{result['figure_json_kb']} kB): fragment median {frag['median_ms']} ms, "  # type: ignore[index]
                f"p90 {frag['p90_ms']} ms | {stages}"  # type: ignore[index]
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
