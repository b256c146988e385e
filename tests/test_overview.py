"""The Overview page: rows, order and movers from a store filled by hand, with exact values;
the fragment through AppTest over that store; the real page (navigation included) on the
simulated feed."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.components.overview import count_html, fmt_change, fmt_px, movers_html, unsynced_html
from app.components.overview_data import (
    DEFAULT_SORT,
    SORTS,
    OverviewRow,
    market_row,
    movers,
    overview_frame,
    overview_rows,
    sort_rows,
)
from app.components.selection import Selection
from app.components.status import SIMULATED_BANNER
from app.runtime import get_worker
from market.events import FeedStatus, Ticker, Trade
from market.store import MarketStore
from market.views import MarketKey, MarketView
from tests.conftest import wait_for
from tests.helpers.cards_html import cards_of

ROOT = Path(__file__).resolve().parent.parent
MAIN = str(ROOT / "app" / "main.py")
RUN_TIMEOUT = 30.0
T = 1_700_000_000.0

# (exchange, symbol, 24 h change %, 24 h quote volume) of the simulated markets that only
# have a ticker (no book yet)
MOCK_TICKERS = (
    ("DOGEUSDT", 2.5, 5.0e7),
    ("XRPUSDT", -9.0, 9.0e7),
    ("ADAUSDT", 0.0, 1.0e6),
    ("LTCUSDT", 0.4, 3.0e7),
    ("DOTUSDT", -0.1, 2.0e7),
    ("LINKUSDT", 1.0, 4.0e7),
    ("AVAXUSDT", -3.0, 6.0e7),
    ("TRXUSDT", 0.1, 1.0e7),
)
WATCHED: list[MarketKey] = [
    ("binance", "BTCUSDT"),
    ("bybit", "ETHUSDT"),
    ("mock", "SOLUSDT"),
    ("hyperliquid", "BTCUSDT"),  # watched, never heard of: a row of "—"
    ("binance", "ETHUSDT"),
    *(("mock", symbol) for symbol, _, _ in MOCK_TICKERS),
]


def filled_store() -> MarketStore:
    """Four venues in four situations, and eight simulated markets with a ticker only."""
    store = MarketStore(clock=lambda: T + 1.0)
    # binance: live, synced books; BTC with a full ticker (its bid/ask differ from the book's)
    store.set_status(FeedStatus("binance", state="live", stale_after_s=30.0, last_message_at=T))
    store.update_book("binance", "BTCUSDT", ((63_999.5, 1.0),), ((64_000.5, 2.0),), 7, T)
    store.update_ticker(
        "binance",
        "BTCUSDT",
        Ticker(
            "binance",
            "BTCUSDT",
            last=64_000.0,
            change_pct=2.5,
            volume=12_000.0,
            quote_volume=7.8e8,
            high=66_000.0,
            low=62_500.0,
            bid=63_990.0,
            ask=64_010.0,
        ),
    )
    store.update_book("binance", "ETHUSDT", ((3_200.0, 1.0),), ((3_200.5, 1.0),), 3, T)
    store.update_ticker("binance", "ETHUSDT", Ticker("binance", "ETHUSDT", last=3_201.0))
    # bybit: live, but this book is being rebuilt; the ticker has no quote volume
    store.set_status(FeedStatus("bybit", state="live", stale_after_s=30.0, last_message_at=T))
    store.mark_unsynced("bybit", "ETHUSDT", "resyncing: update id jumped")
    store.update_ticker(
        "bybit",
        "ETHUSDT",
        Ticker(
            "bybit",
            "ETHUSDT",
            last=3_200.0,
            change_pct=-1.25,
            volume=5_000.0,
            high=3_300.0,
            low=3_100.0,
            bid=3_199.5,
            ask=3_200.5,
        ),
    )
    # mock: simulated
    store.set_status(FeedStatus("mock", state="simulated", source="simulated", last_message_at=T))
    store.reset_market("mock", "SOLUSDT", "simulated", "waiting for the first book")
    store.update_book("mock", "SOLUSDT", ((159.5, 3.0),), ((160.5, 4.0),), 2, T)
    store.add_trades("mock", "SOLUSDT", [Trade("mock", "SOLUSDT", 160.5, 1.0, "buy", 1)])
    store.update_ticker(
        "mock",
        "SOLUSDT",
        Ticker(
            "mock",
            "SOLUSDT",
            last=160.5,
            change_pct=7.5,
            volume=1.25e6,
            quote_volume=2.0e8,
            high=161.0,
            low=149.0,
            bid=159.5,
            ask=160.5,
        ),
    )
    for symbol, change, quote in MOCK_TICKERS:
        store.reset_market("mock", symbol, "simulated", "waiting for the first book")
        store.update_ticker(
            "mock", symbol, Ticker("mock", symbol, last=1.0, change_pct=change, quote_volume=quote)
        )
    return store


def keys(rows: list[OverviewRow]) -> list[tuple[str, str]]:
    return [(r.symbol, r.exchange) for r in rows]


@pytest.fixture
def rows() -> list[OverviewRow]:
    return overview_rows(filled_store().snapshot(series=False, max_trades=1), WATCHED)


# -- rows -------------------------------------------------------------------------------------


def test_rows_have_exact_values(rows: list[OverviewRow]) -> None:
    assert [(r.exchange, r.symbol) for r in rows] == WATCHED  # one row per watched market
    by_key = {(r.exchange, r.symbol): r for r in rows}
    # book synced: bid, ask and spread from the book (63,999.5 / 64,000.5: 1 / 64,000 = 0.15625)
    assert by_key["binance", "BTCUSDT"] == OverviewRow(
        exchange="binance",
        symbol="BTCUSDT",
        source="live",
        last=64_000.0,
        change_pct=2.5,
        volume=7.8e8,
        volume_is_quote=True,
        high=66_000.0,
        low=62_500.0,
        bid=63_999.5,
        ask=64_000.5,
        spread_bps=0.15625,
        feed="live",
        feed_class="ok",
        spark=(64_000.0,),
    )
    # book not synced: bid and ask from the ticker (1 / 3,200 = 3.125 bps); base volume only
    assert by_key["bybit", "ETHUSDT"] == OverviewRow(
        exchange="bybit",
        symbol="ETHUSDT",
        source="live",
        last=3_200.0,
        change_pct=-1.25,
        volume=5_000.0,
        volume_is_quote=False,
        high=3_300.0,
        low=3_100.0,
        bid=3_199.5,
        ask=3_200.5,
        spread_bps=3.125,
        feed="live · unsynced: resyncing: update id jumped",
        feed_class="warn",
        spark=(3_200.0,),
        unsynced="resyncing: update id jumped",
    )
    assert by_key["mock", "SOLUSDT"] == OverviewRow(
        exchange="mock",
        symbol="SOLUSDT",
        source="SIMULATED",
        last=160.5,
        change_pct=7.5,
        volume=2.0e8,
        volume_is_quote=True,
        high=161.0,
        low=149.0,
        bid=159.5,
        ask=160.5,
        spread_bps=62.5,
        feed="simulated",
        feed_class="sim",
        spark=(160.5, 160.5),
    )
    assert by_key["hyperliquid", "BTCUSDT"] == OverviewRow(
        exchange="hyperliquid",
        symbol="BTCUSDT",
        source="live",
        last=None,
        change_pct=None,
        volume=None,
        volume_is_quote=False,
        high=None,
        low=None,
        bid=None,
        ask=None,
        spread_bps=None,
        feed="waiting",
        feed_class="warn",
        spark=(),
    )
    eth = by_key["binance", "ETHUSDT"]  # a ticker with the last price only
    assert (eth.last, eth.change_pct, eth.volume, eth.high, eth.low) == (3_201.0,) + (None,) * 4
    assert (eth.bid, eth.ask) == (3_200.0, 3_200.5)
    doge = by_key["mock", "DOGEUSDT"]
    assert (doge.source, doge.bid, doge.spread_bps) == ("SIMULATED", None, None)
    assert doge.feed == "simulated · unsynced: waiting for the first book"


def test_last_trade_stands_in_for_an_unknown_last_price() -> None:
    store = MarketStore(clock=lambda: T)
    store.update_book("bybit", "BTCUSDT", ((100.0, 1.0),), ((101.0, 1.0),), 1, T)
    store.add_trades("bybit", "BTCUSDT", [Trade("bybit", "BTCUSDT", 100.5, 2.0, "sell", 1)])
    snap = store.snapshot(series=False, max_trades=1)
    row = market_row(("bybit", "BTCUSDT"), snap.markets["bybit", "BTCUSDT"], None, T)
    assert (row.last, row.change_pct, row.feed) == (100.5, None, "waiting")


LIVE = FeedStatus("x", state="live")
STALE = FeedStatus("x", state="live", last_message_at=T - 31.0, stale_after_s=30.0)


@pytest.mark.parametrize(
    ("status", "synced", "feed", "cls", "unsynced"),
    [
        (LIVE, True, "live", "ok", ""),
        (LIVE, False, "live · unsynced: resyncing: gap", "warn", "resyncing: gap"),
        (FeedStatus("x", state="simulated", source="simulated"), True, "simulated", "sim", ""),
        (STALE, True, "live · STALE", "bad", ""),
        (STALE, False, "live · STALE", "bad", ""),
        # the exchange is down: the cell says so, its status bar says why
        (FeedStatus("x", state="blocked", detail="HTTP 451"), False, "blocked", "bad", ""),
        (FeedStatus("x", state="reconnecting"), False, "reconnecting", "warn", ""),
        (FeedStatus("x", state="connecting"), True, "connecting", "warn", ""),
        (FeedStatus("x", state="blocked", source="simulated"), True, "blocked", "bad", ""),
        (None, True, "waiting", "warn", ""),
    ],
)  # fmt: skip
def test_feed_column(
    status: FeedStatus | None, synced: bool, feed: str, cls: str, unsynced: str
) -> None:
    view = MarketView(
        exchange="x", symbol="S", source="live", bids=((1.0, 1.0),), asks=((2.0, 1.0),),
        update_id=1, updated_at=T, synced=synced, detail="" if synced else "resyncing: gap",
        book_updates=1, series=(), trades=(), trades_seen=0, resyncs=0,
    )  # fmt: skip
    row = market_row(("x", "S"), view, status, T)
    assert (row.feed, row.feed_class, row.unsynced) == (feed, cls, unsynced)
    assert row.simulated is (status is not None and status.source == "simulated")
    assert (row.bid is None) is not synced  # no ticker: prices only from a synced book
    nothing = market_row(("x", "S"), None, LIVE, T)
    assert (nothing.feed, nothing.feed_class) == ("live · no data yet", "warn")


def test_unsynced_notice_lists_the_reasons(rows: list[OverviewRow]) -> None:
    html = unsynced_html(rows)
    assert html.startswith('<div class="notice unsynced" data-markets="9">')
    assert "Order book not synced (9): ETHUSDT · bybit: resyncing: update id jumped; " in html
    assert "DOGEUSDT · mock: waiting for the first book" in html
    assert html.count("waiting for the first book") == 7 and "; and 1 more." in html
    assert unsynced_html([r for r in rows if not r.unsynced]) == ""


def test_crossed_ticker_quotes_give_no_spread() -> None:
    store = MarketStore(clock=lambda: T)
    store.update_ticker("bybit", "X", Ticker("bybit", "X", bid=10.0, ask=9.0))
    snap = store.snapshot(series=False, max_trades=1)
    row = market_row(("bybit", "X"), snap.markets["bybit", "X"], None, T)
    assert (row.bid, row.ask, row.spread_bps) == (10.0, 9.0, None)


# -- order and movers -------------------------------------------------------------------------


def test_sort_orders_exact(rows: list[OverviewRow]) -> None:
    unknown_last = [("BTCUSDT", "hyperliquid"), ("ETHUSDT", "binance")]
    assert keys(sort_rows(rows, DEFAULT_SORT)) == [
        ("BTCUSDT", "binance"),  # 780 M
        ("SOLUSDT", "mock"),  # 200 M
        ("XRPUSDT", "mock"),
        ("AVAXUSDT", "mock"),
        ("DOGEUSDT", "mock"),
        ("LINKUSDT", "mock"),
        ("LTCUSDT", "mock"),
        ("DOTUSDT", "mock"),
        ("TRXUSDT", "mock"),
        ("ADAUSDT", "mock"),  # 1 M
        ("ETHUSDT", "bybit"),  # 5,000 base units: the venue gave no quote volume
        *unknown_last,
    ]
    gainers_first = [
        ("SOLUSDT", "mock"),  # +7.5
        ("BTCUSDT", "binance"),  # +2.5, tied with DOGE: by symbol
        ("DOGEUSDT", "mock"),
        ("LINKUSDT", "mock"),
        ("LTCUSDT", "mock"),
        ("TRXUSDT", "mock"),
        ("ADAUSDT", "mock"),  # 0.0
        ("DOTUSDT", "mock"),
        ("ETHUSDT", "bybit"),
        ("AVAXUSDT", "mock"),
        ("XRPUSDT", "mock"),  # -9.0
    ]
    assert keys(sort_rows(rows, "24h change, gainers first")) == gainers_first + unknown_last
    losers_first = gainers_first[::-1]
    losers_first[-3:] = [("BTCUSDT", "binance"), ("DOGEUSDT", "mock"), ("SOLUSDT", "mock")]
    assert keys(sort_rows(rows, "24h change, losers first")) == losers_first + unknown_last
    assert keys(sort_rows(rows, "Spread, tightest first"))[:4] == [
        ("BTCUSDT", "binance"),  # 0.156
        ("ETHUSDT", "binance"),  # 0.5 / 3,200.25 = 1.562
        ("ETHUSDT", "bybit"),  # 3.125
        ("SOLUSDT", "mock"),  # 62.5
    ]
    assert keys(sort_rows(rows, "Symbol"))[:5] == [
        ("ADAUSDT", "mock"),
        ("AVAXUSDT", "mock"),
        ("BTCUSDT", "binance"),
        ("BTCUSDT", "hyperliquid"),
        ("DOGEUSDT", "mock"),
    ]
    by_exchange = keys(sort_rows(rows, "Exchange"))
    assert by_exchange[:4] == [
        ("BTCUSDT", "binance"),
        ("ETHUSDT", "binance"),
        ("ETHUSDT", "bybit"),
        ("BTCUSDT", "hyperliquid"),
    ]
    assert set(SORTS) >= {DEFAULT_SORT, "Symbol", "Exchange"}


def test_movers_top_five_each_way(rows: list[OverviewRow]) -> None:
    gainers, losers = movers(rows)
    assert keys(gainers) == [
        ("SOLUSDT", "mock"),
        ("BTCUSDT", "binance"),
        ("DOGEUSDT", "mock"),
        ("LINKUSDT", "mock"),
        ("LTCUSDT", "mock"),
    ]  # TRX (+0.1) is sixth; ADA (0.0) is neither
    assert keys(losers) == [
        ("XRPUSDT", "mock"),
        ("AVAXUSDT", "mock"),
        ("ETHUSDT", "bybit"),
        ("DOTUSDT", "mock"),
    ]  # only four markets fell


def movers_in(html: str) -> list[list[tuple[str, str, str, str]]]:
    """(symbol, exchange, last, change) of each mover panel, top to bottom."""
    panels = html.split('<div class="moverbox ')[1:]
    pattern = (
        r'<td class="sym">([^ ]+) <span class="ex">([^<]+)</span>.*?</td>'
        r'<td class="px">([^<]+)</td><td class="chg">([^<]+)</td>'
    )
    return [re.findall(pattern, panel) for panel in panels]


def test_movers_html_exact(rows: list[OverviewRow]) -> None:
    html = movers_html(*movers(rows))
    gainers, losers = movers_in(html)
    assert gainers == [
        ("SOLUSDT", "mock", "160.50", "+7.50 %"),
        ("BTCUSDT", "binance", "64,000.00", "+2.50 %"),
        ("DOGEUSDT", "mock", "1.0000", "+2.50 %"),
        ("LINKUSDT", "mock", "1.0000", "+1.00 %"),
        ("LTCUSDT", "mock", "1.0000", "+0.40 %"),
    ]
    assert losers == [
        ("XRPUSDT", "mock", "1.0000", "-9.00 %"),
        ("AVAXUSDT", "mock", "1.0000", "-3.00 %"),
        ("ETHUSDT", "bybit", "3,200.00", "-1.25 %"),
        ("DOTUSDT", "mock", "1.0000", "-0.10 %"),
    ]
    assert html.count('<tr class="up">') == 5 and html.count('<tr class="down">') == 4
    assert "TOP GAINERS" in html and "TOP LOSERS" in html
    assert html.count("SIMULATED") == 2  # both panels hold a simulated market
    empty = movers_html([], [])
    assert "no market is up (yet)" in empty and "no market is down (yet)" in empty
    assert "SIMULATED" not in empty


def test_formatters_and_count() -> None:
    assert fmt_change(1.5) == "+1.50 %"
    assert fmt_change(-0.004) == "-0.00 %"
    assert fmt_change(None) == "—" and fmt_change(math.nan) == "—"
    assert fmt_px(64_000.0) == "64,000.00"
    assert fmt_px(0.000012345) == "0.000012345"
    assert fmt_px(None) == "—"
    store = MarketStore(clock=lambda: T)
    store.set_status(FeedStatus("mock", state="simulated", source="simulated"))
    one = overview_rows(store.snapshot(series=False), [("mock", "BTCUSDT")])
    assert count_html(one, ["mock"]) == (
        '<div class="ovcount" data-markets="1"><b>1 market</b> · 1 exchange (mock) · '
        '<span class="simtag">1 SIMULATED</span></div>'
    )


def test_frame_keeps_numbers_and_unknown_is_nan(rows: list[OverviewRow]) -> None:
    frame = overview_frame(rows)
    assert list(frame.columns) == [
        "Symbol", "Exchange", "Source", "Last hour", "Last", "24h %", "24h range",
        "24h volume", "24h high", "24h low", "Bid", "Ask", "Spread (bps)", "Feed",
    ]  # fmt: skip
    assert len(frame) == len(WATCHED)
    assert frame.loc[0, "Last"] == 64_000.0 and frame.loc[0, "Spread (bps)"] == 0.15625
    assert frame.loc[0, "24h range"] == (64_000.0 - 62_500.0) / (66_000.0 - 62_500.0) * 100
    assert frame.loc[0, "Last hour"] == [64_000.0]  # no trade yet: the last price alone
    assert frame["24h %"].dtype == "float64" and frame["24h range"].dtype == "float64"
    hyper = frame.loc[3]
    assert hyper["Symbol"] == "BTCUSDT" and hyper["Exchange"] == "hyperliquid"
    assert all(math.isnan(hyper[c]) for c in ("Last", "24h %", "24h volume", "Bid", "Spread (bps)"))
    assert math.isnan(hyper["24h range"]) and hyper["Last hour"] == []


def test_the_sparkline_is_the_last_hour_one_point_a_minute() -> None:
    store = MarketStore(clock=lambda: T)
    store.set_status(FeedStatus("mock", state="simulated", source="simulated", last_message_at=T))
    minute = 60_000
    t0 = int(T * 1000) - 90 * minute
    trades = [
        Trade("mock", "BTCUSDT", 100.0 + i, 1.0, "buy", t0 + i * minute + 5) for i in range(90)
    ]
    store.add_trades("mock", "BTCUSDT", trades)
    store.update_ticker("mock", "BTCUSDT", Ticker("mock", "BTCUSDT", last=200.123456, low=90.0,
                                                  high=210.0))  # fmt: skip
    (row,) = overview_rows(store.snapshot(series=False, max_trades=1), [("mock", "BTCUSDT")])
    assert row.spark == (*tuple(100.0 + i for i in range(31, 90)), 200.123456)
    assert len(row.spark) == 60
    assert row.range_pct == (200.123456 - 90.0) / 120.0 * 100
    frame = overview_frame([row])
    assert frame.loc[0, "Last hour"][-1] == 200.12  # rounded as the price cells are
    assert frame.loc[0, "Last"] == 200.12
    outside = market_row(("mock", "X"), None, None, T)
    assert outside.range_pct is None and outside.spark == ()


def test_range_is_clipped_and_unknown_without_a_range() -> None:
    base = market_row(("mock", "X"), None, None, T)
    fields = {f: getattr(base, f) for f in OverviewRow.__slots__}  # type: ignore[attr-defined]
    above = OverviewRow(**{**fields, "last": 12.0, "low": 8.0, "high": 11.0})
    flat = OverviewRow(**{**fields, "last": 10.0, "low": 10.0, "high": 10.0})
    assert above.range_pct == 100.0 and flat.range_pct is None


# -- the fragment through AppTest -------------------------------------------------------------


def overview_script(store: object, watched: object) -> None:
    """An AppTest script: the overview fragment over a store the test filled."""
    from app.components.overview import overview_panel

    overview_panel(store, lambda: watched)


def column_config(at: AppTest) -> dict[str, dict[str, object]]:
    """The ``column_config`` the table was sent with, by column."""
    config: dict[str, dict[str, object]] = json.loads(at.dataframe[0].proto.columns)
    return config


def test_overview_fragment_shows_the_store(rows: list[OverviewRow]) -> None:
    at = AppTest.from_function(
        overview_script, args=(filled_store(), WATCHED), default_timeout=RUN_TIMEOUT
    ).run()
    assert not at.exception
    htmls = [h.value for h in at.html]
    assert 'data-markets="13"><b>13 markets</b> · 4 exchanges' in " ".join(htmls)
    assert SIMULATED_BANNER in htmls
    notices = [h for h in htmls if h.startswith('<div class="notice')]
    assert notices == [unsynced_html(sort_rows(rows, DEFAULT_SORT))]  # in the table's order
    statuses = next(h for h in htmls if h.startswith('<div class="statusbars">'))
    assert statuses.count('<div class="statusbar ') == 4  # binance, bybit, mock, hyperliquid
    assert '<span class="chip state warn">waiting</span><span class="chip">hyperliquid' in statuses
    movers_panel = next(h for h in htmls if h.startswith('<div class="movers">'))
    assert [m[0] for m in movers_in(movers_panel)[0]] == [
        "SOLUSDT", "BTCUSDT", "DOGEUSDT", "LINKUSDT", "LTCUSDT",
    ]  # fmt: skip

    table = at.dataframe[0].value
    expected = keys(sort_rows(rows, DEFAULT_SORT))
    assert list(zip(table["Symbol"], table["Exchange"], strict=True)) == expected
    first = table.iloc[0].tolist()
    assert first[:3] == ["BTCUSDT", "binance", "live"] and list(first[3]) == [64_000.0]
    assert first[4:] == [
        64_000.0, 2.5, 1500 / 3500 * 100, 7.8e8, 66_000.0, 62_500.0, 63_999.5, 64_000.5,
        0.15625, "live",
    ]  # fmt: skip
    sol = table.iloc[expected.index(("SOLUSDT", "mock"))]
    assert list(sol["Last hour"]) == [160.5, 160.5]  # the one trade's candle, then the last
    assert sol["Source"] == "SIMULATED" and sol["24h range"] == 11.5 / 12 * 100
    eth_bybit = table.iloc[expected.index(("ETHUSDT", "bybit"))]
    assert eth_bybit["Feed"] == "live · unsynced: resyncing: update id jumped"
    hyper = table.iloc[expected.index(("BTCUSDT", "hyperliquid"))]
    assert list(hyper["Last hour"]) == [] and hyper["Feed"] == "waiting"
    assert all(math.isnan(hyper[c]) for c in ("Last", "24h %", "24h range", "Bid", "Ask"))
    sources = dict(zip(zip(table["Symbol"], table["Exchange"], strict=True), table["Source"],
                       strict=True))  # fmt: skip
    assert {k for k, v in sources.items() if v == "SIMULATED"} == {
        k[::-1] for k in WATCHED if k[0] == "mock"
    }

    # how the browser draws it: a sparkline, a range bar, formats; unknown as "—"
    config = column_config(at)
    assert config["Last hour"]["type_config"] == {"type": "line_chart", "color": "auto"}
    assert config["24h range"]["type_config"] == {
        "type": "progress", "format": "%.0f %%", "min_value": 0.0, "max_value": 100.0,
    }  # fmt: skip
    assert config["24h %"]["type_config"] == {"type": "number", "format": "%+.2f %%"}
    assert config["24h volume"]["type_config"] == {"type": "number", "format": "compact"}
    assert config["Spread (bps)"]["type_config"] == {"type": "number", "format": "%.2f"}
    assert at.dataframe[0].proto.placeholder == "—"

    at.selectbox(key="overview_sort").select("24h change, losers first").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["Symbol"])[:4] == ["XRPUSDT", "AVAXUSDT", "ETHUSDT", "DOTUSDT"]
    assert list(table["Symbol"])[-2:] == ["BTCUSDT", "ETHUSDT"]  # unknown change: last


def test_overview_fragment_without_markets() -> None:
    at = AppTest.from_function(
        overview_script, args=(MarketStore(), []), default_timeout=RUN_TIMEOUT
    ).run()
    assert not at.exception
    assert "No market is watched" in " ".join(h.value for h in at.html)
    assert len(at.dataframe) == 0


# -- the real page: navigation, the simulated feed --------------------------------------------


PAGE_SYMBOLS = "BTCUSDT,ETHUSDT,SOLUSDT"  # the page fixture (conftest.py) watches these


def test_overview_page_matches_the_store(page: AppTest) -> None:
    page.run()
    worker = get_worker()
    page.switch_page("views/overview.py").run()
    assert not page.exception
    assert len(cards_of(page)) == 0  # not the Market page
    wait_for(
        lambda: all(
            (v := worker.store.snapshot(series=False).markets.get(k)) is not None
            and v.ticker is not None
            and v.synced
            and v.trades_seen > 0
            for k in Selection(worker.settings.exchanges, worker.settings.symbols).markets()
        ),
        timeout=20.0,
        what="a book, a trade and a ticker for every simulated market",
    )
    worker.stop()  # freeze the store: the page and this test now read the same numbers
    snap = worker.store.snapshot(series=False, max_trades=1)
    page.run()
    assert not page.exception
    watched = Selection(worker.settings.exchanges, worker.settings.symbols).markets()
    rows = sort_rows(overview_rows(snap, watched), DEFAULT_SORT)
    table = page.dataframe[0].value
    want = overview_frame(rows)
    numbers = ["Last hour", "Feed"]
    assert table.drop(columns=numbers).values.tolist() == want.drop(columns=numbers).values.tolist()
    assert [list(s) for s in table["Last hour"]] == list(want["Last hour"])
    assert all(len(s) >= 1 for s in want["Last hour"])
    assert list(table["Feed"]) == ["stopped"] * 3  # the worker was stopped above
    assert all(r.source == "SIMULATED" and r.change_pct is not None for r in rows)
    assert SIMULATED_BANNER in [h.value for h in page.html]
    assert 'data-markets="3"' in " ".join(h.value for h in page.html)


def test_navigation_keeps_each_pages_choices(page: AppTest) -> None:
    page.run()
    page.selectbox(key="market").select(("mock", "ETHUSDT")).run()
    page.selectbox(key="depth").select(20).run()
    page.switch_page("views/overview.py").run()
    assert not page.exception
    assert [s.key for s in page.selectbox] == ["overview_sort"]  # the Market view's are gone
    assert [m.key for m in page.multiselect] == ["exchanges"]  # the shared sidebar stays
    page.selectbox(key="overview_sort").select("Symbol").run()
    assert list(page.dataframe[0].value["Symbol"]) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]

    page.switch_page("views/market.py").run()
    assert not page.exception
    assert page.selectbox(key="market").value == ("mock", "ETHUSDT")
    assert page.selectbox(key="depth").value == 20
    assert len(page.dataframe) == 0
    page.switch_page("views/overview.py").run()
    assert page.selectbox(key="overview_sort").value == "Symbol"


def test_pause_freezes_the_overview_too(page: AppTest) -> None:
    page.run()
    page.switch_page("views/overview.py").run()
    page.toggle(key="paused").set_value(True).run()
    assert not page.exception
    htmls = [h.value for h in page.html]
    statuses = next(h for h in htmls if h.startswith('<div class="statusbars">'))
    assert "PAUSED · display frozen at" in statuses
    assert any(h.startswith('<div class="footer">') and "paused" in h for h in htmls)
