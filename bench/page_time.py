"""How long one run of the dashboard fragment takes (the budget is ~30 ms at 0.8 s refresh).

    .venv/bin/python bench/page_time.py [--points 3600 20000] [--windows "5 min" "all kept"]
        [--charts Price "Candles 1s" "Candles 1m" "Candles 15m" Depth Flow] [--repeat 50] [--json]

For each size it fills a ``MarketStore`` with that many series points (and 1,000 trades) from
the simulated exchange on a synthetic clock, with a whale threshold low enough that the alerts
panel is full, then times the fragment body ``draw`` outside a Streamlit run (every ``st.*``
call still builds and serializes its element, only nothing is sent) once per chart of the
selector (only the chosen chart is built in a run), and each stage on its own: snapshot,
numpy columns, cards, session cards, the chart's figure and its JSON, ladder, tape, alerts.
Times are CPU time of the running thread per run (what a run costs the server, little
changed by other load on the machine), in ms: median and 90th percentile.
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

from app.components.alerts import alerts_html, simulated_markets  # noqa: E402
from app.components.book import ladder_html  # noqa: E402
from app.components.cards import card_values  # noqa: E402
from app.components.charts.encode import encoded  # noqa: E402
from app.components.dashboard import build_chart, draw, reference_price  # noqa: E402
from app.components.fmt import price_decimals  # noqa: E402
from app.components.selector import ChartChoice  # noqa: E402
from app.components.series import series_array, window  # noqa: E402
from app.components.session import session_cards  # noqa: E402
from app.components.shared import TICK_S  # noqa: E402
from app.components.sidebar import Prefs  # noqa: E402
from app.components.trades import TAPE_ROWS, tape_html  # noqa: E402
from market.events import FeedStatus  # noqa: E402
from market.pipeline import Pipeline  # noqa: E402
from market.store import DEFAULT_SERIES_INTERVAL, MarketStore  # noqa: E402
from market.views import StoreSnapshot  # noqa: E402
from market.sync import SequencedSync  # noqa: E402
from market.venues.mock import MockExchange  # noqa: E402

SYMBOL = "BTCUSDT"
WHALE_NOTIONAL = 3_000.0  # the simulated BTC trades ~200-20,000 quote: alerts every few seconds
CHARTS = {
    "Price": ChartChoice("Price"),
    "Candles 1s": ChartChoice("Candles", "1s"),
    "Candles 1m": ChartChoice("Candles", "1m"),
    "Candles 15m": ChartChoice("Candles", "15m"),
    "Depth": ChartChoice("Depth"),
    "Flow": ChartChoice("Flow"),
}


def filled_store(points: int, seed: int = 1) -> MarketStore:
    """A store holding exactly ``points`` series points of one simulated market."""
    clock = {"now": 1_700_000_000.0}
    store = MarketStore(series_points=max(points, 1), clock=lambda: clock["now"])
    store.set_whale_threshold(WHALE_NOTIONAL)
    pipeline = Pipeline(store, "mock", (SYMBOL,), SequencedSync, source="simulated")
    sim = MockExchange((SYMBOL,), seed)
    pipeline.handle(sim.start(clock["now"]))
    for _ in range(points):
        clock["now"] += DEFAULT_SERIES_INTERVAL * 1.001  # exactly one series point a step
        pipeline.handle(sim.step(clock["now"]))
    store.set_status(
        FeedStatus(
            "mock", state="simulated", source="simulated", messages=points, msg_rate=60.0,
            last_message_at=clock["now"],
        )
    )
    return store


def timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    fn()  # warm up (first plotly figure validates its schema once)
    samples = []
    for _ in range(repeat):
        t0 = time.thread_time()
        fn()
        samples.append((time.thread_time() - t0) * 1000.0)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p90_ms": round(samples[int(0.9 * (len(samples) - 1))], 2),
    }


def bench(
    points: int, window_name: str, repeat: int, charts: list[str], store: MarketStore
) -> dict[str, object]:
    prefs = Prefs(exchange="mock", symbol=SYMBOL, depth=5, window=window_name, paused=False)
    key = ("mock", SYMBOL)

    def snap() -> StoreSnapshot:
        return store.snapshot(
            markets=[key], max_series_points=prefs.series_points, max_trades=TAPE_ROWS
        )

    full = store.snapshot(markets=[key], max_series_points=prefs.series_points)
    view = full.markets[key]
    series = window(series_array(view.series), prefs.window_s)
    decimals = price_decimals(reference_price(view, series))
    sims = simulated_markets(full)

    def figure(choice: ChartChoice) -> object:  # the spec, encoded for the browser once
        return encoded(
            build_chart(
                choice, view, series, depth=5, decimals=decimals, synced=True, simulated=True
            )
        )

    def figure_json(fig: object) -> str:  # what st.plotly_chart does with a figure
        f = plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True)
        return str(plotly.io.to_json(f, validate=False))

    stages = {
        "snapshot": timed(snap, repeat),
        "series_array (all rows)": timed(
            lambda: window(series_array(view.series), prefs.window_s), repeat
        ),
        "cards": timed(lambda: card_values(view, series, 5, decimals), repeat),
        "session_cards": timed(lambda: session_cards(view, series, window_name, decimals), repeat),
        "ladder": timed(
            lambda: ladder_html(view.bids, view.asks, decimals, symbol=SYMBOL, simulated=True),
            repeat,
        ),
        "tape": timed(
            lambda: tape_html(view.trades[-TAPE_ROWS:], decimals, simulated=True), repeat
        ),
        "alerts": timed(
            lambda: alerts_html(full.alerts, simulated=sims, symbol=SYMBOL, threshold=3e3), repeat
        ),
    }
    per_chart: dict[str, object] = {}
    for name in charts:
        choice = CHARTS[name]
        fig = figure(choice)
        per_chart[name] = {
            # a store that does not change: the figure of its version is built once, then shared
            "fragment": timed(lambda c=choice: draw(store, prefs, c), repeat),  # type: ignore[misc]
            "fragment_shared_tick": timed(
                lambda c=choice: draw(store, prefs, c, share_s=TICK_S),  # type: ignore[misc]
                repeat,
            ),
            "figure": timed(lambda c=choice: figure(c), repeat),  # type: ignore[misc]
            "figure_json": timed(lambda f=fig: figure_json(f), repeat),  # type: ignore[misc]
            "figure_json_kb": round(len(figure_json(fig)) / 1024, 1),
        }
    return {
        "points_in_store": len(view.series) if window_name == "all kept" else points,
        "window": window_name,
        "rows_in_window": len(series),
        "trades": len(view.trades),
        "alerts": len(full.alerts),
        "stages": stages,
        "charts": per_chart,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[3_600, 20_000])
    parser.add_argument("--windows", nargs="+", default=["5 min", "all kept"])
    parser.add_argument("--charts", nargs="+", default=list(CHARTS), choices=list(CHARTS))
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()
    for name in list(logging.root.manager.loggerDict):  # "missing ScriptRunContext" warnings
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)
    for points in args.points:
        store = filled_store(points)
        for window_name in args.windows:
            result = bench(points, window_name, args.repeat, args.charts, store)
            if args.json:
                print(json.dumps(result))
                continue
            stages = " ".join(f"{k}={v['median_ms']}" for k, v in result["stages"].items())  # type: ignore[attr-defined]
            print(
                f"{points:>6} points, window {window_name:<8} ({result['rows_in_window']} rows, "
                f"{result['trades']} trades, {result['alerts']} alerts) | {stages}"
            )
            for name, chart in result["charts"].items():  # type: ignore[attr-defined]
                frag = chart["fragment"]
                print(
                    f"    {name:<12} fragment median {frag['median_ms']:>6} ms, "
                    f"p90 {frag['p90_ms']:>6} ms | figure + encoding (once a version) "
                    f"{chart['figure']['median_ms']} ms, "
                    f"json {chart['figure_json']['median_ms']} ms, {chart['figure_json_kb']} kB"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
