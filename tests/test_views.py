"""The Market page's views: candles, depth, flow, session cards, whale alerts and thresholds.

Pure builders are checked with hand-computed values. The panel is run through AppTest over a
store this file fills by hand (``filled_store``: four book updates, four trades and one
backfilled trade at fixed times), so every number on the page is known exactly; the real page
on the simulated feed checks the selector and the threshold inputs end to end.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import plotly.graph_objects as go  # type: ignore[import-untyped]
import pytest
from streamlit.testing.v1 import AppTest

from app.components.alerts import (
    MAX_TOASTS,
    alert_key,
    alerts_html,
    fmt_threshold,
    parse_notional,
    toast_text,
    unseen,
)
from app.components.charts.candles import build_candles_figure
from app.components.charts.depth import build_depth_figure, depth_steps
from app.components.charts.flow import build_flow_figure
from app.components.charts.price import build_price_figure
from app.components.dashboard import chart_candles
from app.components.series import series_array
from app.components.session import (
    cvd_change,
    fmt_cvd,
    realized_vol_pct,
    session_cards,
    volatility_spread_pct,
)
from app.components.sidebar import Prefs
from app.runtime import get_worker
from market.analytics import Candle, WhaleAlert
from market.events import FeedStatus, Trade
from market.store import MarketStore
from market.views import SERIES_COLUMNS
from tests.conftest import wait_for
from tests.helpers.apptest import MARKET, html_of, running_worker, wait_for_history
from tests.helpers.cards_html import card_map, cards_of
from tests.helpers.figures import decode

T0 = 1_699_999_200.0  # 2023-11-14 22:00:00 UTC, on a 15-minute boundary
T0_MS = 1_699_999_200_000
MINUTE = 60_000
BOOK_A = (((100.0, 1.0), (99.0, 3.0)), ((101.0, 2.0), (102.0, 2.0)))  # mid 100.5, delta 0
BOOK_B = (((100.0, 4.0), (99.0, 3.0)), ((101.0, 2.0), (102.0, 2.0)))  # mid 100.5, delta +3
BOOK_C = (((101.0, 1.0), (100.0, 1.0)), ((102.0, 4.0), (103.0, 2.0)))  # mid 101.5, delta -4
PREFS = Prefs("mock", "BTCUSDT", 5, "15 min", False)


def trade(price: float, qty: float, side: str, at: float, received: float | None = None) -> Trade:
    """A trade at ``at`` (s), received 10 ms later, or at ``received`` for a backfilled one."""
    return Trade(
        exchange="mock",
        symbol="BTCUSDT",
        price=price,
        qty=qty,
        side=side,  # type: ignore[arg-type]
        ts_ms=round(at * 1000),
        received_at=at + 0.01 if received is None else received,
        backfill=received is not None,
    )


def filled_store() -> MarketStore:
    """One simulated market with known history (series ``t``, mid, cvd, depth delta):

    T0      100.5,   0,   0   book A (before any trade)
    T0+2    100.5,  -2,  +3   book B, after the backfilled trade (ignored), a buy 1 @ 100
                              and a sell 3 @ 103
    T0+71   101.5,   0,  -4   book C, after a buy 2 @ 101 at T0+70
    T0+331  100.5, -20,   0   book A, after a sell 20 @ 100 at T0+330 (notional 2,000:
                              a whale at the 1,000 threshold)
    """
    store = MarketStore(clock=lambda: T0 + 331.5)
    store.set_whale_threshold(1_000.0)
    key = ("mock", "BTCUSDT")
    store.update_book(*key, *BOOK_A, 1, T0)
    store.add_trades(
        *key,
        [
            trade(90.0, 5.0, "buy", T0 - 60, received=T0 + 0.51),
            trade(100.0, 1.0, "buy", T0 + 0.5),
            trade(103.0, 3.0, "sell", T0 + 1.2),
        ],
    )
    store.update_book(*key, *BOOK_B, 2, T0 + 2)
    store.add_trades(*key, [trade(101.0, 2.0, "buy", T0 + 70)])
    store.update_book(*key, *BOOK_C, 3, T0 + 71)
    store.add_trades(*key, [trade(100.0, 20.0, "sell", T0 + 330)])
    store.update_book(*key, *BOOK_A, 4, T0 + 331)
    store.set_status(
        FeedStatus("mock", state="simulated", source="simulated", last_message_at=T0 + 331)
    )
    return store


def spec_of(at: AppTest) -> dict[str, Any]:
    charts = at.get("plotly_chart")
    assert len(charts) == 1, f"expected one chart, got {len(charts)}"
    spec: dict[str, Any] = json.loads(charts[0].proto.spec)
    return spec


def candle(
    minute: int, o: float, h: float, lo: float, c: float, v: float, n: int, pq: float = 0.0
) -> Candle:
    return Candle(T0_MS + minute * MINUTE, o, h, lo, c, v, n, pq)


# -- pure: figures ----------------------------------------------------------------------------


def test_depth_steps_start_at_zero_at_the_best_price() -> None:
    bids, asks = BOOK_A
    assert depth_steps(bids) == ([100.0, 100.0, 99.0], [0.0, 1.0, 4.0])
    assert depth_steps(asks) == ([101.0, 101.0, 102.0], [0.0, 2.0, 4.0])
    assert depth_steps(()) == ([], [])


def test_depth_figure_sides_mid_and_labels() -> None:
    fig = build_depth_figure(*BOOK_A, exchange="mock", symbol="BTCUSDT", simulated=True, decimals=2)
    assert [t.name for t in fig.data] == ["bids", "asks"]
    assert list(fig.data[0].x) == [100.0, 100.0, 99.0] and list(fig.data[0].y) == [0, 1, 4]
    assert list(fig.data[1].x) == [101.0, 101.0, 102.0] and list(fig.data[1].y) == [0, 2, 4]
    assert fig.data[0].line.shape == "hv" and fig.data[0].line.color == "#0ecb81"
    assert fig.layout.shapes[0].x0 == 100.5 and fig.layout.annotations[0].text == "mid 100.500"
    assert "SIMULATED" in fig.layout.title.text and "top 2 a side" in fig.layout.title.text
    assert fig.layout.uirevision == "mock:BTCUSDT:depth"
    empty = build_depth_figure((), (), exchange="mock", symbol="X", simulated=False, decimals=2)
    assert empty.layout.annotations[0].text == "waiting for the order book…"
    assert "SIMULATED" not in empty.layout.title.text


def test_candles_figure_ohlc_volume_colours_and_vwap() -> None:
    cs = [
        candle(0, 100, 103, 100, 103, 4.0, 2),  # typical price 102
        candle(1, 101, 101, 101, 101, 2.0, 1),  # typical 101 → VWAP (408 + 202) / 6
        candle(2, 101, 101, 101, 101, 0.0, 0),  # flat, no volume: the line stays
    ]
    fig = build_candles_figure(
        cs,
        timeframe="1m",
        interval_ms=MINUTE,
        exchange="mock",
        symbol="BTCUSDT",
        simulated=True,
        decimals=2,
    )
    ohlc, vwap_line, volume = fig.data
    assert list(ohlc.x) == [T0_MS, T0_MS + MINUTE, T0_MS + 2 * MINUTE]
    assert list(ohlc.open) == [100, 101, 101] and list(ohlc.close) == [103, 101, 101]
    assert list(ohlc.high) == [103, 101, 101] and list(ohlc.low) == [100, 101, 101]
    assert list(vwap_line.y) == [102.0, 610 / 6, 610 / 6]
    assert list(volume.y) == [4.0, 2.0, 0.0] and volume.yaxis == "y2"
    assert vwap_line.hovertemplate == "%{y:,.2f}<extra>VWAP</extra>"  # the market's decimals
    assert volume.hovertemplate == "%{y:,.6~g}<extra>volume</extra>"
    assert list(volume.marker.color) == [1.0, 1.0, 1.0]  # close >= open: green on the scale
    assert [list(c) for c in volume.marker.colorscale] == [[0.0, "#f6465d"], [1.0, "#0ecb81"]]
    assert volume.width == 48_000  # 80 % of a minute
    assert fig.layout.xaxis.rangeslider.visible is False
    assert fig.layout.title.text.startswith("<b>BTCUSDT</b> · mock · 1m candles, volume, VWAP")
    assert "SIMULATED" in fig.layout.title.text
    assert fig.layout.uirevision == "mock:BTCUSDT:candles-1m"
    down = build_candles_figure(
        [candle(0, 10, 10, 8, 9, 1.0, 1)],
        timeframe="5m",
        interval_ms=5 * MINUTE,
        exchange="mock",
        symbol="X",
        simulated=False,
    )
    assert list(down.data[2].marker.color) == [0.0]  # red
    # one candle: Plotly sizes candles by their spacing, so an empty one goes before it
    assert list(down.data[0].x) == [T0_MS - 5 * MINUTE, T0_MS]
    assert math.isnan(down.data[0].open[0]) and list(down.data[0].open[1:]) == [10]
    assert list(down.data[2].x) == [T0_MS]  # the volume bar has its own width
    # fewer than 40 candles: the axis spans 40 periods, not just the few there are
    assert list(down.layout.xaxis.range) == [T0_MS - 38.5 * 5 * MINUTE, T0_MS + 1.5 * 5 * MINUTE]
    assert list(down.data[1].y) == [9.0]  # (10 + 8 + 9) / 3
    empty = build_candles_figure(
        [], timeframe="1s", interval_ms=1_000, exchange="mock", symbol="X", simulated=False
    )
    assert empty.layout.annotations[0].text == "waiting for trades…"


def test_flow_figure_is_time_aligned_with_signed_depth_fills() -> None:
    rows = []
    for t, mid, cvd, dd in ((1.0, 100.5, 0.0, 2.0), (2.0, 101.0, -1.5, -3.0)):
        values = {"t": t, "mid": mid, "cvd": cvd, "depth_delta": dd}
        rows.append(tuple(values.get(c, 0.0) for c in SERIES_COLUMNS))
    fig = build_flow_figure(
        series_array(tuple(rows)), exchange="mock", symbol="BTCUSDT", simulated=True
    )
    mid, cvd, pos, neg, dd = fig.data
    assert [mid.name, cvd.name, dd.name] == ["mid", "CVD (session)", "depth delta (top 20)"]
    for trace in fig.data:
        assert list(trace.x) == [1000.0, 2000.0]  # one time axis for every pane
    assert list(mid.y) == [100.5, 101.0] and list(cvd.y) == [0.0, -1.5]
    assert list(dd.y) == [2.0, -3.0]
    assert list(pos.y) == [2.0, 0.0] and list(neg.y) == [0.0, -3.0]
    assert (mid.yaxis, cvd.yaxis, dd.yaxis) == (None, "y2", "y3")  # None: the first y axis
    assert fig.layout.xaxis.anchor == "y3"
    assert "SIMULATED" in fig.layout.title.text
    assert mid.hovertemplate == "%{y}<extra>mid</extra>"  # no decimals given: as is
    priced = build_flow_figure(
        series_array(tuple(rows)), exchange="mock", symbol="X", simulated=False, decimals=2
    )
    assert priced.data[0].hovertemplate == "%{y:,.3f}<extra>mid</extra>"  # half a tick more
    assert priced.data[1].hovertemplate == "%{y:+,.6~g}<extra>CVD</extra>"
    empty = build_flow_figure(series_array(()), exchange="mock", symbol="X", simulated=False)
    assert empty.layout.annotations[0].text == "waiting for data…"


def every_figure() -> list[go.Figure]:
    rows = series_array(filled_store().snapshot().markets[MARKET].series)
    none = series_array(())
    common = {"exchange": "mock", "symbol": "BTCUSDT", "simulated": True}
    cs = [candle(0, 100, 103, 100, 103, 4.0, 2), candle(1, 101, 101, 101, 101, 2.0, 1)]
    return [
        build_price_figure(rows, depth=5, **common),
        build_price_figure(none, depth=5, **common),
        build_flow_figure(rows, **common),
        build_flow_figure(none, **common),
        *(
            build_candles_figure(c, timeframe="1m", interval_ms=MINUTE, **common)
            for c in (cs, cs[:1], [])
        ),
        build_depth_figure(*BOOK_A, decimals=2, **common),
        build_depth_figure((), (), decimals=2, **common),
    ]


def test_every_figure_passes_plotlys_full_validation() -> None:
    """The builders skip Plotly's validation for speed: it is done here instead."""
    for fig in every_figure():
        checked = go.Figure(fig.to_dict())  # raises ValueError on any invalid property
        assert json.loads(checked.to_json()) == json.loads(fig.to_json())  # nothing dropped
    with pytest.raises(ValueError, match="lien"):
        go.Figure({"data": [{"type": "scatter", "lien": {"width": 1}}]})


