"""The Binance adapter on frames written from Binance's documented formats.

Payload shapes from the Binance spot WebSocket Streams and REST docs:
depthUpdate {e,E,s,U,u,b,a}, trade {e,E,s,t,p,q,T,m,M}, GET /api/v3/depth {lastUpdateId,bids,asks},
combined streams wrap a payload as {"stream": …, "data": …}.
"""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.book import OrderBook
from market.errors import BadMessage, InvalidSymbol
from market.events import BookDelta, BookSnapshot, ServerNotice, Ticker, Trade
from market.sync import SnapshotSync
from market.venues import binance

DEPTH = {
    "e": "depthUpdate",
    "E": 1672515782136,
    "s": "BNBBTC",
    "U": 157,
    "u": 160,
    "b": [["0.0024", "10"], ["0.0023", "0.00000000"]],
    "a": [["0.0026", "100"]],
}
TRADE = {
    "e": "trade",
    "E": 1672515782136,
    "s": "BNBBTC",
    "t": 12345,
    "p": "0.001",
    "q": "100",
    "T": 1672515782134,
    "m": True,
    "M": True,
}
SNAPSHOT = {
    "lastUpdateId": 1027024,
    "bids": [["4.00000000", "431.00000000"], ["3.99000000", "9.50000000"]],
    "asks": [["4.00000200", "12.00000000"]],
}


def frame(payload: dict[str, Any], stream: str | None = None) -> bytes:
    return orjson.dumps(payload if stream is None else {"stream": stream, "data": payload})


def test_depth_update_combined_stream() -> None:
    events = binance.parse(frame(DEPTH, "bnbbtc@depth@100ms"), 1700.5)
    assert events == [
        BookDelta(
            exchange="binance",
            symbol="BNBBTC",
            bids=((0.0024, 10.0), (0.0023, 0.0)),
            asks=((0.0026, 100.0),),
            first_id=157,
            last_id=160,
            prev_id=None,
            ts_ms=1672515782136,
            received_at=1700.5,
        )
    ]


def test_depth_update_bare_payload_and_str_input() -> None:
    events = binance.parse(json.dumps(DEPTH), 3.0)
    assert events == binance.parse(frame(DEPTH, "bnbbtc@depth"), 3.0)
    (d,) = events
    assert isinstance(d, BookDelta)
    assert (d.first_id, d.last_id, d.symbol) == (157, 160, "BNBBTC")


def test_depth_update_with_empty_sides() -> None:
    payload = {**DEPTH, "U": 161, "u": 161, "b": [], "a": []}
    (d,) = binance.parse(frame(payload, "bnbbtc@depth@100ms"), 0.0)
    assert isinstance(d, BookDelta)
    assert (d.bids, d.asks, d.first_id, d.last_id) == ((), (), 161, 161)


def test_trade_buyer_is_maker_means_a_sell() -> None:
    events = binance.parse(frame(TRADE, "bnbbtc@trade"), 12.25)
    assert events == [
        Trade(
            exchange="binance",
            symbol="BNBBTC",
            price=0.001,
            qty=100.0,
            side="sell",
            ts_ms=1672515782134,  # the trade time T, not the event time E
            trade_id="12345",
            received_at=12.25,
        )
    ]


def test_trade_buyer_is_taker_means_a_buy() -> None:
    (t,) = binance.parse(frame({**TRADE, "m": False, "p": "64250.01", "q": "0.5"}), 0.0)
    assert isinstance(t, Trade)
    assert (t.side, t.price, t.qty) == ("buy", 64250.01, 0.5)


@pytest.mark.parametrize(
    "reply",
    [{"result": None, "id": 312}, {"result": ["btcusdt@trade"], "id": 312}, {"id": 312, "status": 200}],
)
def test_replies_to_our_requests_are_notices_with_the_id(reply: dict[str, Any]) -> None:
    assert binance.parse(orjson.dumps(reply), 0.0) == [ServerNotice("binance", "reply", request="312")]
    assert binance.parse(orjson.dumps({**reply, "id": "x"}), 0.0) == []


