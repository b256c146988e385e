"""Fuzzing every adapter: random bytes and text, and real-format frames mutated (keys dropped,
wrong types, NaN / inf / negative strings, huge numbers, truncation). Nothing but
``BadMessage`` may escape a parser; what a parser accepts must be usable (finite positive
prices, finite non-negative quantities, string symbols). Then a batch of fuzzed frames through
the loopback fake Binance into the real worker: each is counted once, the book stays exact.

Run with ``--hypothesis-show-statistics`` to see how many examples each property ran.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.errors import BadMessage
from market.events import BookDelta, BookSnapshot, ServerNotice, Ticker, Trade
from market.settings import Settings
from market.venues import binance, bybit, hyperliquid
from market.worker import Timing, Worker
from tests.conftest import wait_for
from tests.fakes.binance import FakeBinance, books_exact

T = TypeVar("T")
Parser = Callable[[str | bytes, float], list[Any]]

# -- real-format frames, one family per adapter ---------------------------------------------------

BINANCE = [
    {"stream": "btcusdt@depth@100ms", "data": {"e": "depthUpdate", "E": 1672515782136,
     "s": "BTCUSDT",
     "U": 157, "u": 160, "b": [["0.0024", "10"], ["0.0023", "0"]], "a": [["0.0026", "100"]]}},
    {"stream": "btcusdt@trade", "data": {"e": "trade", "E": 1672515782136, "s": "BTCUSDT",
     "t": 12345,
     "p": "0.001", "q": "100", "T": 1672515782136, "m": True, "M": True}},
    {"stream": "btcusdt@ticker", "data": {"e": "24hrTicker", "E": 1672515782136, "s": "BTCUSDT",
     "c": "16500.1", "P": "-1.25", "v": "1000.5", "q": "16500000", "h": "16800", "l": "16400",
     "b": "16500.0", "a": "16500.2"}},
    {"e": "serverShutdown", "E": 1672515782136},
    {"result": None, "id": 3},
    {"error": {"code": 2, "msg": "Invalid request"}, "id": 4},
]  # fmt: skip
BINANCE_SNAPSHOT = [{"lastUpdateId": 1027024, "bids": [["4.00000000", "431.00000000"]],
                     "asks": [["4.00000200", "12.00000000"], ["4.00000300", "0"]]}]  # fmt: skip
BYBIT = [
    {"topic": "orderbook.50.BTCUSDT", "ts": 1731035685326, "type": "snapshot",
     "data": {"s": "BTCUSDT",
     "b": [["75848.74", "0.067669"], ["75848.63", "0.004772"]], "a": [["75848.89", "0.1"]],
     "u": 2876700, "seq": 47474967822}, "cts": 1731035685322},
    {"topic": "orderbook.50.BTCUSDT", "ts": 1731035685345, "type": "delta", "data": {"s": "BTCUSDT",
     "b": [["75848.74", "0"]], "a": [["75848.75", "0.747137"]], "u": 2876701, "seq": 47474967823}},
    {"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts": 1672304486868, "data": [
        {"T": 1672304486865, "s": "BTCUSDT", "S": "Buy", "v": "0.001", "p": "16578.50",
         "L": "PlusTick", "i": "20f43950-d8dd-5b31-9112-a178eb6023af", "BT": False}]},
    {"topic": "tickers.BTCUSDT", "ts": 1673853746003, "type": "snapshot", "cs": 2588407389,
     "data": {"symbol": "BTCUSDT", "lastPrice": "21109.77", "highPrice24h": "21426.99",
              "lowPrice24h": "20575", "prevPrice24h": "20704.93", "volume24h": "6780.866843",
              "turnover24h": "141946527.22907118", "price24hPcnt": "0.0196",
              "usdIndexPrice": "21120.2400136"}},
    {"success": True, "ret_msg": "", "conn_id": "x", "req_id": "subscribe-1", "op": "subscribe"},
    {"op": "pong", "args": ["1672916271846"], "conn_id": "x"},
]  # fmt: skip
HYPERLIQUID = [
    {"channel": "l2Book", "data": {"coin": "BTC", "time": 1737918843731, "levels": [
        [{"px": "105055.0", "sz": "3.03622", "n": 5}, {"px": "105054.0", "sz": "0.1428", "n": 1}],
        [{"px": "105056.0", "sz": "0.1", "n": 1}]]}},
    {"channel": "trades", "data": [{"coin": "BTC", "side": "B", "px": "105056.0", "sz": "0.00219",
     "time": 1737918794873, "hash": "0xde47", "tid": 121451470284048, "users": ["0x1", "0x2"]}]},
    {"channel": "allMids", "data": {"mids": {"BTC": "105055.5", "ETH": "3301.25"}}},
    {"channel": "activeAssetCtx", "data": {"coin": "BTC", "ctx": {"prevDayPx": "104000.0",
     "dayNtlVlm": "1.2e9", "dayBaseVlm": "11800.5", "markPx": "105050.0", "midPx": "105055.5"}}},
    {"channel": "subscriptionResponse", "data": {"method": "subscribe",
     "subscription": {"type": "l2Book", "coin": "BTC"}}},
    {"channel": "error", "data": "Invalid subscription"},
    {"channel": "pong"},
]  # fmt: skip

ADAPTERS: dict[str, tuple[Parser, list[dict[str, Any]]]] = {
    "binance": (binance.parse, BINANCE),
    "binance_snapshot": (
        lambda raw, at: [binance.parse_snapshot(raw, "BNBBTC", at)],
        BINANCE_SNAPSHOT,
    ),
    "bybit": (bybit.parse, BYBIT),  # type: ignore[dict-item]
    "hyperliquid": (hyperliquid.parse, HYPERLIQUID),  # type: ignore[dict-item]
}

# -- mutations ------------------------------------------------------------------------------------

NAN = float("nan")
POOL: list[Any] = [
    None, True, False, 0, -1, 1, 1.5, -0.0, 10**30, -(10**30), 2**64, 1e308, -1e308, 5e-324,
    "", "NaN", "nan", "inf", "-inf", "Infinity", "-1", "0", "-0.0", "1e999", "-1e999", "0x10",
    "abc", "9" * 400, " 1 ", "1,5", [], {}, [[]], [["1"]], [["1", "2", "3"]], [[None, None]],
    [{"px": "1"}], {"px": "1", "sz": "-1"}, [1, 2], NAN, math.inf, -math.inf,
]  # fmt: skip
OPS = ("drop", "replace", "replace", "stringify", "wrap", "duplicate", "truncate", "clear")


class Draw:
    """Choices for a mutation: from hypothesis (``st.data()``) or from a seeded Random."""

    def __init__(
        self, choose: Callable[[Sequence[Any]], Any], integer: Callable[[int, int], int]
    ) -> None:
        self.choose = choose
        self.integer = integer


def hypothesis_draw(data: st.DataObject) -> Draw:
    return Draw(
        lambda seq: data.draw(st.sampled_from(list(seq))),
        lambda lo, hi: data.draw(st.integers(lo, hi)),
    )


def random_draw(rng: random.Random) -> Draw:
    return Draw(rng.choice, rng.randint)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from paths(item, (*prefix, i))


def mutate(frame: dict[str, Any], draw: Draw) -> str:
    """1-3 mutations at random places of a copy of ``frame``; the text to send."""
    value: Any = copy.deepcopy(frame)
    truncate_at: int | None = None
    for _ in range(draw.integer(1, 3)):
        path = draw.choose(list(paths(value)))
        op = draw.choose(OPS)
        if op == "truncate":
            truncate_at = draw.integer(0, 400)
            continue
        if not path:
            value = copy.deepcopy(draw.choose(POOL)) if op == "replace" else value
            continue
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        old = parent[key]
        if op == "drop":
            del parent[key]
        elif op == "replace":
            parent[key] = copy.deepcopy(draw.choose(POOL))  # never the pool's own lists
        elif op == "stringify":
            parent[key] = (
                json.dumps(old)
                if not isinstance(old, str)
                else old + draw.choose(["x", "e5", "0" * 30])
            )
        elif op == "wrap":
            parent[key] = [old]
        elif op == "duplicate" and isinstance(old, list) and old:
            old.append(copy.deepcopy(old[0]))
        elif op == "clear" and isinstance(old, (list, dict)):
            old.clear()
    text = json.dumps(value)  # NaN and inf become the non-JSON tokens NaN / Infinity
    return text if truncate_at is None else text[:truncate_at]


# -- what a parser may return ----------------------------------------------------------------------


def finite_positive(x: object) -> bool:
    return type(x) is float and 0 < x < math.inf


def finite_non_negative(x: object) -> bool:
    return type(x) is float and 0 <= x < math.inf


def usable(events: list[Any]) -> list[str]:
    """What is wrong with the events a parser returned (nothing, for good events)."""
    problems = []
    for e in events:
        if isinstance(e, (BookDelta, BookSnapshot)):
            if not (isinstance(e.symbol, str) and e.symbol):
                problems.append(f"symbol {e.symbol!r}")
            for price, qty in e.bids + e.asks:
                if not (finite_positive(price) and finite_non_negative(qty)):
                    problems.append(f"level {(price, qty)!r}")
        elif isinstance(e, Trade):
            if not (isinstance(e.symbol, str) and e.symbol):
                problems.append(f"symbol {e.symbol!r}")
            if not (finite_positive(e.price) and finite_positive(e.qty)):
                problems.append(f"trade {e.price!r} x {e.qty!r}")
            if e.side not in ("buy", "sell") or type(e.ts_ms) is not int:
                problems.append(f"trade side/ts {e.side!r} {e.ts_ms!r}")
        elif isinstance(e, Ticker):
            for name in ("last", "high", "low", "bid", "ask"):
                x = getattr(e, name)
                if x is not None and not finite_positive(x):
                    problems.append(f"ticker {name} {x!r}")
    return problems


def only_bad_message(parser: Parser, raw: str | bytes) -> list[Any]:
    """Parse; ``BadMessage`` is fine (→ []), any other exception fails the test."""
    try:
        return parser(raw, 1.0)
    except BadMessage:
        return []


# -- properties ------------------------------------------------------------------------------------

# FUZZ_EXAMPLES=5000 for a longer run by hand; the suite runs 400 per property
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("name", sorted(ADAPTERS))
@FUZZ
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_random_input_raises_only_bad_message(name: str, raw: str | bytes) -> None:
    parser, _ = ADAPTERS[name]
    only_bad_message(parser, raw)


@pytest.mark.parametrize("name", sorted(ADAPTERS))
@FUZZ
@given(data=st.data(), as_bytes=st.booleans())
def test_mutated_real_frames_raise_only_bad_message(
    name: str, data: st.DataObject, as_bytes: bool
) -> None:
    parser, frames = ADAPTERS[name]
    draw = hypothesis_draw(data)
    text = mutate(draw.choose(frames), draw)
    events = only_bad_message(parser, text.encode() if as_bytes else text)
    assert usable(events) == [], text  # what a parser accepts, the book and the page can use


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_unmutated_frames_are_usable(name: str) -> None:
    parser, frames = ADAPTERS[name]
    for frame in frames:
        assert usable(parser(json.dumps(frame), 1.0)) == [], frame


# Values that would parse as numbers but cannot be used (a NaN price breaks a book's sorted
# order): every parser refuses them as bad messages.
UNUSABLE = [
    ("binance", {**BINANCE[2], "data": {**BINANCE[2]["data"], "c": "NaN"}}),
    ("binance", {**BINANCE[2], "data": {**BINANCE[2]["data"], "c": False}}),
    ("bybit", {**BYBIT[0], "data": {**BYBIT[0]["data"], "b": [["NaN", "1"]]}}),
    ("bybit", {**BYBIT[1], "data": {**BYBIT[1]["data"], "a": [["75848.75", "-1"]]}}),
    ("bybit", {**BYBIT[0], "data": {**BYBIT[0]["data"], "s": 5}}),
    ("bybit", {**BYBIT[2], "data": [{**BYBIT[2]["data"][0], "p": "inf"}]}),
    ("hyperliquid", {"channel": "l2Book", "data": {"coin": "BTC", "time": 1,
                                                   "levels": [[{"px": "nan", "sz": "1"}], []]}}),
    ("hyperliquid", {"channel": "trades", "data": [{**HYPERLIQUID[1]["data"][0], "sz": "-1"}]}),
    ("hyperliquid", {"channel": "allMids", "data": {"mids": {"BTC": "NaN"}}}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "frame"), UNUSABLE)
def test_unusable_values_are_bad_messages(name: str, frame: dict[str, Any]) -> None:
    parser, _ = ADAPTERS[name]
    with pytest.raises(BadMessage):
        parser(json.dumps(frame), 1.0)


# -- a batch of fuzzed frames into the real worker ------------------------------------------------


def fuzzed_batch(n: int, seed: int) -> list[str | bytes]:
    """``n`` mutated Binance frames that ``binance.parse`` refuses, some as binary frames."""
    rng = random.Random(seed)
    draw = random_draw(rng)
    batch: list[str | bytes] = []
    while len(batch) < n:
        text = mutate(rng.choice(BINANCE), draw)
        try:
            binance.parse(text, 1.0)
        except BadMessage:
            batch.append(text.encode() if rng.random() < 0.2 else text)
    return batch


def test_fuzzed_frames_are_counted_and_the_book_stays_exact() -> None:
    symbols = ("BTCUSDT", "ETHUSDT")
    timing = Timing(status_interval=0.05, backoff_jitter=0.0, close_timeout=0.5)
    batch = fuzzed_batch(300, seed=2024)
    with FakeBinance(symbols, seed=21) as ex:
        worker = Worker(
            Settings(exchanges=("binance",), symbols=symbols, fallback="none",
                     connection_timeout=5.0).with_urls(
                BINANCE_WS_URL=ex.ws_url, BINANCE_REST_URL=ex.rest_url),
            timing=timing,
        ).start()  # fmt: skip
        try:

            def exact() -> bool:
                return books_exact(ex, worker.store, symbols)

            wait_for(
                lambda: all(ex.snapshot_requests[s] == 1 for s in symbols) and exact(),
                what="synced",
            )
            for i in range(0, len(batch), 50):
                ex.garbage(*batch[i : i + 50])
                ex.tick(2)
            wait_for(exact, what="books == truth after the fuzzed frames")
            status = wait_for(
                lambda: (
                    (s := worker.store.snapshot(series=False).statuses["binance"]).messages
                    == len(batch) + 6 * 2 * 2
                    and s
                ),
                what="every frame counted",
            )
        finally:
            worker.stop()
    assert status.bad_messages == len(batch) == 300
    assert (status.state, status.reconnects, status.resyncs) == ("live", 0, 0)
    assert ex.snapshot_requests == {s: 1 for s in symbols}
    assert ex.handshakes == 1


def test_fuzzed_batch_is_reproducible() -> None:
    assert fuzzed_batch(20, seed=7) == fuzzed_batch(20, seed=7)
    assert not any(isinstance(x, ServerNotice) for x in fuzzed_batch(5, seed=1))