def test_chart_candles_per_timeframe() -> None:
    view = filled_store().snapshot().markets[MARKET]
    one_minute = [
        candle(0, 100, 103, 100, 103, 4.0, 2, 100 * 1.0 + 103 * 3.0),
        candle(1, 101, 101, 101, 101, 2.0, 1, 202.0),
        candle(2, 101, 101, 101, 101, 0.0, 0),
        candle(3, 101, 101, 101, 101, 0.0, 0),
        candle(4, 101, 101, 101, 101, 0.0, 0),
        candle(5, 100, 100, 100, 100, 20.0, 1, 2000.0),
    ]
    assert chart_candles(view, MINUTE) == one_minute
    assert chart_candles(view, 5 * MINUTE) == [
        candle(0, 100, 103, 100, 101, 6.0, 3, 611.0),
        candle(5, 100, 100, 100, 100, 20.0, 1, 2000.0),
    ]
    assert chart_candles(view, 15 * MINUTE) == [candle(0, 100, 103, 100, 100, 26.0, 4, 2611.0)]
    seconds = chart_candles(view, 1_000)  # from the tape, without the backfilled trade
    assert len(seconds) == 331
    assert seconds[0] == Candle(T0_MS, 100, 100, 100, 100, 1.0, 1, 100.0)
    assert seconds[1] == Candle(T0_MS + 1_000, 103, 103, 103, 103, 3.0, 1, 309.0)
    assert seconds[2] == Candle(T0_MS + 2_000, 103, 103, 103, 103, 0.0, 0, 0.0)
    assert seconds[-1] == Candle(T0_MS + 330_000, 100, 100, 100, 100, 20.0, 1, 2000.0)