@pytest.mark.parametrize(
    "payload",
    [
        {
            "e": "aggTrade",
            "E": 1,
            "s": "BNBBTC",
            "a": 1,
            "p": "1",
            "q": "1",
            "f": 1,
            "l": 1,
            "T": 1,
            "m": True,
        },
        {"e": "kline", "E": 1, "s": "BNBBTC", "k": {"t": 1, "i": "1m"}},
        {"e": "outboundAccountPosition", "E": 1},
        {"e": "somethingNew"},
    ],
)
def test_unknown_event_types_give_no_events(payload: dict[str, Any]) -> None:
    assert binance.parse(frame(payload, "bnbbtc@x"), 0.0) == []
    assert binance.parse(frame(payload), 0.0) == []


def test_server_shutdown_is_a_notice() -> None:
    events = binance.parse(frame({"e": "serverShutdown", "E": 1700000000000}), 0.0)
    assert events == [ServerNotice("binance", "shutdown", "serverShutdown event")]
    assert binance.parse(frame({"e": "serverShutdown", "E": 1}, "x"), 0.0)[0].kind == "shutdown"


def mutate(base: dict[str, Any], **changes: Any) -> bytes:
    payload = copy.deepcopy(base)
    for key, value in changes.items():
        if value is DROP:
            del payload[key]
        else:
            payload[key] = value
    return orjson.dumps(payload)


DROP = object()

MALFORMED = [
    b"not json",
    b"",
    b"\xff\xfe",
    b"[1, 2, 3]",
    b'"depthUpdate"',
    b"42",
    b"null",
    b'{"stream": "x", "data": [1]}',
    b'{"stream": "x", "data": null}',
    b"{}",  # no event type and not a reply
    b'{"stream": "btcusdt@bookTicker"}',
    mutate(DEPTH, U=DROP),
    mutate(DEPTH, u=DROP),
    mutate(DEPTH, s=DROP),
    mutate(DEPTH, b=DROP),
    mutate(DEPTH, a=DROP),
    mutate(DEPTH, U="abc"),
    mutate(DEPTH, u=None),
    mutate(DEPTH, U=170),  # U > u
    mutate(DEPTH, E="yesterday"),
    mutate(DEPTH, s=["BNBBTC"]),  # an unhashable symbol would crash the pipeline's dict lookup
    mutate(DEPTH, s=""),
    mutate(DEPTH, s=7),
    mutate(DEPTH, b=[["abc", "1"]]),  # non-numeric price
    mutate(DEPTH, b=[["0.1", "lots"]]),
    mutate(DEPTH, b=[["nan", "1"]]),  # would poison the book's sorted prices
    mutate(DEPTH, a=[["inf", "1"]]),
    mutate(DEPTH, a=[["1", "-5"]]),  # a negative quantity
    mutate(DEPTH, a=[["-1", "5"]]),
    mutate(DEPTH, a=[["0", "5"]]),
    mutate(DEPTH, b=["12", "34"]),  # levels as strings: not [p, q]
    mutate(DEPTH, b=[["0.1"]]),
    mutate(DEPTH, b="0.1,1"),
    mutate(DEPTH, b={"0.1": "1"}),
    mutate(DEPTH, b=[[None, "1"]]),
    mutate(TRADE, p=DROP),
    mutate(TRADE, q=DROP),
    mutate(TRADE, m=DROP),
    mutate(TRADE, T=DROP),
    mutate(TRADE, s=DROP),
    mutate(TRADE, t=DROP),
    mutate(TRADE, p="abc"),
    mutate(TRADE, p="NaN"),
    mutate(TRADE, q="-1"),
    mutate(TRADE, q="0"),
    mutate(TRADE, p=None),
    mutate(TRADE, m="false"),  # a string is not a boolean: the side would be wrong
    mutate(TRADE, T="later"),
]


