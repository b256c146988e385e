"""What every tab shares: the bounded cache, the incremental series conversion, the figure
encoded once (and exactly as Plotly would), and one tick's chart built once for many tabs."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import plotly.graph_objects as go  # type: ignore[import-untyped]
import plotly.io  # type: ignore[import-untyped]
import plotly.tools  # type: ignore[import-untyped]
import pytest

from app.components import dashboard
from app.components.charts.candles import candles_spec
from app.components.charts.depth import depth_spec
from app.components.charts.encode import encoded
from app.components.charts.flow import flow_spec
from app.components.charts.price import price_spec
from app.components.dashboard import chart_figure, market_tick, tick_panels
from app.components.selector import ChartChoice
from app.components.series import extend_series, series_array, shared_series_array
from app.components.shared import SharedCache
from app.components.sidebar import Prefs
from market.analytics import MINUTE_MS, Candle
from market.store import MarketStore
from market.views import SERIES_COLUMNS

WIDTH = len(SERIES_COLUMNS)


def rows(start: int, stop: int) -> tuple[tuple[float, ...], ...]:
    """Series rows at t = start..stop-1 with distinct values (NaN in one column)."""
    return tuple(
        (float(t), *tuple(float(t * 10 + c) for c in range(1, WIDTH - 1)), math.nan)
        for t in range(start, stop)
    )


# -- SharedCache ------------------------------------------------------------------------------


def test_cache_builds_a_missing_value_once_and_keeps_the_newest_entries() -> None:
    cache: SharedCache[str] = SharedCache(entries=2)
    built: list[str] = []

    def build(v: str) -> str:
        built.append(v)
        return v.upper()

    assert cache.get("a", lambda: build("a")) == "A"
    assert cache.get("a", lambda: build("again")) == "A"
    assert cache.get("b", lambda: build("b")) == "B"
    assert cache.get("a", lambda: build("again")) == "A"  # a is now the most recent
    assert cache.get("c", lambda: build("c")) == "C"  # evicts b, the least recently used
    assert built == ["a", "b", "c"]
    assert cache.peek("b") is None and cache.peek("a") == "A" and len(cache) == 2
    assert (cache.hits, cache.builds) == (2, 3)


def test_concurrent_askers_of_one_key_wait_for_one_build() -> None:
    cache: SharedCache[int] = SharedCache()
    started = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        started.set()
        assert release.wait(10)
        return 42

    results: list[int] = []
    first = threading.Thread(target=lambda: results.append(cache.get("k", slow)))
    first.start()
    assert started.wait(10)
    others = [
        threading.Thread(target=lambda: results.append(cache.get("k", slow))) for _ in range(4)
    ]
    for t in others:
        t.start()
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert results == [42] * 5 and calls == [1]


def test_a_failed_build_is_not_cached_and_the_next_asker_builds() -> None:
    cache: SharedCache[int] = SharedCache()

    def fail() -> int:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        cache.get("k", fail)
    assert cache.get("k", lambda: 7) == 7


# -- series -----------------------------------------------------------------------------------


def test_extend_series_converts_only_new_rows_and_equals_a_full_conversion() -> None:
    first = series_array(rows(0, 100))
    grown = rows(5, 112)  # the deque dropped 5 rows and got 12 new ones
    extended = extend_series(first, grown)
    np.testing.assert_array_equal(extended, series_array(grown))
    assert np.shares_memory(extended, first) is False  # concatenated: a new array
    same = extend_series(first, rows(50, 100))  # a shorter window, nothing new
    assert np.shares_memory(same, first)
    np.testing.assert_array_equal(same, series_array(rows(50, 100)))


def test_extend_series_starts_over_when_the_rows_do_not_continue() -> None:
    first = series_array(rows(0, 100))
    other = tuple((r[0], 1.0, *r[2:]) for r in rows(0, 110))  # same times, other values
    np.testing.assert_array_equal(extend_series(first, other), series_array(other))
    reset = rows(200, 210)  # the market was reset: nothing in common
    np.testing.assert_array_equal(extend_series(first, reset), series_array(reset))
    assert extend_series(first, ()).shape == (0, WIDTH)


def test_shared_series_array_is_per_store_and_read_only() -> None:
    a, b = MarketStore(), MarketStore()
    key = (("mock", "X"), None)
    arr_a = shared_series_array(a, key, rows(0, 10))
    arr_b = shared_series_array(b, key, rows(100, 105))  # another store: its own rows
    assert list(arr_a[:, 0]) == list(range(10)) and list(arr_b[:, 0]) == list(range(100, 105))
    assert not arr_a.flags.writeable
    np.testing.assert_array_equal(
        shared_series_array(a, key, rows(3, 15)), series_array(rows(3, 15))
    )


# -- encoded figures --------------------------------------------------------------------------


def specs() -> Iterator[dict[str, object]]:
    arr = series_array(rows(0, 3000))
    common = {"exchange": "mock", "symbol": "BTCUSDT", "simulated": True}
    yield price_spec(arr, depth=5, decimals=2, **common)  # type: ignore[arg-type]
    yield flow_spec(arr, decimals=2, **common)  # type: ignore[arg-type]
    candles = [Candle(i * MINUTE_MS, 10, 12, 9, 11 - i % 2, 3.0, 4) for i in range(5)]
    yield candles_spec(candles, timeframe="1m", interval_ms=MINUTE_MS, **common)  # type: ignore[arg-type]
    yield depth_spec(((100.0, 1.0),), ((101.0, 2.0),), decimals=2, **common)  # type: ignore[arg-type]


def plotly_json(figure: object) -> dict[str, Any]:
    """What st.plotly_chart sends for ``figure``."""
    fig = plotly.tools.return_figure_from_figure_or_data(figure, validate_figure=True)
    sent: dict[str, Any] = json.loads(plotly.io.to_json(fig, validate=False))
    return sent


@pytest.mark.parametrize("index", range(4))
def test_an_encoded_figure_sends_exactly_what_plotly_would(index: int) -> None:
    """Byte for byte Plotly's own payload, less the default template (~9 kB of defaults for
    chart types we never draw): every colour and font we use is set explicitly."""
    spec = list(specs())[index]
    ours, plotlys = plotly_json(encoded(spec)), plotly_json(go.Figure(spec))
    assert "template" not in ours["layout"]
    assert "colorway" in plotlys["layout"].pop("template")["layout"]
    assert ours == plotlys


def test_long_series_are_thinned_to_what_a_chart_can_show() -> None:
    spec = price_spec(
        series_array(rows(0, 20_000)), exchange="m", symbol="S", depth=5, simulated=False
    )
    assert len(spec["data"][0]["x"]) <= 1_400
    assert plotly_json(encoded(spec))["data"][0]["y"]["dtype"] == "f4"


# -- one tick, many tabs ----------------------------------------------------------------------


def filled() -> MarketStore:
    store = MarketStore()
    for i in range(50):
        store.update_book(
            "mock", "BTCUSDT", ((100.0 + i, 1.0),), ((101.0 + i, 1.0),), i + 1, 1e9 + i
        )
    return store


PREFS = Prefs(exchange="mock", symbol="BTCUSDT", depth=5, window="5 min", paused=False)


def test_tabs_refreshing_together_share_one_snapshot_and_one_figure() -> None:
    store = filled()
    choice = ChartChoice("Price")
    ticks = {id(market_tick(store, PREFS, choice, share_s=3600.0)) for _ in range(10)}
    assert len(ticks) == 1  # one snapshot in the slot, whichever tab asks
    tick = market_tick(store, PREFS, choice, share_s=3600.0)
    builds = dashboard._FIGURES.builds
    figures = {id(chart_figure(store, tick, PREFS, choice)) for _ in range(10)}
    assert len(figures) == 1 and dashboard._FIGURES.builds == builds + 1
    panels = {id(tick_panels(store, tick)) for _ in range(10)}
    assert len(panels) == 1
    assert "ORDER BOOK · BTCUSDT" in tick_panels(store, tick).ladder
    # a page run takes its own snapshot, and a change of the store is a new figure
    fresh = market_tick(store, PREFS, choice, share_s=0.0)
    assert fresh is not tick and fresh.snap.version == tick.snap.version
    store.update_book("mock", "BTCUSDT", ((90.0, 1.0),), ((91.0, 1.0),), 99, 1e9 + 99)
    newer = market_tick(store, PREFS, choice, share_s=0.0)
    assert newer.snap.version > tick.snap.version
    assert chart_figure(store, newer, PREFS, choice) is not chart_figure(store, tick, PREFS, choice)
    assert newer.series[-1, 1] == 90.0  # best bid of the newest row


def test_another_store_never_gets_this_stores_figure() -> None:
    """Same version numbers, same market: still its own figure (tests make many stores)."""
    choice = ChartChoice("Depth")
    a, b = filled(), MarketStore()
    b.update_book("mock", "BTCUSDT", ((5.0, 1.0),), ((6.0, 1.0),), 1, 1e9)
    ta = market_tick(a, PREFS, choice, share_s=0.0)
    tb = market_tick(b, PREFS, choice, share_s=0.0)
    fa = chart_figure(a, ta, PREFS, choice).to_dict()
    fb = chart_figure(b, tb, PREFS, choice).to_dict()
    assert fa["data"][0]["x"][0] == 149.0 and fb["data"][0]["x"][0] == 5.0
