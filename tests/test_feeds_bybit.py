"""Bybit v5 adapter: documented frames and the real recordings, event by event."""

from __future__ import annotations

import json

import orjson
import pytest

from market.book import OrderBook
from market.errors import BadMessage, InvalidSymbol, SequenceGap
from market.events import BookDelta, BookSnapshot, ServerNotice, Ticker, Trade
from market.sync import SequencedSync
from market.venues import bybit
from tests.conftest import shared_fixture

SNAPSHOT = (
    '{"topic":"orderbook.50.ETHUSDT","ts":1700000000000,"type":"snapshot","data":{"s":"ETHUSDT",'
    '"b":[["2000.5","1.5"],["2000.1","2"]],"a":[["2001","0.7"],["2002.25","3"]],"u":41,"seq":9}}'
)


def delta(u: int, b: list[list[str]], a: list[list[str]], kind: str = "delta") -> str:
    return json.dumps({"topic": "orderbook.50.ETHUSDT", "ts": 1700000000100, "type": kind,
                       "data": {"s": "ETHUSDT", "b": b, "a": a, "u": u, "seq": 10}})


def test_snapshot_frame_is_a_whole_book() -> None:
    [event] = bybit.parse(SNAPSHOT, 5.0)
    assert event == BookSnapshot("bybit", "ETHUSDT", ((2000.5, 1.5), (2000.1, 2.0)),
                                 ((2001.0, 0.7), (2002.25, 3.0)), 41, 1700000000000, 5.0)


def test_delta_chains_on_u() -> None:
    [event] = bybit.parse(delta(42, [["2000.5", "0"]], [["2001.5", "1"]]), 1.0)
    assert isinstance(event, BookDelta)
    assert (event.first_id, event.last_id, event.prev_id) == (42, 42, 41)
    assert event.bids == ((2000.5, 0.0),)


def test_delta_with_u_1_is_a_snapshot() -> None:
    [event] = bybit.parse(delta(1, [["10", "1"]], [["11", "1"]]), 1.0)
    assert isinstance(event, BookSnapshot) and event.update_id == 1


def test_sync_applies_deltas_and_a_break_in_u_raises() -> None:
    sync = SequencedSync(OrderBook("ETHUSDT"))
    sync.on_snapshot(bybit.parse(SNAPSHOT, 0)[0])  # type: ignore[arg-type]
    sync.on_delta(bybit.parse(delta(42, [["2000.5", "0"], ["1999", "4"]], [["2003", "1"], ["2500", "0"]]), 0)[0])  # type: ignore[arg-type]
    assert sync.book.top(5) == (((2000.1, 2.0), (1999.0, 4.0)), ((2001.0, 0.7), (2002.25, 3.0), (2003.0, 1.0)))
    with pytest.raises(SequenceGap):
        sync.on_delta(bybit.parse(delta(44, [], []), 0)[0])  # type: ignore[arg-type]
    assert not sync.synced and len(sync.book) == 0


def test_public_trades_side_is_the_taker() -> None:
    frame = {"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts": 1672304486868, "data": [
        {"T": 1672304486865, "s": "BTCUSDT", "S": "Buy", "v": "0.001", "p": "16578.50", "L": "PlusTick", "i": "a1", "BT": False},
        {"T": 1672304486866, "s": "BTCUSDT", "S": "Sell", "v": "2", "p": "16578.00", "L": "MinusTick", "i": "a2", "BT": False},
    ]}
    assert bybit.parse(json.dumps(frame), 3.0) == [
        Trade("bybit", "BTCUSDT", 16578.5, 0.001, "buy", 1672304486865, "a1", 3.0),
        Trade("bybit", "BTCUSDT", 16578.0, 2.0, "sell", 1672304486866, "a2", 3.0),
    ]