# -- pure: session ----------------------------------------------------------------------------


def test_volatility_helpers() -> None:
    p = np.array([100.0, 110.0, np.nan, 99.0])  # NaN (no book) skipped
    assert realized_vol_pct(p) == pytest.approx(
        math.sqrt(math.log(1.1) ** 2 + math.log(0.9) ** 2) * 100, rel=1e-12
    )
    assert volatility_spread_pct(p) == (110.0 - 99.0) / 99.0 * 100
    assert realized_vol_pct(np.array([100.0])) == 0.0
    assert volatility_spread_pct(np.array([np.nan])) == 0.0
    assert volatility_spread_pct(np.array([0.0, -1.0])) == 0.0


def test_fmt_cvd_and_cvd_change() -> None:
    assert fmt_cvd(-20.0, 3) == "-20.000"
    assert fmt_cvd(1234.5, 1) == "+1,234.5"
    assert fmt_cvd(0.0, 4) == "0.0000"
    assert fmt_cvd(-0.00001, 4) == "0.0000"
    arr = series_array(filled_store().snapshot().markets[MARKET].series)
    assert cvd_change(arr, None) == -20.0
    assert cvd_change(arr[2:], T0 - 5) == -20.0 - 0.0  # newest minus oldest row of the window
    assert cvd_change(arr[2:], T0 + 100) == -20.0  # the session began inside the window
    assert cvd_change(arr[:0], None) is None