@pytest.mark.parametrize("raw", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_frames_raise_bad_message(raw: bytes) -> None:
    with pytest.raises(BadMessage):
        binance.parse(raw, 0.0)
    if raw.startswith(b'{"e"'):  # the same payload inside combined-stream frames (the typed
        for stream in (b"bnbbtc@depth@100ms", b"bnbbtc@trade"):  # path, then the checked one)
            with pytest.raises(BadMessage):
                binance.parse(b'{"stream":"' + stream + b'","data":' + raw + b"}", 0.0)


def test_parse_snapshot() -> None:
    snap = binance.parse_snapshot(orjson.dumps(SNAPSHOT), "BNBBTC", 99.5)
    assert snap == BookSnapshot(
        exchange="binance",
        symbol="BNBBTC",
        bids=((4.0, 431.0), (3.99, 9.5)),
        asks=((4.000002, 12.0),),
        update_id=1027024,
        ts_ms=None,
        received_at=99.5,
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>502 Bad Gateway</html>",
        b"[]",
        b'{"code": -1121, "msg": "Invalid symbol."}',
        mutate(SNAPSHOT, lastUpdateId=DROP),
        mutate(SNAPSHOT, lastUpdateId="x"),
        mutate(SNAPSHOT, bids=DROP),
        mutate(SNAPSHOT, asks=[["1", "nan"]]),
        mutate(SNAPSHOT, bids=[["x", "1"]]),
    ],
)
def test_parse_snapshot_malformed(body: bytes) -> None:
    with pytest.raises(BadMessage, match="BNBBTC"):
        binance.parse_snapshot(body, "BNBBTC", 0.0)


def test_stream_url() -> None:
    assert binance.stream_url("wss://stream.binance.com:9443", ("BTCUSDT", "ETHUSDT")) == (
        "wss://stream.binance.com:9443/stream?streams="
        "btcusdt@depth@100ms/btcusdt@trade/btcusdt@ticker/"
        "ethusdt@depth@100ms/ethusdt@trade/ethusdt@ticker"
    )
    assert binance.stream_url("ws://127.0.0.1:8765/", ("BNBBTC",)) == (
        "ws://127.0.0.1:8765/stream?streams=bnbbtc@depth@100ms/bnbbtc@trade/bnbbtc@ticker"
    )


def test_subscribe_frames_hold_at_most_max_params_streams_with_consecutive_ids() -> None:
    names = binance.streams([f"S{i:03d}USDT" for i in range(60)])  # 180 streams
    frames = [orjson.loads(f) for f in binance.subscribe_frames(names, 7)]
    assert [f["id"] for f in frames] == [7, 8]
    assert [len(f["params"]) for f in frames] == [binance.MAX_PARAMS, 180 - binance.MAX_PARAMS]
    assert frames[0]["method"] == "SUBSCRIBE" and frames[0]["params"][:3] == [
        "s000usdt@depth@100ms", "s000usdt@trade", "s000usdt@ticker",
    ]
    assert orjson.loads(binance.subscribe_frames(["x@trade"], 1, "UNSUBSCRIBE")[0]) == {
        "method": "UNSUBSCRIBE", "params": ["x@trade"], "id": 1,
    }


def test_24h_ticker_gives_every_figure() -> None:
    raw = orjson.dumps({"stream": "btcusdt@ticker", "data": {
        "e": "24hrTicker", "E": 1700000000123, "s": "BTCUSDT", "p": "1500.00", "P": "2.345",
        "w": "64000.1", "c": "65500.50", "Q": "0.01", "b": "65500.40", "B": "1.2",
        "a": "65500.60", "A": "0.8", "o": "64000.50", "h": "66000.00", "l": "63500.25",
        "v": "12345.678", "q": "790000000.5", "O": 1, "C": 2, "F": 3, "L": 4, "n": 5,
    }})
    assert binance.parse(raw, 9.0) == [
        Ticker(
            exchange="binance", symbol="BTCUSDT", last=65500.5, change_pct=2.345,
            volume=12345.678, quote_volume=790000000.5, high=66000.0, low=63500.25,
            bid=65500.4, ask=65500.6, ts_ms=1700000000123, received_at=9.0,
        )
    ]


def test_refused_request_is_a_notice_not_a_bad_message() -> None:
    raw = b'{"error":{"code":2,"msg":"Invalid request: unknown variant"},"id":4}'
    assert binance.parse(raw, 1.0) == [
        ServerNotice(
            "binance", "error", "request 4 refused: Invalid request: unknown variant", False, "4"
        )
    ]


def test_snapshot_url() -> None:
    assert binance.snapshot_url("https://api.binance.com", "BTCUSDT") == (
        "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
    )
    assert binance.snapshot_url("http://127.0.0.1:8080/", "ETHBTC", limit=100) == (
        "http://127.0.0.1:8080/api/v3/depth?symbol=ETHBTC&limit=100"
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("btcusdt", "BTCUSDT"),
        ("BTC-USDT", "BTCUSDT"),
        (" ethbtc ", "ETHBTC"),
        ("1INCHUSDT", "1INCHUSDT"),
        ("ab", "AB"),
        ("A" * 20, "A" * 20),
    ],
)
def test_venue_symbol(given: str, expected: str) -> None:
    assert binance.venue_symbol(given) == expected