def test_acks_and_failures() -> None:
    ok = bybit.parse('{"success":true,"ret_msg":"subscribe","conn_id":"c","req_id":"subscribe-1","op":"subscribe"}', 0)
    assert ok == [ServerNotice("bybit", "subscribe", "subscribe", True, "subscribe-1")]
    bad = bybit.parse('{"success":false,"ret_msg":"Invalid symbol :[orderbook.50.NOPEUSDT]","op":"subscribe","req_id":"s-2"}', 0)
    assert bad == [ServerNotice(
        "bybit", "subscribe", "Invalid symbol :[orderbook.50.NOPEUSDT]", False, "s-2"
    )]
    pong = bybit.parse('{"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}', 0)
    assert pong == [ServerNotice("bybit", "ping", "pong", True, "")]


@pytest.mark.parametrize("raw", ["not json", "[1]", '{"topic":"orderbook.50.X","type":"delta","data":{"s":"X"}}',
                                 '{"topic":"publicTrade.X","data":[{"p":"x"}]}', '{"hello":1}'])
def test_malformed_frames_raise_bad_message(raw: str) -> None:
    with pytest.raises(BadMessage):
        bybit.parse(raw, 0)


def test_subscribe_frames_hold_at_most_ten_args() -> None:
    args = [t for s in ("A1", "B1", "C1", "D1") for t in bybit.topics(s)]  # 12 args
    frames = [orjson.loads(f) for f in bybit.subscribe_frames(args)]
    assert [len(f["args"]) for f in frames] == [10, 2]
    assert [a for f in frames for a in f["args"]] == args
    assert all(f["op"] == "subscribe" for f in frames)


def test_venue_symbol() -> None:
    assert bybit.venue_symbol("btc-usdt") == "BTCUSDT"
    with pytest.raises(InvalidSymbol):
        bybit.venue_symbol("B")


@pytest.mark.fixtures
def test_recorded_delta_applies_to_recorded_snapshot() -> None:
    path = shared_fixture("bybit_v5_spot_orderbook50_BTCUSDT_snapshot_delta.gocryptotrader.jsonl")
    lines = path.read_text().splitlines()
    snap_raw, delta_raw = (json.loads(line) for line in lines)
    # the expected book, computed from the raw JSON with plain dicts
    bids = {float(p): float(q) for p, q in snap_raw["data"]["b"]}
    asks = {float(p): float(q) for p, q in snap_raw["data"]["a"]}
    for side, key in ((bids, "b"), (asks, "a")):
        for p, q in delta_raw["data"][key]:
            if float(q) == 0:
                side.pop(float(p), None)
            else:
                side[float(p)] = float(q)
    sync = SequencedSync(OrderBook("BTCUSDT"))
    [snap] = bybit.parse(lines[0], 0)
    [dlt] = bybit.parse(lines[1], 0)
    assert isinstance(snap, BookSnapshot) and snap.update_id == 2876700 and len(snap.bids) == 50
    assert isinstance(dlt, BookDelta) and dlt.prev_id == 2876700
    sync.on_snapshot(snap)
    assert sync.on_delta(dlt)
    got_bids, got_asks = sync.book.levels()
    assert got_bids == bids and got_asks == asks
    assert not sync.book.is_crossed()
    assert sync.book.top(1) == (((75848.74, 0.067669),), ((min(asks), asks[min(asks)]),))


@pytest.mark.fixtures
def test_recorded_tickers() -> None:
    path = shared_fixture("bybit_v5_tickers_mixed.gocryptotrader.wsTicker.json")
    events = [e for line in path.read_text().splitlines() for e in bybit.parse(line, 0)]
    assert len(events) == 8 and all(isinstance(e, Ticker) for e in events)
    spot = events[0]
    assert isinstance(spot, Ticker)
    assert (spot.symbol, spot.last, spot.high, spot.low, spot.volume) == ("BTCUSDT", 21109.77, 21426.99, 20575.0, 6780.866843)
    assert spot.change_pct == pytest.approx(1.96)
    linear_delta = events[3]
    assert isinstance(linear_delta, Ticker)
    # a delta only carries what changed: everything else is None ("unchanged")
    assert (linear_delta.bid, linear_delta.last, linear_delta.high) == (61873.9, None, None)