def test_session_cards_exact() -> None:
    view = filled_store().snapshot().markets[MARKET]
    cards = session_cards(view, series_array(view.series), "15 min", 2)
    assert [c.label for c in cards] == [
        "Session VWAP",
        "Session CVD",
        "Realized vol · 15 min",
        "Vol spread · 15 min",
    ]
    # VWAP (100·1 + 103·3 + 101·2 + 100·20) / 26 = 2,611 / 26 = 100.4231; mid 100.5
    # CVD 1 - 3 + 2 - 20 = -20: 4 digits of max(20, the tape's median size 3) → 2 decimals;
    # the session began (T0 + 0.51, the first batch) after the window's first row (T0): its
    # change over the window is all of it
    # mids 100.5, 100.5, 101.5, 100.5: sqrt(2) · ln(101.5 / 100.5) = 1.40022 %; 1 / 100.5
    assert [c.value for c in cards] == ["100.42", "-20.00", "1.400 %", "0.995 %"]
    # the volatility cards' deltas are notes (no arrow): how many mids; the session's
    # trade prices' (103 - 100) / 100
    assert [c.delta for c in cards] == ["+0.08", "-20.00 in 15 min", "4 mids", "session 3.000 %"]
    assert [c.arrow for c in cards] == ["auto", "auto", "off", "off"]
    assert "of the 4 trades since 22:00:00 UTC" in str(cards[0].help)