@pytest.mark.parametrize(
    "bad", ["", "B", "A" * 21, "BTC$", "BTC/USDT", "BTC_USDT", "btc usdt", "ÉTHBTC"]
)
def test_venue_symbol_refuses(bad: str) -> None:
    with pytest.raises(InvalidSymbol):
        binance.venue_symbol(bad)


# -- pure parsers never raise anything but BadMessage on junk -------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["0.1", "-1", "NaN", "inf", "1e999", "", "abc", "1_000", " 2 "]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)


def check_events(events: list[Any]) -> None:
    """Whatever parses must be safe to feed to a book."""
    assert isinstance(events, list)
    sync = SnapshotSync(OrderBook("X"))
    sync.on_snapshot(BookSnapshot("binance", "X", (), (), update_id=0))
    for event in events:
        if isinstance(event, BookDelta):
            assert isinstance(event.symbol, str) and event.symbol
            for price, qty in event.bids + event.asks:
                assert 0 < price < float("inf") and 0 <= qty < float("inf")
            assert event.first_id <= event.last_id
            assert event.ts_ms is None or isinstance(event.ts_ms, int)
        elif isinstance(event, Trade):
            assert isinstance(event.symbol, str) and event.symbol
            assert 0 < event.price < float("inf") and 0 < event.qty < float("inf")
            assert event.side in ("buy", "sell")
        else:
            assert isinstance(event, ServerNotice)


def parse_or_bad(raw: bytes | str) -> None:
    try:
        events = binance.parse(raw, 0.0)
    except BadMessage:
        return
    check_events(events)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes(raw: bytes) -> None:
    parse_or_bad(raw)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text(raw: str) -> None:
    parse_or_bad(raw)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_random_json(value: Any) -> None:
    parse_or_bad(json.dumps(value))
    parse_or_bad(json.dumps({"stream": "x", "data": value}))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from([DEPTH, TRADE, {"e": "serverShutdown", "E": 1}]),
    wrap=st.booleans(),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["e", "E", "s", "U", "u", "b", "a", "t", "p", "q", "T", "m", "x"]),
            st.one_of(st.just(DROP), json_values),
        ),
        min_size=1,
        max_size=3,
    ),
    level_edit=st.one_of(
        st.none(), st.tuples(st.sampled_from(["b", "a"]), st.integers(0, 1), json_values)
    ),
)
def test_mutated_valid_frames(
    base: dict[str, Any],
    wrap: bool,
    edits: list[tuple[str, Any]],
    level_edit: tuple[str, int, Any] | None,
) -> None:
    payload = copy.deepcopy(base)
    for key, value in edits:
        if value is DROP:
            payload.pop(key, None)
        else:
            payload[key] = value
    if level_edit is not None:
        side, index, value = level_edit
        levels = payload.get(side)
        if isinstance(levels, list) and levels and isinstance(levels[0], list) and len(levels[0]) > index:
            levels[0][index] = value
    raw = json.dumps({"stream": "bnbbtc@depth", "data": payload} if wrap else payload)
    parse_or_bad(raw)
    parse_or_bad(raw.encode())
    with contextlib.suppress(BadMessage):
        binance.parse_snapshot(raw, "BNBBTC", 0.0)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["lastUpdateId", "bids", "asks", "x"]), json_values))
def test_snapshot_junk(body: dict[str, Any]) -> None:
    try:
        snap = binance.parse_snapshot(json.dumps(body), "X", 0.0)
    except BadMessage:
        return
    for price, qty in snap.bids + snap.asks:
        assert 0 < price < float("inf") and 0 <= qty < float("inf")


def test_book_ticker_is_known_and_gives_no_events() -> None:
    raw = '{"stream":"bnbusdt@bookTicker","data":{"u":400900217,"s":"BNBUSDT","b":"25.35","B":"31.21","a":"25.36","A":"40.66"}}'
    assert binance.parse(raw, 1.0) == []
