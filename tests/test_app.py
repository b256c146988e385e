"""The dashboard: pure builders and formatters with exact values, and the page through AppTest.

The AppTest tests run the real page (``app/main.py``) on the simulated feed with a fixed seed;
each gets a fresh worker (started by the page's ``cache_resource``) and stops it afterwards
(the ``page`` fixture, in ``tests/conftest.py``).
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app.components.book import ladder_html
from app.components.cards import Card, card_values, cards_html, reference_row
from app.components.charts.layout import chart_title
from app.components.charts.price import build_price_figure
from app.components.fmt import (
    fmt_age,
    fmt_bps,
    fmt_imbalance,
    fmt_notional,
    fmt_price,
    fmt_qty,
    fmt_signed,
    price_decimals,
    qty_decimals,
)
from app.components.series import COL, downsample_indices, series_array, window
from app.components.status import SIMULATED_BANNER, is_simulated, status_html
from app.components.trades import large_threshold, tape_html
from market.events import FeedStatus, Trade
from market.metrics import imbalance, top_of_book
from market.views import SERIES_COLUMNS, MarketView
from market.worker import Worker
from tests.conftest import wait_for
from tests.helpers.apptest import MARKET, RUN_TIMEOUT, html_of, running_worker, wait_for_history
from tests.helpers.cards_html import card_map, cards_of, parse_cards

BOOK_CARDS = ["Best bid", "Best ask", "Mid", "Spread", "Spread (bps)", "Imbalance (top 5)"]
SESSION_CARDS = ["Session VWAP", "Session CVD", "Realized vol · 5 min", "Vol spread · 5 min"]


# -- helpers ----------------------------------------------------------------------------------


def row(t: float, bid: float, ask: float, imb: float = 0.0) -> tuple[float, ...]:
    """A series row in SERIES_COLUMNS order (every imbalance column set to ``imb``)."""
    mid = (bid + ask) / 2
    values = {"t": t, "best_bid": bid, "best_ask": ask, "mid": mid, "spread": ask - bid}
    values["spread_bps"] = (ask - bid) / mid * 10_000
    return tuple(values.get(c, imb) for c in SERIES_COLUMNS)


def view(
    bids: tuple[tuple[float, float], ...] = ((100.0, 1.0), (99.0, 3.0)),
    asks: tuple[tuple[float, float], ...] = ((101.0, 2.0), (102.0, 2.0)),
    series: tuple[tuple[float, ...], ...] = (),
    trades: tuple[Trade, ...] = (),
    *,
    synced: bool = True,
    source: str = "live",
) -> MarketView:
    return MarketView(
        exchange="mock",
        symbol="BTCUSDT",
        source=source,
        bids=bids,
        asks=asks,  # type: ignore[arg-type]
        update_id=1,
        updated_at=1.0,
        synced=synced,
        detail="" if synced else "resyncing: gap",
        book_updates=1,
        series=series,
        trades=trades,
        trades_seen=len(trades),
        resyncs=0,
    )


def trade(price: float, qty: float, side: str, ts_ms: int) -> Trade:
    return Trade("mock", "BTCUSDT", price, qty, side, ts_ms)  # type: ignore[arg-type]


# -- formatting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "decimals"),
    [
        (65_000.0, 2),
        (3_200.0, 2),
        (150.0, 2),
        (15.0, 3),
        (6.5, 4),
        (0.55, 5),
        (0.12, 5),
        (0.000012345, 9),
        (None, 2),
        (math.nan, 2),
        (0.0, 2),
        (1e-12, 10),
    ],
)
def test_price_decimals_by_magnitude(ref: float | None, decimals: int) -> None:
    assert price_decimals(ref) == decimals


def test_fmt_price() -> None:
    assert fmt_price(65012.5, 2) == "65,012.50"
    assert fmt_price(0.551234, 5) == "0.55123"
    assert fmt_price(None, 2) == "—"
    assert fmt_price(math.nan, 2) == "—"
    assert fmt_price(math.inf, 2) == "—"


def test_fmt_qty_and_decimals() -> None:
    assert qty_decimals(1234.0) == 0
    assert qty_decimals(12.3) == 2
    assert qty_decimals(0.5) == 4
    assert qty_decimals(0.0123) == 5
    assert qty_decimals(None) == 4
    assert fmt_qty(1234.4) == "1,234"
    assert fmt_qty(0.0081, 5) == "0.00810"
    assert fmt_qty(12.3) == "12.30"
    assert fmt_qty(0.0) == "0.0000"
    assert fmt_qty(None) == "—"


def test_fmt_signed_for_metric_deltas() -> None:
    assert fmt_signed(1.5, 2) == "+1.50"
    assert fmt_signed(-0.25, 2, " bps") == "-0.25 bps"
    assert fmt_signed(1234.5, 1) == "+1,234.5"
    assert fmt_signed(0.001, 2) == "0"  # Streamlit draws the literal "0" grey, no arrow
    assert fmt_signed(-0.004, 2) == "0"
    assert fmt_signed(None, 2) is None
    assert fmt_signed(math.nan, 2) is None


def test_card_html_colours_the_delta_as_st_metric_did() -> None:
    shown = parse_cards(
        cards_html(
            [
                Card("Best bid", "1,000.00", "+1.00"),
                Card("Mid", "999.50", "-0.50"),
                Card("Spread", "1.00", "+0.50", "inverse", 'ask - bid <in "quote">'),
                Card("Spread (bps)", "0.10 bps", "-0.02 bps", "inverse"),
                Card("Imbalance (top 5)", "+0.100", "0"),
                Card("Realized vol · 5 min", "0.010 %", "12 mids", "off", None, "off"),
                Card("Best ask", "—", None),
            ]
        )
    )
    assert [(c.label, c.value, c.delta, c.tone, c.arrow) for c in shown] == [
        ("Best bid", "1,000.00", "+1.00", "up", "▲"),
        ("Mid", "999.50", "-0.50", "down", "▼"),
        ("Spread", "1.00", "+0.50", "down", "▲"),  # a wider spread is red
        ("Spread (bps)", "0.10 bps", "-0.02 bps", "up", "▼"),
        ("Imbalance (top 5)", "+0.100", "0", "off", None),  # rounds to zero: grey, no arrow
        ("Realized vol · 5 min", "0.010 %", "12 mids", "off", None),  # a note
        ("Best ask", "—", None, None, None),
    ]
    assert shown[2].help == 'ask - bid <in "quote">'  # escaped in the HTML, read back whole


def test_small_formatters() -> None:
    assert fmt_notional(950.0) == "950"
    assert fmt_notional(5.5) == "5.50"
    assert fmt_notional(12_300.0) == "12.30k"
    assert fmt_notional(250_000.0) == "250.0k"
    assert fmt_notional(4_560_000.0) == "4.56M"
    assert fmt_notional(1.2e9) == "1.20B"
    assert fmt_bps(0.6154) == "0.62 bps"
    assert fmt_imbalance(0.25) == "+0.250"
    assert fmt_imbalance(-1.0) == "-1.000"
    assert fmt_age(0.25) == "0.2 s"  # round half to even
    assert fmt_age(42.0) == "42 s"
    assert fmt_age(600.0) == "10 min"
    assert fmt_age(None) == "—"


# -- series -----------------------------------------------------------------------------------


def test_series_array_keeps_columns_and_nan() -> None:
    rows = (row(1.0, 100.0, 101.0), (2.0,) + (math.nan,) * (len(SERIES_COLUMNS) - 1))
    arr = series_array(rows)
    assert arr.shape == (2, len(SERIES_COLUMNS))
    assert arr[0, COL["mid"]] == 100.5
    assert math.isnan(arr[1, COL["best_bid"]])
    assert series_array(()).shape == (0, len(SERIES_COLUMNS))


def test_window_cuts_by_time_of_newest_row() -> None:
    arr = series_array(tuple(row(float(t), 100.0, 101.0) for t in range(10)))
    assert window(arr, 3.0)[:, COL["t"]].tolist() == [6.0, 7.0, 8.0, 9.0]
    assert len(window(arr, None)) == 10


def test_downsample_keeps_min_and_max_of_each_bucket() -> None:
    y = np.array([0, 5, 1, 2, 9, 3, 4, 8, 6, 7], dtype=float)
    # max 6 points → 2 buckets of 5: [0,5,1,2,9] keeps 0 (min) and 4 (max);
    # [3,4,8,6,7] keeps 5 (min) and 7 (max); plus the first and last point
    assert downsample_indices(y, 6).tolist() == [0, 4, 5, 7, 9]
    assert downsample_indices(y, 10).tolist() == list(range(10))


def test_downsample_ignores_nan_and_bounds_the_count() -> None:
    y = np.array([np.nan, 5, 1, 2, 9, 3, np.nan, 8, 6, 7])
    assert downsample_indices(y, 6).tolist() == [0, 2, 4, 5, 7, 9]
    big = np.sin(np.arange(20_000) / 50.0)
    idx = downsample_indices(big, 2_000)
    assert len(idx) <= 2_000
    assert idx[0] == 0 and idx[-1] == 19_999
    assert np.all(np.diff(idx) > 0)
    assert big[idx].max() == big.max() and big[idx].min() == big.min()


# -- cards ------------------------------------------------------------------------------------


def test_reference_row_is_about_one_second_back() -> None:
    arr = series_array(tuple(row(10.0 + 0.25 * i, 100.0 + i, 101.0 + i) for i in range(9)))
    ref = reference_row(arr)  # newest t = 12.0 → last row at or before 11.0 is t = 11.0
    assert ref is not None and ref[COL["t"]] == 11.0
    assert reference_row(arr[:1]) is None
    assert reference_row(arr[:4]) is None  # 10.0 … 10.75: nothing a second older than the newest


def test_card_values_exact() -> None:
    series = (row(10.0, 98.0, 100.0, imb=0.5), row(11.0, 99.0, 101.0, imb=0.0))
    v = view(series=series)
    cards = card_values(v, series_array(series), 1, 2)
    labels = ["Best bid", "Best ask", "Mid", "Spread", "Spread (bps)", "Imbalance (top 1)"]
    assert [c.label for c in cards] == labels
    assert [c.value for c in cards] == ["100.00", "101.00", "100.50", "1.00", "99.50 bps", "-0.333"]
    # vs the row at t=10 (one second before the newest): bid 98 → 100, ask 100 → 101,
    # mid 99 → 100.5, spread 2 → 1, spread bps 2/99*1e4 = 202.02 → 1/100.5*1e4 = 99.50,
    # imbalance of the top level (1-2)/(1+2) = -0.333 vs 0.5
    deltas = ["+2.00", "+1.00", "+1.500", "-1.00", "-102.52 bps", "-0.833"]
    assert [c.delta for c in cards] == deltas
    assert [c.delta_color for c in cards] == ["normal"] * 3 + ["inverse"] * 2 + ["normal"]


def test_card_values_without_history_have_no_delta() -> None:
    cards = card_values(view(), series_array(()), 5, 2)
    assert [c.delta for c in cards] == [None] * 6
    assert cards[0].value == "100.00"


# -- ladder and tape --------------------------------------------------------------------------


def test_ladder_html_order_bars_and_spread_row() -> None:
    html = ladder_html(
        ((100.0, 1.0), (99.0, 3.0)),
        ((101.0, 2.0), (102.0, 2.0)),
        2,
        symbol="BTCUSDT",
        simulated=False,
    )
    prices = re.findall(r'<tr class="(ask|bid)"[^>]*><td class="px">([\d,.]+)</td>', html)
    assert prices == [("ask", "102.00"), ("ask", "101.00"), ("bid", "100.00"), ("bid", "99.00")]
    # cumulative: asks 2, 4 and bids 1, 4 → scaled to 4
    assert re.findall(r"(\d+\.\d)%,transparent", html) == ["100.0", "50.0", "25.0", "100.0"]
    assert html.index("ask") < html.index("spreadrow") < html.index('class="bid"')
    assert '<td class="px">100.500</td><td>1.00</td><td>99.50 bps</td></tr>' in html
    assert "SIMULATED" not in html


def test_ladder_html_keeps_top_20_a_side() -> None:
    bids = tuple((1000.0 - i, 1.0) for i in range(50))
    asks = tuple((1001.0 + i, 1.0) for i in range(50))
    html = ladder_html(bids, asks, 2, symbol="X", simulated=True)
    assert html.count('<tr class="ask"') == 20 and html.count('<tr class="bid"') == 20
    assert "1,020.00" in html and "1,021.00" not in html  # 20th ask is 1001 + 19
    assert "SIMULATED" in html


def test_tape_newest_first_sides_and_large_trades() -> None:
    trades = (
        trade(100.0, 1.0, "buy", 1_000),
        trade(100.0, 2.0, "sell", 2_000),
        trade(100.0, 1.0, "buy", 3_000),
        trade(101.0, 20.0, "sell", 4_000),  # 2,020 ≥ 5 × median(100, 200, 100, 2020) = 750
    )
    assert large_threshold(trades) == 750.0
    html = tape_html(trades, 2, simulated=False)
    rows = re.findall(r'<tr class="(buy|sell)( big)?"><td class="tm">([\d:]+)</td>', html)
    assert rows == [
        ("sell", " big", "00:00:04"),
        ("buy", "", "00:00:03"),
        ("sell", "", "00:00:02"),
        ("buy", "", "00:00:01"),
    ]
    body = html[html.index("<tbody>") :]
    assert "◆ 101.00" in body and body.count("◆") == 1
    assert "2.02k" in html


def test_tape_shows_at_most_50_and_waits_when_empty() -> None:
    trades = tuple(trade(100.0, 1.0, "buy", i) for i in range(80))
    assert tape_html(trades, 2, simulated=False).count('<tr class="buy') == 50
    assert "waiting for trades" in tape_html((), 2, simulated=False)


# -- status -----------------------------------------------------------------------------------


NOW = 1_700_000_000.0  # the snapshot's time, as of which the status bar shows ages


def test_status_html_live_stale_and_retry() -> None:
    live = FeedStatus(
        "binance",
        state="live",
        msg_rate=12.5,
        last_message_at=NOW - 0.4,
        reconnects=2,
        resyncs=1,
        bad_messages=3,
        detail="streaming",
        stale_after_s=5.0,
    )
    html = status_html(live, NOW)
    assert 'data-state="live" data-stale="0"' in html
    for text in (
        "12.5</b> msg/s",
        "0.4 s</b> ago",
        "reconnects <b>2",
        "resyncs <b>1",
        "bad frames <b>3",
        "streaming",
    ):
        assert text in html
    stale = FeedStatus(
        "binance",
        state="live",
        last_message_at=NOW - 12.0,
        stale_after_s=5.0,
        next_retry_at=NOW + 3.0,
    )
    html = status_html(stale, NOW)
    assert 'class="statusbar stale"' in html and "STALE · last msg 12 s ago" in html
    assert '<span class="chip state bad">● LIVE</span>' in html  # "live" but red: stale
    assert "next retry in <b>3.0 s" in html
    assert "waiting for the feed" in status_html(None, NOW)
    assert "PAUSED" in status_html(live, NOW, paused_at=0.0) and "00:00:00 UTC" in status_html(
        None, NOW, paused_at=0.0
    )


def test_status_html_escapes_details() -> None:
    html = status_html(FeedStatus("binance", state="blocked", detail="<script>x</script>"), NOW)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_is_simulated() -> None:
    assert is_simulated(view(source="simulated"), None)
    assert is_simulated(None, FeedStatus("binance", state="blocked", source="simulated"))
    assert is_simulated(None, FeedStatus("mock", state="simulated"))
    assert not is_simulated(view(), FeedStatus("binance", state="live"))
    assert not is_simulated(None, None)


# -- figure -----------------------------------------------------------------------------------


def test_price_figure_traces_axes_and_labels() -> None:
    arr = series_array((row(1.0, 100.0, 101.0, 0.5), row(2.0, 100.5, 101.0, -0.25)))
    fig = build_price_figure(arr, exchange="mock", symbol="BTCUSDT", depth=5, simulated=True)
    names = [t.name for t in fig.data]
    assert names == ["ask", "bid", "mid", "spread bps", "imbalance 5"]
    assert fig.data[0].x.tolist() == [1000.0, 2000.0]  # ms since the epoch on a date axis
    assert fig.data[2].y.tolist() == [100.5, 100.75]
    assert fig.data[4].y.tolist() == [0.5, -0.25]
    assert fig.data[4].yaxis == "y3" and fig.data[3].yaxis == "y2"
    assert fig.layout.uirevision == "mock:BTCUSDT"
    assert fig.layout.xaxis.type == "date"
    assert "SIMULATED" in fig.layout.title.text
    assert "SIMULATED" not in chart_title("BTCUSDT", "binance", False)


def test_price_figure_downsamples_and_waits_for_data() -> None:
    arr = series_array(
        tuple(
            row(float(i), 100.0 + math.sin(i / 9), 101.0 + math.sin(i / 9)) for i in range(20_000)
        )
    )
    fig = build_price_figure(arr, exchange="mock", symbol="BTCUSDT", depth=5, simulated=False)
    assert 1_000 < len(fig.data[0].x) <= 2_000
    empty = build_price_figure(
        series_array(()), exchange="mock", symbol="X", depth=5, simulated=False
    )
    assert empty.layout.annotations[0].text == "waiting for data…"


# -- the page (AppTest) -----------------------------------------------------------------------


def test_page_renders_every_part_on_the_simulated_feed(page: AppTest) -> None:
    page.run()
    worker = running_worker()
    assert worker.settings.exchange == "mock" and worker.settings.symbols == ("BTCUSDT", "ETHUSDT")
    wait_for_history(worker)
    page.run()
    assert not page.exception
    assert not page.error

    status = html_of(page, 'class="statusbar')
    assert 'data-state="simulated"' in status and "msg/s" in status and "resyncs" in status
    assert html_of(page, "simbanner") == SIMULATED_BANNER

    assert [c.label for c in cards_of(page)] == [*BOOK_CARDS, *SESSION_CARDS]
    for m in cards_of(page):
        assert m.value != "—"
    assert page.segmented_control(key="chart_view").value == "Price"
    assert page.button(key="reset-mock-BTCUSDT").label == "Reset session"

    charts = page.get("plotly_chart")
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.spec)
    assert spec["layout"]["uirevision"] == "mock:BTCUSDT"
    assert "SIMULATED" in spec["layout"]["title"]["text"]
    assert [t["name"] for t in spec["data"]][:3] == ["ask", "bid", "mid"]

    ladder = html_of(page, 'class="ladder"')
    assert ladder.count('<tr class="ask"') == 20 and ladder.count('<tr class="bid"') == 20
    assert "SIMULATED" in ladder
    tape = html_of(page, 'class="tape"')
    rows = len(re.findall(r'<tr class="(?:buy|sell)', tape))
    assert 1 <= rows <= 50
    assert "WHALE ALERTS" in html_of(page, 'class="alerts"')
    assert "render " in html_of(page, 'class="footer"')


def test_cards_ladder_and_tape_show_the_store_values(page: AppTest) -> None:
    page.run()
    worker = running_worker()
    wait_for_history(worker)
    worker.stop()  # freeze the store: the page and this test now read the same numbers
    snap = worker.store.snapshot(markets=[MARKET], max_trades=50)
    v = snap.markets[MARKET]
    page.run()
    assert not page.exception

    tob = top_of_book(v.bids, v.asks)
    decimals = price_decimals(tob.mid)
    assert decimals == 2  # BTC near 65,000: the mock's tick is 1.0
    cards = card_map(page)
    assert cards["Best bid"].value == fmt_price(tob.best_bid, 2)
    assert cards["Best ask"].value == fmt_price(tob.best_ask, 2)
    assert cards["Mid"].value == fmt_price(tob.mid, 2)
    assert cards["Spread"].value == fmt_price(tob.spread, 2)
    assert cards["Spread (bps)"].value == fmt_bps(tob.spread_bps)
    assert cards["Imbalance (top 5)"].value == fmt_imbalance(imbalance(v.bids, v.asks, 5))
    # and read back as numbers, independently of the helpers
    assert float(cards["Best bid"].value.replace(",", "")) == tob.best_bid
    assert re.fullmatch(r"\d{2},\d{3}\.\d{2}", cards["Best ask"].value)

    # delta: vs the last series point at least 1 s older than the newest one
    t = [r[0] for r in v.series]
    ref = max(i for i in range(len(t)) if t[i] <= t[-1] - 1.0)
    want = fmt_signed(tob.best_bid - v.series[ref][COL["best_bid"]], 2)  # type: ignore[operator]
    assert cards["Best bid"].delta == want

    ladder = html_of(page, 'class="ladder"')
    first_bid = re.search(r'<tr class="bid"[^>]*><td class="px">([\d,.]+)<', ladder)
    assert first_bid is not None and first_bid.group(1) == fmt_price(v.bids[0][0], 2)
    tape = html_of(page, 'class="tape"')
    newest = v.trades[-1]
    first_trade = re.search(
        r'<tr class="(buy|sell)[^"]*"><td class="tm">[\d:]+</td><td class="px">(?:◆ )?([\d,.]+)<',
        tape,
    )
    assert first_trade is not None
    assert first_trade.groups() == (newest.side, fmt_price(newest.price, 2))


def test_invalid_symbol_is_refused_and_the_feed_keeps_running(page: AppTest) -> None:
    page.run()
    worker = running_worker()
    wait_for_history(worker, 0.2)
    before = worker.store.snapshot().statuses["mock"].messages

    page.text_input(key="symbols").input("BTC$USDT").run()

    assert not page.exception
    errors = [e.value for e in page.sidebar.error]
    assert len(errors) == 1
    assert "BTC$USDT" in errors[0] and "only letters, digits and '-'" in errors[0]
    assert "Nothing was changed" in errors[0]
    assert worker.settings.symbols == ("BTCUSDT", "ETHUSDT")
    assert worker.running
    wait_for(
        lambda: worker.store.snapshot().statuses["mock"].messages > before + 20,
        timeout=10.0,
        what="the simulated feed to keep delivering",
    )
    assert set(worker.store.snapshot().markets) == {("mock", "BTCUSDT"), ("mock", "ETHUSDT")}
    assert page.selectbox(key="market").options == ["BTCUSDT · mock", "ETHUSDT · mock"]
    assert len(cards_of(page)) == 10  # the page keeps running


def test_valid_symbols_reconfigure_the_feed(page: AppTest) -> None:
    page.run()
    worker = running_worker()
    page.text_input(key="symbols").input("sol-usdt, btcusdt").run()
    assert not page.sidebar.error
    # the worker feeds the server's defaults first, then what this session added
    assert worker.settings.symbols == ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    assert page.text_input(key="symbols").value == "SOLUSDT, BTCUSDT"
    wait_for(
        lambda: (m := worker.store.snapshot().markets.get(("mock", "SOLUSDT"))) and m.synced,
        timeout=10.0,
        what="the new market",
    )
    page.selectbox(key="market").select(("mock", "SOLUSDT")).run()
    assert page.selectbox(key="market").options == ["SOLUSDT · mock", "BTCUSDT · mock"]
    assert "ORDER BOOK · SOLUSDT" in html_of(page, 'class="ladder"')
    # ETHUSDT is a default (MARKET_SYMBOLS): still fed, though this session no longer shows it
    assert ("mock", "ETHUSDT") in worker.store.snapshot().markets


def test_no_exchange_is_refused(page: AppTest) -> None:
    page.run()
    worker = running_worker()
    page.multiselect(key="exchanges").unselect("mock").run()
    assert not page.exception
    errors = [e.value for e in page.sidebar.error]
    assert errors == [
        "Choose at least one exchange. Nothing was changed: you keep watching "
        "mock · BTCUSDT, ETHUSDT."
    ]
    assert page.multiselect(key="exchanges").value == ["mock"]
    assert worker.settings.exchanges == ("mock",)
    assert worker.running


@pytest.fixture
def no_exchange_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens on port 9: the real feeds can only fail and retry, never reach the net."""
    for name in ("BINANCE_WS_URL", "BYBIT_WS_URL", "HYPERLIQUID_WS_URL"):
        monkeypatch.setenv(name, "ws://127.0.0.1:9")
    monkeypatch.setenv("BINANCE_REST_URL", "http://127.0.0.1:9")