# -- pure: alerts -----------------------------------------------------------------------------


def whale(ts_s: float, side: str = "buy", qty: float = 20.0, symbol: str = "BTCUSDT") -> WhaleAlert:
    return WhaleAlert(int(ts_s * 1000), "mock", symbol, side, 100.0, qty, 100.0 * qty)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250000", 250_000.0),
        (" 250,000 ", 250_000.0),
        ("250_000", 250_000.0),
        ("250k", 250_000.0),
        ("1.5M", 1_500_000.0),
        ("2b", 2e9),
        ("1e6", 1e6),
        ("0", 0.0),
        ("12.5", 12.5),
    ],
)
def test_parse_notional_accepts(text: str, value: float) -> None:
    assert parse_notional(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "enter a notional in quote units"),
        ("abc", "'abc' is not a number"),
        ("12x", "'12x' is not a number"),
        ("k", "'k' is not a number"),
        ("-5", "'-5' is negative: a threshold is >= 0"),
        ("nan", "'nan' is not a finite number"),
        ("inf", "'inf' is not a finite number"),
        ("1e400", "'1e400' is not a finite number"),
    ],
)
def test_parse_notional_refuses_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_notional(text)


def test_fmt_threshold() -> None:
    assert fmt_threshold(100_000.0) == "100,000"
    assert fmt_threshold(2_500.5) == "2,500.5"
    assert fmt_threshold(0.0) == "0"


def test_alerts_html_newest_first_bounded_and_labelled() -> None:
    alerts = [whale(T0 + i, "buy" if i % 2 else "sell") for i in range(25)]
    html = alerts_html(alerts, simulated={MARKET}, symbol="BTCUSDT", threshold=1_000.0, rows=20)
    times = [t for t in html.split('<td class="tm">')[1:]]
    assert len(times) == 20
    assert times[0].startswith("22:00:24") and times[-1].startswith("22:00:05")
    assert html.count('<span class="simtag">SIM</span>') == 20
    assert "BTCUSDT ≥ 1.00k" in html and "SIMULATED" in html
    first = html[html.index("<tbody>") :]
    assert first.startswith(
        '<tbody><tr class="sell"><td class="tm">22:00:24</td>'
        '<td class="mk">BTCUSDT <span class="ex">mock</span> <span class="simtag">SIM</span></td>'
        '<td class="sd">sell</td><td class="px">100.00</td><td>20.00</td>'
        '<td class="val">2.00k</td></tr>'
    )
    live = alerts_html([], simulated=set(), symbol="ETHUSDT", threshold=0.0)
    assert "alerts are off for ETHUSDT" in live and "SIMULATED" not in live
    assert "no whale trade yet" in alerts_html([], simulated=set(), symbol="X", threshold=5.0)


def test_unseen_and_toast_text() -> None:
    a, b = whale(T0), whale(T0 + 1, "sell", 15.0)
    assert unseen([a, b], {alert_key(a)}) == [b]
    assert unseen([a, b], set()) == [a, b]
    assert toast_text(b, True) == "Whale sell · BTCUSDT on mock · SIMULATED: 15.00 @ 100.00 = 1.50k"
    assert toast_text(a, False) == "Whale buy · BTCUSDT on mock: 20.00 @ 100.00 = 2.00k"


# -- the panel over a store filled by hand (AppTest) ------------------------------------------


