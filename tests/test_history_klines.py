"""The venues' klines: pure parsers on real (trimmed) answers, and backfills from each loopback
fake's klines endpoint equal the candles of the trades it published; a refusal is a status."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from market.analytics import MINUTE_MS
from market.errors import BadMessage
from market.history.backfill import Backfiller
from market.history.db import Database
from market.venues.base import Kline
from market.venues.binance import BinanceSession
from market.venues.binance import klines_request as binance_request
from market.venues.binance import parse_klines as parse_binance
from market.venues.bybit import category_of as bybit_category
from market.venues.bybit import klines_request as bybit_request
from market.venues.bybit import parse_klines as parse_bybit
from market.venues.hyperliquid import klines_request as hyperliquid_request
from market.venues.hyperliquid import parse_klines as parse_hyperliquid
from market.history.reader import read_rows
from market.history.writer import HistoryWriter
from market.settings import Settings
from market.store import MarketStore
from market.worker import Worker
from tests.conftest import wait_for
from tests.fakes.binance import FakeBinance
from tests.fakes.bybit import FakeBybit
from tests.fakes.hyperliquid import FakeHyperLiquid
from tests.helpers.timing import FAST

BTC = "BTCUSDT"

# -- pure parsers ---------------------------------------------------------------------------

BINANCE = (
    '[[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100","148976.11427815",'
    '1499040059999,"2434.19055334",308,"1756.87402397","28.46694368","0"]]'
)
BYBIT = (
    '{"retCode":0,"retMsg":"OK","result":{"category":"spot","symbol":"BTCUSDT","list":['
    '["1670608860000","17055.5","17060","17050","17058","1.5","25587.75"],'
    '["1670608800000","17071","17073","17027","17055.5","268611","15.74462667"]]},'
    '"retExtInfo":{},"time":1672025956592}'
)
HYPERLIQUID = (
    '[{"t":1681923600000,"T":1681923659999,"s":"BTC","i":"1m","o":"29295.0","c":"29258.0",'
    '"h":"29309.0","l":"29250.0","v":"0.98639","n":189}]'
)


def test_parse_binance() -> None:
    assert parse_binance(BINANCE) == [
        Kline(1499040000000, 0.0163479, 0.8, 0.015758, 0.015771, 148976.11427815,
              2434.19055334, 308, 1756.87402397)
    ]  # fmt: skip
    k = parse_binance(BINANCE)[0]
    assert k.sell_volume == 148976.11427815 - 1756.87402397
    assert k.candle().as_list() == [
        1499040000000,
        0.0163479,
        0.8,
        0.015758,
        0.015771,
        148976.11427815,
        308,
    ]


def test_parse_bybit_oldest_first() -> None:
    assert parse_bybit(BYBIT) == [
        Kline(1670608800000, 17071.0, 17073.0, 17027.0, 17055.5, 268611.0, 15.74462667, None, None),
        Kline(1670608860000, 17055.5, 17060.0, 17050.0, 17058.0, 1.5, 25587.75, None, None),
    ]


def test_parse_hyperliquid() -> None:
    assert parse_hyperliquid(HYPERLIQUID) == [
        Kline(1681923600000, 29295.0, 29309.0, 29250.0, 29258.0, 0.98639, None, 189, None)
    ]
    assert parse_hyperliquid(HYPERLIQUID)[0].candle().notional == 0.0  # VWAP: typical price


@pytest.mark.parametrize(
    ("parse", "raw", "message"),
    [
        (parse_binance, "<html>", "klines: not JSON: '<html>'"),
        (parse_binance, '{"code":-1121}', "klines: expected a list from Binance"),
        (parse_binance, BINANCE.replace('"0.80000000"', '"NaN"'), "klines: bad number 'NaN'"),
        (parse_binance, BINANCE.replace("1499040000000", "1499040000001"), "klines: inconsistent"),
        (
            parse_bybit,
            '{"retCode":10001,"retMsg":"Not supported symbols"}',
            "klines: Bybit refused: 'Not supported symbols'",
        ),
        (parse_hyperliquid, HYPERLIQUID.replace('"n":189', '"n":-1'), "klines: bad trade count"),
        (parse_hyperliquid, HYPERLIQUID.replace('"29250.0"', '"29400.0"'), "klines: inconsistent"),
    ],
)
def test_bad_answers_are_bad_messages(parse: Any, raw: str, message: str) -> None:
    with pytest.raises(BadMessage, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse(raw)


def test_requests() -> None:
    assert binance_request("http://h/", "BTCUSDT", 0).url == (
        "http://h/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=240"
    )
    assert bybit_request("http://h", "BTCUSDT", 0, 2000, "linear").url == (
        "http://h/v5/market/kline?category=linear&symbol=BTCUSDT&interval=1&limit=1000"
    )
    assert bybit_category("wss://stream.bybit.com/v5/public/linear") == "linear"
    r = hyperliquid_request("http://h", "BTC", 1_700_000_030_000, 3)
    assert (r.method, r.url) == ("POST", "http://h/info")
    assert orjson.loads(r.body or b"") == {
        "type": "candleSnapshot",
        "req": {"coin": "BTC", "interval": "1m", "startTime": 1_699_999_860_000,
                "endTime": 1_700_000_030_000},
    }  # fmt: skip


# -- backfills from the loopback fakes equal their truth ---------------------------------


def truth(trades: list[tuple[int, float, float, bool]]) -> list[tuple[Any, ...]]:
    """(open_ms, o, h, l, c, volume, quote volume, trades, buy volume) per minute."""
    out: dict[int, list[Any]] = {}
    for ts, p, q, buy in trades:
        m = ts - ts % MINUTE_MS
        r = out.setdefault(m, [m, p, p, p, p, 0.0, 0.0, 0, 0.0])
        r[2], r[3], r[4] = max(r[2], p), min(r[3], p), p
        r[5] += q
        r[6] += p * q
        r[7] += 1
        r[8] += q if buy else 0.0
    return [tuple(out[m]) for m in sorted(out)]


def as_tuples(klines: list[Kline]) -> list[tuple[Any, ...]]:
    return [(k.open_ms, k.open, k.high, k.low, k.close, k.volume, k.notional, k.trades,
             k.buy_volume) for k in klines]  # fmt: skip


class Sink:
    """A writer stand-in for ``Backfiller.backfill`` alone: keeps what it is handed."""

    def __init__(self) -> None:
        self.got: list[Kline] = []

    def add_venue_candles(self, exchange: str, symbol: str, klines: Sequence[Kline]) -> None:
        self.got.extend(klines)


FILLS = [("100.25", "0.5", True), ("100.5", "0.25", False), ("99.75", "1.0", True)]


@pytest.fixture
def fake_binance() -> Iterator[FakeBinance]:
    with FakeBinance([BTC]) as ex:
        yield ex


def binance_trades(ex: FakeBinance) -> list[tuple[int, float, float, bool]]:
    published = []
    for i, (p, q, buy) in enumerate(FILLS * 2):
        if i == 3:
            with ex._lock:
                ex._event_time += MINUTE_MS
        ex.trade(BTC, p, q, buyer_is_maker=not buy)
        with ex._lock:
            published.append((ex._event_time, float(p), float(q), buy))
    return published


def test_binance_backfill_equals_the_truth(fake_binance: FakeBinance) -> None:
    published = binance_trades(fake_binance)
    sink = Sink()
    filler = Backfiller(sink, {"binance": (fake_binance.rest_url, "")})
    assert filler.backfill("binance", BTC) == 2
    assert as_tuples(sink.got) == truth(published)
    assert filler.done("binance", BTC) == ""


def test_bybit_backfill_equals_the_truth() -> None:
    with FakeBybit([BTC]) as ex:
        sent = ex.trades(BTC, [(p, q, "Buy" if b else "Sell") for p, q, b in FILLS])
        sink = Sink()
        filler = Backfiller(sink, {"bybit": (ex.rest_url, ex.ws_url + "/v5/public/spot")})
        assert filler.backfill("bybit", BTC) == 1
    expected = truth([(t["T"], float(t["p"]), float(t["v"]), t["S"] == "Buy") for t in sent])
    # Bybit reports no trade count and no buy/sell split: stored as unknown
    assert as_tuples(sink.got) == [(*row[:7], None, None) for row in expected]


def test_hyperliquid_backfill_equals_the_truth() -> None:
    with FakeHyperLiquid(["BTC"]) as ex:
        sent = ex.trades("BTC", [(p, q, "B" if b else "A") for p, q, b in FILLS])
        sink = Sink()
        filler = Backfiller(sink, {"hyperliquid": (ex.rest_url, "")})
        assert filler.backfill("hyperliquid", BTC) == 1
    expected = truth([(t["time"], float(t["px"]), float(t["sz"]), t["side"] == "B") for t in sent])
    # HyperLiquid reports no quote volume and no buy/sell split
    assert as_tuples(sink.got) == [(*row[:6], None, row[7], None) for row in expected]


def test_a_refused_backfill_is_a_status_not_a_crash(fake_binance: FakeBinance) -> None:
    fake_binance.refuse(451)
    sink = Sink()
    filler = Backfiller(sink, {"binance": (fake_binance.rest_url, "")})
    assert filler.backfill("binance", BTC) == 0
    assert filler.failures() == [
        "binance BTCUSDT backfill failed: HTTP 451 Unavailable For Legal Reasons"
    ]
    assert sink.got == []
    unreachable = Backfiller(sink, {"hyperliquid": ("http://127.0.0.1:9", "")}, timeout=2)
    assert unreachable.backfill("hyperliquid", BTC) == 0
    assert unreachable.failures()[0].startswith(
        "hyperliquid BTCUSDT backfill failed: request failed:"
    )


@pytest.mark.parametrize(
    ("status", "symbol", "reason"),
    [
        (403, BTC, "HTTP 403 Forbidden"),  # refused for our location, as the runner maps it
        (None, "XYZUSDT", "HTTP 400 Bad Request"),  # another error status
    ],
)
def test_a_refusal_is_mapped_as_the_runners_are(
    fake_binance: FakeBinance, status: int | None, symbol: str, reason: str
) -> None:
    fake_binance.refuse(status)
    sink = Sink()
    filler = Backfiller(sink, {"binance": (fake_binance.rest_url, "")})
    assert filler.backfill("binance", symbol) == 0
    assert filler.failures() == [f"binance {symbol} backfill failed: {reason}"]
    assert sink.got == []


def test_a_body_over_the_venues_cap_is_refused(
    fake_binance: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    binance_trades(fake_binance)  # two candles: ~300 bytes
    monkeypatch.setattr(BinanceSession, "max_rest_bytes", 200)
    sink = Sink()
    filler = Backfiller(sink, {"binance": (fake_binance.rest_url, "")})
    assert filler.backfill("binance", BTC) == 0
    assert filler.failures() == [
        "binance BTCUSDT backfill failed: response over 200 bytes: refused"
    ]
    assert sink.got == []


def test_a_live_market_opens_with_the_venue_candles_stored(
    fake_binance: FakeBinance, tmp_path: Path
) -> None:
    """The venue traded before we started: on start the writer's backfill stores those minutes
    (source 'venue') and the chart's candles begin with them."""
    published = binance_trades(fake_binance)
    url = f"sqlite:///{tmp_path}/h.db"
    settings = Settings(
        exchanges=("binance",), symbols=(BTC,), connection_timeout=5.0, db=url,
    ).with_urls(BINANCE_WS_URL=fake_binance.ws_url, BINANCE_REST_URL=fake_binance.rest_url)
    worker = Worker(settings, MarketStore(), timing=FAST).start()
    writer = HistoryWriter(worker.store, url, interval=0.05)
    writer.backfill = Backfiller(writer, {"binance": (fake_binance.rest_url, "")}).start()
    writer.start()
    try:
        wait_for(
            lambda: writer.backfill and writer.backfill.done("binance", BTC) == "", what="backfill"
        )
        wait_for(
            lambda: writer.status().pending_rows == 0 and writer.status().written_rows,
            what="written",
        )
        joined = writer.joined_candles("binance", BTC, "live", ())
        assert [c.as_list() for c in joined] == [
            [r[0], r[1], r[2], r[3], r[4], r[5], r[7]] for r in truth(published)
        ]
    finally:
        worker.stop()
        writer.stop()
    db = Database(url)
    _, rows = read_rows(db, "candles", "binance", BTC, 0, 2**62)
    db.close()
    assert [(r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11]) for r in rows] == [
        ("venue", *row) for row in truth(published)
    ]
    assert all(r[12] == pytest.approx(r[8] - r[11]) for r in rows)  # sell = volume - buy