@pytest.mark.usefixtures("no_exchange_reachable")
def test_switching_exchange_shows_the_new_feed_state(page: AppTest) -> None:
    page.run()
    worker = running_worker()
    page.multiselect(key="exchanges").unselect("mock").select("binance").run()
    assert not page.exception and not page.sidebar.error
    assert worker.settings.exchanges == ("mock", "binance")  # mock: the server's default
    wait_for(
        lambda: (s := worker.store.snapshot().statuses.get("binance")) and s.reconnects >= 1,
        timeout=15.0,
        what="the Binance feed to fail over to reconnecting",
    )
    page.run()
    assert page.selectbox(key="market").options == ["BTCUSDT · binance", "ETHUSDT · binance"]
    status = html_of(page, 'class="statusbar')
    assert 'data-state="reconnecting"' in status or 'data-state="connecting"' in status
    assert "next retry in" in status or "connecting" in status
    assert len(cards_of(page)) == 0  # no book: no numbers
    notices = [h.value for h in page.html if h.value.startswith('<div class="notice')]
    assert notices, "the page must say why there are no numbers"
    assert not [h for h in page.html if h.value.startswith('<div class="simbanner"')]


@pytest.mark.usefixtures("no_exchange_reachable")
def test_two_exchanges_list_every_market_pair(page: AppTest) -> None:
    """mock and an unreachable Binance at once: the Market select lists each symbol on each
    exchange; the simulated markets keep their numbers, the Binance ones say why they have
    none."""
    page.run()
    worker = running_worker()
    page.multiselect(key="exchanges").select("binance").run()
    assert not page.exception and not page.sidebar.error
    assert worker.settings.exchanges == ("mock", "binance")
    assert page.selectbox(key="market").options == [
        "BTCUSDT · mock",
        "BTCUSDT · binance",
        "ETHUSDT · mock",
        "ETHUSDT · binance",
    ]
    wait_for_history(worker, 0.2)
    page.run()
    assert len(cards_of(page)) == 10  # mock · BTCUSDT, the first pair, still has its numbers
    page.selectbox(key="market").select(("binance", "ETHUSDT")).run()
    assert not page.exception
    assert len(cards_of(page)) == 0
    status = html_of(page, 'class="statusbar')
    assert "binance" in status and 'data-state="simulated"' not in status