def panel(store: "MarketStore", prefs: "Prefs") -> None:  # noqa: UP037 (an AppTest script)
    """An AppTest script: the live panel (the fragment's body) over ``store``."""
    from app.components.dashboard import live_panel

    live_panel(store, prefs)


def run_view(store: MarketStore, view: str, timeframe: str = "1m") -> AppTest:
    at = AppTest.from_function(panel, args=(store, PREFS), default_timeout=30.0)
    at.session_state["chart_view"] = view
    at.session_state["timeframe"] = timeframe
    at.run()
    assert not at.exception, at.exception
    assert not at.error
    return at


def test_price_view_over_the_filled_store() -> None:
    at = run_view(filled_store(), "Price")
    spec = spec_of(at)
    assert [t["name"] for t in spec["data"]][:3] == ["ask", "bid", "mid"]
    assert decode(spec["data"][2]["y"]) == [100.5, 100.5, 101.5, 100.5]
    assert "SIMULATED" in spec["layout"]["title"]["text"]
    assert at.segmented_control(key="chart_view").value == "Price"
    assert len(at.get("button_group")) == 1  # no timeframe control outside Candles


def test_session_cards_on_the_page() -> None:
    at = run_view(filled_store(), "Price")
    cards = card_map(at)
    assert cards["Best bid"].value == "100.00" and cards["Mid"].value == "100.50"
    assert cards["Session VWAP"].value == "100.42" and cards["Session VWAP"].delta == "+0.08"
    assert cards["Session CVD"].value == "-20.00"
    assert cards["Session CVD"].delta == "-20.00 in 15 min"
    assert cards["Realized vol · 15 min"].value == "1.400 %"
    assert cards["Vol spread · 15 min"].value == "0.995 %"
    # the delta's colour and arrow, as st.metric drew them: mid above VWAP green ▲, CVD red ▼,
    # the volatility notes grey without an arrow
    vwap, cvd, vol = cards["Session VWAP"], cards["Session CVD"], cards["Realized vol · 15 min"]
    assert (vwap.tone, vwap.arrow, cvd.tone, cvd.arrow) == ("up", "▲", "down", "▼")
    assert (vol.delta, vol.tone, vol.arrow) == ("4 mids", "off", None)
    assert vwap.help is not None and "Volume-weighted average price of the 4 trades" in vwap.help
    captions = [c.value for c in at.caption]
    assert "session since 22:00:00 UTC · 4 trades · high 103.00 · low 100.00" in captions


@pytest.mark.parametrize(
    ("timeframe", "opens", "closes", "volumes"),
    [
        ("1m", [0, 1, 2, 3, 4, 5], [103, 101, 101, 101, 101, 100], [4, 2, 0, 0, 0, 20]),
        ("5m", [0, 5], [101, 100], [6, 20]),
        ("15m", [0], [100], [26]),
    ],
)
def test_candles_view_per_timeframe(
    timeframe: str, opens: list[int], closes: list[float], volumes: list[float]
) -> None:
    at = run_view(filled_store(), "Candles", timeframe)
    spec = spec_of(at)
    ohlc, line, volume = spec["data"]
    x, close = decode(ohlc["x"]), decode(ohlc["close"])
    if len(opens) == 1:  # an empty candle one period before sizes the lone one
        assert x[0] == T0_MS - 15 * MINUTE and close[0] is None
        x, close = x[1:], close[1:]
    assert x == [T0_MS + m * MINUTE for m in opens]
    assert close == closes
    assert decode(volume["y"]) == volumes
    assert line["name"] == "VWAP" and len(decode(line["y"])) == len(opens)
    title = spec["layout"]["title"]["text"]
    assert f"{timeframe} candles, volume, VWAP" in title and "SIMULATED" in title
    assert at.segmented_control(key="timeframe").value == timeframe


def test_one_second_candles_come_from_the_whole_tape() -> None:
    at = run_view(filled_store(), "Candles", "1s")
    ohlc = spec_of(at)["data"][0]
    x = decode(ohlc["x"])
    assert len(x) == 331 and x[0] == T0_MS and x[-1] == T0_MS + 330_000
    assert decode(ohlc["open"])[:3] == [100, 103, 103]
    # the tape still shows only its last rows, the backfilled trade included
    tape = html_of(at, 'class="tape"')
    assert tape.count("<tr class=") == 5


