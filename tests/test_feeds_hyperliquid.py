"""HyperLiquid adapter: documented frames and the real recordings."""

from __future__ import annotations

import gzip
import json

import orjson
import pytest

from market.errors import BadMessage, InvalidSymbol
from market.events import BookSnapshot, ServerNotice, Ticker, Trade
from market.venues import hyperliquid as hl
from tests.conftest import shared_fixture


def test_greeting_is_not_a_bad_message() -> None:
    assert hl.parse("Websocket connection established.", 0) == []


def test_l2book_is_a_whole_image() -> None:
    frame = {"channel": "l2Book", "data": {"coin": "ETH", "time": 1700000000123, "levels": [
        [{"px": "2000.1", "sz": "1.5", "n": 3}, {"px": "2000.0", "sz": "2", "n": 1}],
        [{"px": "2000.2", "sz": "0.25", "n": 1}],
    ]}}
    assert hl.parse(json.dumps(frame), 9.0) == [
        BookSnapshot("hyperliquid", "ETH", ((2000.1, 1.5), (2000.0, 2.0)), ((2000.2, 0.25),), 1700000000123, 1700000000123, 9.0)
    ]


def test_empty_sides_are_empty_not_errors() -> None:
    frame = {"channel": "l2Book", "data": {"coin": "XYZ", "time": 1, "levels": [[], []]}}
    [event] = hl.parse(json.dumps(frame), 0)
    assert isinstance(event, BookSnapshot) and event.bids == () and event.asks == ()


def test_trades_side_is_the_aggressor() -> None:
    frame = {"channel": "trades", "data": [
        {"coin": "BTC", "side": "B", "px": "100.5", "sz": "0.1", "time": 5, "hash": "0x1", "tid": 77, "users": []},
        {"coin": "BTC", "side": "A", "px": "100.4", "sz": "2", "time": 6, "hash": "0x2", "tid": 12, "users": []},
    ]}
    assert hl.parse(json.dumps(frame), 1.0) == [
        Trade("hyperliquid", "BTC", 100.5, 0.1, "buy", 5, "77", 1.0),
        Trade("hyperliquid", "BTC", 100.4, 2.0, "sell", 6, "12", 1.0),
    ]


def test_replies() -> None:
    assert hl.parse('{"channel":"pong"}', 0) == [ServerNotice("hyperliquid", "pong")]
    sub = '{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"l2Book","coin":"BTC"}}}'
    assert hl.parse(sub, 0) == [ServerNotice("hyperliquid", "subscriptionResponse")]
    err = hl.parse('{"channel":"error","data":"Invalid subscription {\\"type\\":\\"l2Book\\",\\"coin\\":\\"NOPE\\"}"}', 0)
    assert err[0] == ServerNotice(
        "hyperliquid", "error", 'Invalid subscription {"type":"l2Book","coin":"NOPE"}', False
    )


@pytest.mark.parametrize("raw", ["garbage", "[]", '{"channel":"l2Book","data":{"coin":"X"}}',
                                 '{"channel":"trades","data":[{"px":"1"}]}', '{"channel":"mystery"}'])
def test_malformed_frames_raise_bad_message(raw: str) -> None:
    with pytest.raises(BadMessage):
        hl.parse(raw, 0)


def test_symbol_mapping_is_in_one_place() -> None:
    assert [hl.venue_symbol(s) for s in ("BTCUSDT", "btc", "BTC-USD", "ETHUSDC", "SOL-PERP")] == ["BTC", "BTC", "BTC", "ETH", "SOL"]
    with pytest.raises(InvalidSymbol):
        hl.venue_symbol("-")


def test_subscribe_frames() -> None:
    assert orjson.loads(hl.subscribe_frame("l2Book", "BTC")) == {"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC"}}
    assert orjson.loads(hl.subscribe_frame("allMids")) == {"method": "subscribe", "subscription": {"type": "allMids"}}
    assert orjson.loads(hl.subscribe_frame("trades", "ETH", method="unsubscribe"))["method"] == "unsubscribe"


def test_trade_deduper_drops_repeats_and_stays_bounded() -> None:
    dedupe = hl.TradeDeduper(size=3)
    t = lambda tid: Trade("hyperliquid", "BTC", 1.0, 1.0, "buy", 0, str(tid))  # noqa: E731
    assert [x.trade_id for x in dedupe.fresh([t(5), t(3), t(5)])] == ["5", "3"]
    assert [x.trade_id for x in dedupe.fresh([t(3), t(9), t(1)])] == ["9", "1"]
    # only the last 3 ids are remembered: 5 was forgotten
    assert [x.trade_id for x in dedupe.fresh([t(5)])] == ["5"]


@pytest.mark.fixtures
def test_recorded_l2book_and_trades() -> None:
    path = shared_fixture("hftbacktest_hyperliquid_btc_20250126.gz")
    books: list[BookSnapshot] = []
    trade_frames: list[list[Trade]] = []
    raw_books = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            ns, raw = line.rstrip("\n").split(" ", 1)
            events = hl.parse(raw, int(ns) / 1e9)
            msg = json.loads(raw)
            if msg["channel"] == "l2Book":
                books.extend(events)  # type: ignore[arg-type]
                raw_books.append(msg)
            else:
                trade_frames.append(events)  # type: ignore[arg-type]
    assert len(books) == 46 and len(trade_frames) == 9
    assert books[0].bids == books[1].bids and books[0].asks == books[1].asks  # as the README says
    for book, msg in zip(books, raw_books):
        bids, asks = msg["data"]["levels"]
        assert book.bids == tuple((float(x["px"]), float(x["sz"])) for x in bids)
        assert book.asks == tuple((float(x["px"]), float(x["sz"])) for x in asks)
        assert len(book.bids) == len(book.asks) == 20
        assert book.bids[0][0] < book.asks[0][0]
    assert len(trade_frames[0]) == 30  # the replayed history on subscribing
    dedupe = hl.TradeDeduper()
    total = sum(len(dedupe.fresh(f)) for f in trade_frames)
    unique = {t.trade_id for f in trade_frames for t in f}
    assert total == len(unique)


@pytest.mark.fixtures
def test_recorded_all_mids() -> None:
    path = shared_fixture("nautilus_hyperliquid_ws_allmids.json")
    events = hl.parse(path.read_text(), 0)
    assert all(isinstance(e, Ticker) for e in events)
    mids = {e.symbol: e.last for e in events}  # type: ignore[union-attr]
    assert mids["BTC"] == 80868.5 and mids["ETH"] == 2296.45 and len(mids) == 5


def test_active_asset_ctx_gives_24h_change_and_volume() -> None:
    raw = (
        '{"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":{"funding":"0.0000125",'
        '"openInterest":"9000.1","prevDayPx":"100000.0","dayNtlVlm":"1234567.5","premium":"0.0001",'
        '"oraclePx":"102000.0","markPx":"102001.0","midPx":"102000.0","impactPxs":["1","2"],'
        '"dayBaseVlm":"12.5"}}}'
    )
    (t,) = hl.parse(raw, 3.0)
    assert t == Ticker(
        exchange="hyperliquid", symbol="BTC", last=102000.0, change_pct=pytest.approx(2.0),
        volume=12.5, quote_volume=1234567.5, received_at=3.0,
    )