def test_unsynced_book_shows_why_instead_of_numbers(page: AppTest) -> None:
    page.run()
    worker = running_worker()
    wait_for_history(worker, 0.2)
    worker.stop()
    worker.store.mark_unsynced("mock", "BTCUSDT", "resyncing: update id jumped")
    page.run()
    assert not page.exception
    # the session's trade figures stay (they come from trades, not from the book)
    assert [c.label for c in cards_of(page)] == SESSION_CARDS
    notices = [h.value for h in page.html if h.value.startswith('<div class="notice')]
    assert any("order book not synced — resyncing: update id jumped" in n for n in notices)
    assert not [h for h in page.html if h.value.startswith('<div class="ladder"')]
    assert len(page.get("plotly_chart")) == 1  # the history is still drawn


def test_depth_and_pause_choices(page: AppTest) -> None:
    page.run()
    wait_for_history(running_worker(), 0.2)
    page.selectbox(key="depth").select(20).run()
    assert [c.label for c in cards_of(page)][5] == "Imbalance (top 20)"
    page.toggle(key="paused").set_value(True).run()
    assert "PAUSED · display frozen at" in html_of(page, 'class="statusbar')
    assert "paused" in html_of(page, 'class="footer"')


def panel_on_empty_store() -> None:
    """An AppTest script: the live panel over a store that has heard nothing yet."""
    from app.components.dashboard import live_panel
    from app.components.sidebar import Prefs
    from market.store import MarketStore

    live_panel(MarketStore(), Prefs("binance", "BTCUSDT", 5, "5 min", False))


def test_no_data_yet_says_waiting() -> None:
    at = AppTest.from_function(panel_on_empty_store, default_timeout=RUN_TIMEOUT).run()
    assert not at.exception
    texts = " ".join(h.value for h in at.html)
    assert "waiting for the feed to report" in texts
    assert "Waiting for data: BTCUSDT on binance" in texts
    assert len(cards_of(at)) == 0