def test_depth_view_over_the_filled_store() -> None:
    spec = spec_of(run_view(filled_store(), "Depth"))
    bids, asks = spec["data"]
    assert decode(bids["x"]) == [100.0, 100.0, 99.0] and decode(bids["y"]) == [0.0, 1.0, 4.0]
    assert decode(asks["x"]) == [101.0, 101.0, 102.0] and decode(asks["y"]) == [0.0, 2.0, 4.0]
    assert "cumulative depth" in spec["layout"]["title"]["text"]
    assert "SIMULATED" in spec["layout"]["title"]["text"]


def test_flow_view_over_the_filled_store() -> None:
    spec = spec_of(run_view(filled_store(), "Flow"))
    mid, cvd, _, _, dd = spec["data"]
    times = [T0_MS, T0_MS + 2_000, T0_MS + 71_000, T0_MS + 331_000]
    assert decode(mid["x"]) == decode(cvd["x"]) == decode(dd["x"]) == times
    assert decode(mid["y"]) == [100.5, 100.5, 101.5, 100.5]
    assert decode(cvd["y"]) == [0.0, -2.0, 0.0, -20.0]
    assert decode(dd["y"]) == [0.0, 3.0, -4.0, 0.0]
    assert "SIMULATED" in spec["layout"]["title"]["text"]


def test_alerts_panel_shows_the_stores_history() -> None:
    at = run_view(filled_store(), "Price")
    html = html_of(at, 'class="alerts"')
    assert html.count("<tr class=") == 1
    assert (
        '<tr class="sell"><td class="tm">22:05:30</td><td class="mk">BTCUSDT '
        '<span class="ex">mock</span> <span class="simtag">SIM</span></td><td class="sd">sell'
        '</td><td class="px">100.00</td><td>20.00</td><td class="val">2.00k</td></tr>'
    ) in html
    assert "BTCUSDT ≥ 1.00k" in html


def test_each_new_alert_is_toasted_once() -> None:
    store = filled_store()
    at = AppTest.from_function(panel, args=(store, PREFS), default_timeout=30.0).run()
    assert not at.exception
    assert len(at.toast) == 0  # the history (shown in the panel) is not toasted
    store.add_trades("mock", "BTCUSDT", [trade(100.0, 15.0, "buy", T0 + 331)])
    at.run()
    assert [t.value for t in at.toast] == [
        "Whale buy · BTCUSDT on mock · SIMULATED: 15.00 @ 100.00 = 1.50k"
    ]
    at.run()
    assert len(at.toast) == 0  # not again on the next run
    assert html_of(at, 'class="alerts"').count("<tr class=") == 2  # it stays in the panel
    # a burst: the newest MAX_TOASTS, then one summary
    store.add_trades(
        "mock", "BTCUSDT", [trade(100.0, 10.0 + i, "sell", T0 + 332 + i) for i in range(5)]
    )
    at.run()
    texts = [t.value for t in at.toast]
    assert len(texts) == MAX_TOASTS + 1
    assert texts[0].endswith("12.00 @ 100.00 = 1.20k")  # the 3rd of 5 (10, 11, 12, 13, 14)
    assert texts[-1] == "and 2 more whale trades: see the alerts panel"
    at.run()
    assert len(at.toast) == 0


def test_reset_session_button_starts_the_session_afresh() -> None:
    store = filled_store()
    at = run_view(store, "Price")
    at.button(key="reset-mock-BTCUSDT").click().run()
    assert not at.exception
    session = store.snapshot().markets[MARKET].session
    assert (session.trades, session.cvd, session.vwap, session.candles) == (0, 0.0, None, ())
    cards = card_map(at)
    # CVD 0: the decimals of the tape's median size (3 → 3 decimals)
    assert cards["Session VWAP"].value == "—" and cards["Session CVD"].value == "0.000"
    assert "session: no trade yet" in [c.value for c in at.caption]


# -- the real page on the simulated feed ------------------------------------------------------


@pytest.mark.parametrize("view", ["Price", "Candles", "Depth", "Flow"])
def test_every_view_renders_on_the_simulated_feed(page: AppTest, view: str) -> None:
    page.run()
    wait_for_history(running_worker(), 0.5)
    page.segmented_control(key="chart_view").set_value(view).run()
    assert not page.exception and not page.error
    spec = spec_of(page)
    assert "SIMULATED" in spec["layout"]["title"]["text"]
    assert spec["data"] and all(t.get("x") is not None for t in spec["data"])
    assert len(cards_of(page)) == 10
    assert html_of(page, 'class="ladder"') and html_of(page, 'class="tape"')
    if view == "Candles":
        for timeframe in ("1s", "5m", "15m", "1m"):
            page.segmented_control(key="timeframe").set_value(timeframe).run()
            assert not page.exception
            assert f"{timeframe} candles" in spec_of(page)["layout"]["title"]["text"]
    # the choice survives a trip to the Overview page and back
    page.switch_page("views/overview.py").run()
    page.switch_page("views/market.py").run()
    assert page.segmented_control(key="chart_view").value == view


def whale_error(at: AppTest) -> str:
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1, errors
    return str(errors[0])


def test_whale_thresholds_refuse_bad_input_and_set_good_input(page: AppTest) -> None:
    page.run()
    store = get_worker().store
    assert page.text_input(key="whale_default").value == "100,000"
    assert page.text_input(key="whale_symbol").label == "BTCUSDT (every exchange)"

    page.text_input(key="whale_default").input("lots").run()
    assert not page.exception
    assert whale_error(page) == (
        "Whale threshold (default): 'lots' is not a number (e.g. 250000, 250k, 1.5M). "
        "Nothing was changed: it stays at 100,000."
    )
    assert store.whale_threshold("BTCUSDT") == store.whale_threshold("ETHUSDT") == 100_000.0

    page.text_input(key="whale_default").input("250k").run()
    assert not page.sidebar.error
    assert store.whale_threshold("ETHUSDT") == 250_000.0
    assert page.text_input(key="whale_default").value == "250,000"

    page.text_input(key="whale_symbol").input("-5").run()
    assert whale_error(page) == (
        "Whale threshold (BTCUSDT): '-5' is negative: a threshold is >= 0 (0 turns alerts off). "
        "Nothing was changed: it stays at 250,000."
    )
    assert store.whale_threshold("BTCUSDT") == 250_000.0

    page.text_input(key="whale_symbol").input("1.5M").run()
    assert not page.sidebar.error
    assert store.whale_threshold("BTCUSDT") == 1_500_000.0
    assert store.whale_threshold("ETHUSDT") == 250_000.0  # the default is untouched
    assert page.text_input(key="whale_symbol").value == "1,500,000"
    wait_for(
        lambda: store.snapshot().markets[MARKET].session.whale_threshold == 1_500_000.0,
        what="the session to carry the new threshold",
    )
    page.run()
    assert "BTCUSDT ≥ 1.50M" in html_of(page, 'class="alerts"')

    # another market: its own input shows its threshold (the default here)
    page.selectbox(key="market").select(("mock", "ETHUSDT")).run()
    assert page.text_input(key="whale_symbol").label == "ETHUSDT (every exchange)"
    assert page.text_input(key="whale_symbol").value == "250,000"


def test_a_replay_is_labelled_replay_not_live_and_not_simulated() -> None:
    store = MarketStore()
    store.reset_market("replay", "BTCUSDT", "replay", "")
    bids = tuple((100.0 - i, 1.0) for i in range(5))
    asks = tuple((101.0 + i, 1.0) for i in range(5))
    store.update_book("replay", "BTCUSDT", bids, asks, 1, T0)
    store.set_status(FeedStatus("replay", state="live", source="replay", detail="replay of x.gz"))
    at = AppTest.from_function(panel, args=(store, Prefs("replay", "BTCUSDT", 5, "15 min", False)))
    at.run(timeout=30)
    assert not at.exception, at.exception
    banners = [h.value for h in at.html if 'class="simbanner"' in h.value]
    assert len(banners) == 1 and 'data-testid="replay-banner"' in banners[0]
    ladder = [h.value for h in at.html if "simtag" in h.value and "100.00" in h.value]
    assert ladder and all(">REPLAY<" in h and "SIMULATED" not in h for h in ladder)
