"""The fake exchanges speak the real protocols: driven by a plain WebSocket client.

Each test connects with ``websockets.asyncio.client.connect`` and asserts the frames one by one
against the shapes the exchanges send (their docs and recordings). "Nothing was sent" is shown
by order: a frame that must arrive is sent after the one that must not, and arrives first.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.fakes.binance import FakeBinance
from tests.fakes.bybit import FakeBybit
from tests.fakes.hyperliquid import GREETING, FakeHyperLiquid

BTC, ETH = "BTCUSDT", "ETHUSDT"


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 10))


async def recv(ws: ClientConnection, timeout: float = 2.0) -> Any:
    """The next frame, which must be a JSON text frame, decoded."""
    raw = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(raw, str), f"a binary frame: {raw!r:.80}"
    return orjson.loads(raw)


async def until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll ``predicate`` (the fake's counters settle on its own thread) up to a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {predicate}"
        await asyncio.sleep(0.01)


async def send(ws: ClientConnection, payload: object) -> None:
    await ws.send(orjson.dumps(payload).decode())


Book = dict[str, dict[float, float]]


def top(book: Book, n: int = 20) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    return (
        sorted(book["b"].items(), reverse=True)[:n],
        sorted(book["a"].items())[:n],
    )


def apply(book: Book, data: dict[str, Any]) -> None:
    for side in ("b", "a"):
        for price, qty in data[side]:
            if float(qty) == 0:
                book[side].pop(float(price), None)
            else:
                book[side][float(price)] = float(qty)


def best_first(levels: list[list[str]], bids: bool) -> bool:
    prices = [float(p) for p, _ in levels]
    return prices == sorted(prices, reverse=bids) and len(set(prices)) == len(prices)


# -- Bybit --------------------------------------------------------------------------------------


def test_bybit_snapshot_then_deltas_rebuild_the_truth_within_50_levels() -> None:
    async def body(ex: FakeBybit) -> None:
        async with connect(ex.ws_url) as ws:
            topics = [f"orderbook.50.{BTC}", f"publicTrade.{BTC}", f"tickers.{BTC}"]
            await send(ws, {"op": "subscribe", "args": topics, "req_id": "subscribe-1"})
            ack = await recv(ws)
            assert ack == {"success": True, "ret_msg": "subscribe", "conn_id": ack["conn_id"],
                           "req_id": "subscribe-1", "op": "subscribe"}  # fmt: skip
            snapshot = await recv(ws)
            assert list(snapshot) == ["topic", "ts", "type", "data", "cts"]
            assert (snapshot["topic"], snapshot["type"]) == (f"orderbook.50.{BTC}", "snapshot")
            data = snapshot["data"]
            assert list(data) == ["s", "b", "a", "u", "seq"] and data["s"] == BTC
            assert best_first(data["b"], True) and best_first(data["a"], False)
            assert 0 < len(data["b"]) <= 50 and 0 < len(data["a"]) <= 50
            ticker = await recv(ws)
            assert (ticker["topic"], ticker["type"], ticker["data"]["symbol"]) == (
                f"tickers.{BTC}", "snapshot", BTC,
            )  # fmt: skip
            assert set(ticker["data"]) == {
                "symbol", "lastPrice", "highPrice24h", "lowPrice24h", "prevPrice24h",
                "volume24h", "turnover24h", "price24hPcnt", "usdIndexPrice",
            }  # fmt: skip
            assert ex.subscribed() == set(topics)

            book: Book = {"b": {}, "a": {}}
            apply(book, data)
            u = data["u"]
            ex.tick(60)
            for _ in range(60):
                frame = await recv(ws)
                assert (frame["type"], frame["data"]["u"]) == ("delta", u + 1)
                assert frame["data"]["b"] or frame["data"]["a"]
                assert best_first(frame["data"]["b"], True)
                assert best_first(frame["data"]["a"], False)
                u = frame["data"]["u"]
                apply(book, frame["data"])
                assert len(book["b"]) <= 50 and len(book["a"]) <= 50
            bids, asks, update_id = ex.truth(BTC, 50)
            assert (top(book, 50), u) == ((bids, asks), update_id)

    with FakeBybit([BTC, ETH]) as ex:
        run(lambda: body(ex))


def test_bybit_gap_restart_and_resnapshot() -> None:
    async def body(ex: FakeBybit) -> None:
        async with connect(ex.ws_url) as ws:
            await send(ws, {"op": "subscribe", "args": [f"orderbook.50.{BTC}"]})
            assert (await recv(ws))["success"] is True
            u = (await recv(ws))["data"]["u"]
            ex.skip(2, BTC)
            ex.tick(1, [BTC])
            assert (await recv(ws))["data"]["u"] == u + 3  # the client sees a gap
            ex.restart(BTC)
            restart = await recv(ws)
            assert (restart["type"], restart["data"]["u"]) == ("delta", 1)
            book: Book = {"b": {}, "a": {}}
            apply(book, restart["data"])  # the whole new book
            bids, asks, update_id = ex.truth(BTC, 50)
            assert (top(book, 50), update_id) == ((bids, asks), 1)
            ex.tick(1, [BTC])
            assert (await recv(ws))["data"]["u"] == 2
            ex.resnapshot(BTC)
            again = await recv(ws)
            assert (again["type"], again["data"]["u"]) == ("snapshot", 2)
            await send(ws, {"op": "unsubscribe", "args": [f"orderbook.50.{BTC}"], "req_id": "u"})
            assert (await recv(ws))["ret_msg"] == "unsubscribe"
            await send(ws, {"op": "subscribe", "args": [f"orderbook.50.{BTC}"], "req_id": "s"})
            assert (await recv(ws))["req_id"] == "s"
            assert (await recv(ws))["type"] == "snapshot"  # a resubscribe gets a new snapshot

    with FakeBybit([BTC]) as ex:
        run(lambda: body(ex))


def test_bybit_refusals_fail_the_whole_request() -> None:
    conn_id = ""

    def ack(msg: str, req_id: str, ok: bool = False) -> dict[str, Any]:
        return {"success": ok, "ret_msg": msg, "conn_id": conn_id, "req_id": req_id,
                "op": "subscribe"}  # fmt: skip

    async def connected(ws: ClientConnection) -> None:
        nonlocal conn_id
        await send(ws, {"op": "ping"})
        conn_id = (await recv(ws))["conn_id"]
        assert conn_id

    async def spot(ex: FakeBybit) -> None:
        async with connect(ex.ws_url) as ws:
            await connected(ws)
            bad = [f"orderbook.50.{BTC}", "orderbook.50.XYZUSDT", "tickers.XYZUSDT"]
            await send(ws, {"op": "subscribe", "args": bad, "req_id": "1"})
            assert await recv(ws) == ack("Invalid symbol :[orderbook.50.XYZUSDT]", "1")
            many = [f"publicTrade.{BTC}"] + [f"tickers.S{i}" for i in range(10)]
            await send(ws, {"op": "subscribe", "args": many, "req_id": "2"})
            assert await recv(ws) == ack("args size >10", "2")
            assert ex.subscribed() == set()
            await send(ws, {"op": "subscribe", "args": [f"publicTrade.{BTC}"], "req_id": "3"})
            assert await recv(ws) == ack("subscribe", "3", ok=True)
            await send(ws, {"op": "subscribe", "args": [f"publicTrade.{BTC}"], "req_id": "4"})
            msg = f"error:already subscribed,topic:publicTrade.{BTC}"
            assert await recv(ws) == ack(msg, "4")
            ex.trade(ETH, "1.5", "2", "Buy")  # listed but not subscribed: never sent
            ex.trade(BTC, "100.25", "0.5", "Sell")
            trade = await recv(ws)
            assert trade["topic"] == f"publicTrade.{BTC}" and trade["type"] == "snapshot"
            [t] = trade["data"]
            assert {k: t[k] for k in ("s", "S", "v", "p", "BT")} == {
                "s": BTC, "S": "Sell", "v": "0.5", "p": "100.25", "BT": False,
            }  # fmt: skip
            assert t["T"] == trade["ts"] and t["L"] in ("PlusTick", "ZeroPlusTick")
            assert len(t["i"]) == 36  # a uuid

    async def linear(ex: FakeBybit) -> None:
        async with connect(ex.ws_url) as ws:
            await connected(ws)
            await send(ws, {"op": "subscribe", "args": ["orderbook.50.XYZUSDT"], "req_id": "1"})
            msg = "error:handler not found,topic:orderbook.50.XYZUSDT"
            assert await recv(ws) == ack(msg, "1")
            many = [f"publicTrade.{s}" for s in sorted(ex.listed)]
            assert len(many) > 10
            await send(ws, {"op": "subscribe", "args": many, "req_id": "2"})
            assert await recv(ws) == ack("", "2", ok=True)  # linear: no args limit

    with FakeBybit([BTC, ETH]) as ex:
        run(lambda: spot(ex))
    symbols = [BTC, ETH] + [f"C{i}USDT" for i in range(10)]
    with FakeBybit(symbols, kind="linear") as ex:
        run(lambda: linear(ex))


ACK_PONG = {"success": True, "ret_msg": "pong", "conn_id": "", "req_id": "p", "op": "ping"}
ARGS_PONG = {"req_id": "p", "op": "pong", "args": ["<ms>"], "conn_id": ""}


@pytest.mark.parametrize(
    ("kind", "pong_args", "pong"),
    [
        ("spot", False, ACK_PONG),
        ("linear", False, ACK_PONG),  # Bybit's docs: linear answers pings like spot
        ("linear", True, ARGS_PONG),  # how Bybit's option and private streams answer
    ],
)
def test_bybit_pong_shapes_and_ping_timeout(
    kind: Literal["spot", "linear"], pong_args: bool, pong: dict[str, Any]
) -> None:
    async def body(ex: FakeBybit, pong: dict[str, Any]) -> None:
        ex.ping_timeout = 0.4
        async with connect(ex.ws_url) as ws:
            ids = set()
            for _ in range(4):  # pings keep the connection past the timeout
                await send(ws, {"op": "ping", "req_id": "p"})
                got = await recv(ws)
                if "args" in got:  # the time of the pong, in ms
                    assert got["args"][0].isdigit()
                    got["args"] = ["<ms>"]
                ids.add(got["conn_id"])
                assert got == pong | {"conn_id": got["conn_id"]}
                await asyncio.sleep(0.15)
            assert len(ids) == 1 and "" not in ids
            await send(ws, {"op": "subscribe", "args": [f"publicTrade.{BTC}"]})
            await recv(ws)  # other frames do not: closed 0.4 s after the last ping
            await asyncio.wait_for(ws.wait_closed(), 2)
            assert (ws.close_code, ws.close_reason) == (1000, "ping timeout")
        await until(lambda: ex.connections() == 0)
        assert ex.handshakes == 1

    with FakeBybit([BTC], kind, pong_args=pong_args) as ex:
        run(lambda: body(ex, pong))


def test_bybit_linear_ticker_snapshot_then_deltas_of_changed_fields() -> None:
    async def body(ex: FakeBybit) -> None:
        async with connect(ex.ws_url) as ws:
            await send(ws, {"op": "subscribe", "args": [f"tickers.{BTC}"]})
            await recv(ws)
            snap = await recv(ws)
            assert list(snap) == ["topic", "type", "data", "cs", "ts"]
            assert snap["type"] == "snapshot"
            for field in ("bid1Price", "ask1Price", "markPrice", "fundingRate", "openInterest"):
                assert isinstance(snap["data"][field], str)
            sent = ex.ticker(BTC, lastPrice="101.5", bid1Size=3.25)
            delta = await recv(ws)
            assert delta["type"] == "delta" and delta["cs"] > snap["cs"]
            assert (
                delta["data"] == sent == {"symbol": BTC, "lastPrice": "101.5", "bid1Size": "3.25"}
            )
            full = ex.ticker_snapshot(BTC)
            again = await recv(ws)
            assert again["type"] == "snapshot" and again["data"] == full
            assert full["lastPrice"] == "101.5" and full["markPrice"] == snap["data"]["markPrice"]

    with FakeBybit([BTC], kind="linear") as ex:
        run(lambda: body(ex))


def test_bybit_refused_handshake_and_drop() -> None:
    async def body(ex: FakeBybit) -> None:
        ex.refuse(403)
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ex.ws_url):
                pass
        assert refused.value.response.status_code == 403
        ex.refuse(None)
        async with connect(ex.ws_url) as ws:
            await send(ws, {"op": "ping"})
            await recv(ws)
            ex.drop()
            with pytest.raises(ConnectionClosed):
                await recv(ws)
            assert ws.close_code == 1006  # no close frame
        assert (ex.handshakes, ex.refused_handshakes, ex.opened) == (2, 1, 1)

    with FakeBybit([BTC]) as ex:
        run(lambda: body(ex))


# -- HyperLiquid --------------------------------------------------------------------------------


async def hl_subscribe(ws: ClientConnection, kind: str, coin: str | None = None) -> Any:
    sub = {"type": kind} | ({"coin": coin} if coin else {})
    await send(ws, {"method": "subscribe", "subscription": sub})
    return await recv(ws)


def test_hyperliquid_greeting_book_images_and_empty_side() -> None:
    async def body(ex: FakeHyperLiquid) -> None:
        async with connect(ex.ws_url) as ws:
            assert await asyncio.wait_for(ws.recv(), 2) == GREETING  # plain text, first
            assert await hl_subscribe(ws, "l2Book", "BTC") == {
                "channel": "subscriptionResponse",
                "data": {"method": "subscribe", "subscription": {
                    "type": "l2Book", "coin": "BTC", "nSigFigs": None, "mantissa": None}},
            }  # fmt: skip
            ex.tick(3)
            for _ in range(4):  # the image sent on subscribing, then one per tick
                image = await recv(ws)
                assert image["channel"] == "l2Book"
                data = image["data"]
                assert list(data) == ["coin", "time", "levels"] and data["coin"] == "BTC"
                bids, asks = data["levels"]
                assert 0 < len(bids) <= 20 and 0 < len(asks) <= 20
                assert set(bids[0]) == {"px", "sz", "n"} and isinstance(bids[0]["n"], int)
                assert float(bids[0]["px"]) < float(asks[0]["px"])
            want_bids, want_asks, time = ex.truth("BTC")
            got = [[(float(lv["px"]), float(lv["sz"])) for lv in side] for side in (bids, asks)]
            assert (got, data["time"]) == ([want_bids, want_asks], time)
            ex.empty_side("BTC", "bids")
            empty = (await recv(ws))["data"]["levels"]
            assert empty[0] == [] and empty[1] and ex.truth("BTC")[0] == []

    with FakeHyperLiquid(["BTC"]) as ex:
        run(lambda: body(ex))


def test_hyperliquid_trades_backfill_spans_connections() -> None:
    async def body(ex: FakeHyperLiquid) -> None:
        before = [ex.trade("BTC", f"{100 + i}.0", "0.5", "A") for i in range(3)]
        async with connect(ex.ws_url) as ws:
            await ws.recv()
            assert (await hl_subscribe(ws, "trades", "BTC"))["channel"] == "subscriptionResponse"
            backfill = await recv(ws)
            assert backfill == {"channel": "trades", "data": before}
            live = ex.trade("BTC", "104.0", "1.25", "B")
            assert await recv(ws) == {"channel": "trades", "data": [live]}
            assert set(live) == {"coin", "side", "px", "sz", "time", "hash", "tid", "users"}
            assert live["hash"].startswith("0x") and len(live["users"]) == 2
        ex.history = 2
        async with connect(ex.ws_url) as ws:
            await ws.recv()
            await hl_subscribe(ws, "trades", "BTC")
            assert (await recv(ws))["data"] == [before[-1], live]  # seen before, sent again

    with FakeHyperLiquid(["BTC"]) as ex:
        run(lambda: body(ex))


def test_hyperliquid_mids_ctx_errors_and_ping() -> None:
    async def body(ex: FakeHyperLiquid) -> None:
        async with connect(ex.ws_url) as ws:
            await ws.recv()
            await hl_subscribe(ws, "allMids")
            mids = (await recv(ws))["data"]["mids"]
            assert {"BTC", "ETH", "SOL", "PURR/USDC"} <= set(mids)  # not only what we asked
            assert await hl_subscribe(ws, "activeAssetCtx", "BTC") == {
                "channel": "subscriptionResponse",
                "data": {"method": "subscribe",
                         "subscription": {"type": "activeAssetCtx", "coin": "BTC"}},
            }  # fmt: skip
            ctx = await recv(ws)
            assert ctx["channel"] == "activeAssetCtx" and ctx["data"]["coin"] == "BTC"
            assert set(ctx["data"]["ctx"]) == {
                "funding", "openInterest", "prevDayPx", "dayNtlVlm", "premium", "oraclePx",
                "markPx", "midPx", "impactPxs", "dayBaseVlm",
            }  # fmt: skip
            assert await hl_subscribe(ws, "l2Book", "XYZ") == {
                "channel": "error", "data": 'Invalid subscription {"type":"l2Book","coin":"XYZ"}'
            }  # fmt: skip
            assert await hl_subscribe(ws, "activeAssetCtx", "BTC") == {
                "channel": "error",
                "data": 'Already subscribed: {"type":"activeAssetCtx","coin":"BTC"}',
            }  # fmt: skip
            await send(ws, {"method": "unsubscribe", "subscription": {"type": "allMids"}})
            assert (await recv(ws))["data"] == {
                "method": "unsubscribe", "subscription": {"type": "allMids"}
            }  # fmt: skip
            await send(ws, {"method": "unsubscribe", "subscription": {"type": "allMids"}})
            assert await recv(ws) == {
                "channel": "error",
                "data": 'Already unsubscribed: {"type":"allMids"}',
            }
            ex.mids()  # unsubscribed: never sent
            await send(ws, {"method": "ping"})
            assert await recv(ws) == {"channel": "pong"}
            assert ex.subscriptions() == {"activeAssetCtx:BTC"}

    with FakeHyperLiquid(["BTC"]) as ex:
        run(lambda: body(ex))


def test_hyperliquid_idle_timeout_and_unknown_coin_close() -> None:
    async def body(ex: FakeHyperLiquid) -> None:
        ex.idle_timeout = 0.4
        async with connect(ex.ws_url) as ws:
            await ws.recv()
            for _ in range(4):  # any client frame keeps it open
                await send(ws, {"method": "ping"})
                await recv(ws)
                await asyncio.sleep(0.15)
            await asyncio.wait_for(ws.wait_closed(), 2)
            assert ws.close_code == 1006  # dropped without a close frame
        ex.idle_timeout = 0
        ex.unknown_coin = "close"
        async with connect(ex.ws_url) as ws:
            await ws.recv()
            await send(ws, {"method": "subscribe", "subscription": {"type": "l2Book", "coin": "X"}})
            with pytest.raises(ConnectionClosed):
                await recv(ws)
        await until(lambda: ex.connections() == 0)
        assert ex.opened == 2

    with FakeHyperLiquid(["BTC"]) as ex:
        run(lambda: body(ex))


# -- Binance ------------------------------------------------------------------------------------


def test_binance_live_subscribe_streams_and_ticker() -> None:
    async def body(ex: FakeBinance) -> None:
        async with connect(f"{ex.ws_url}/stream?streams=btcusdt@depth@100ms") as ws:
            assert ex.subscribed() == {"btcusdt@depth@100ms"}
            ex.tick(1)  # BTC and ETH diffs: only BTC's is on this connection
            assert (await recv(ws))["stream"] == "btcusdt@depth@100ms"
            streams = ["ethusdt@depth@100ms", "ethusdt@ticker", "xyzusdt@trade"]
            await send(ws, {"method": "SUBSCRIBE", "params": streams, "id": 3})
            assert await recv(ws) == {"result": None, "id": 3}  # unknown symbols too
            ex.tick(1)
            assert [(await recv(ws))["stream"] for _ in range(2)] == [
                "btcusdt@depth@100ms", "ethusdt@depth@100ms",
            ]  # fmt: skip
            data = ex.ticker(ETH, c="110.50")
            ticker = await recv(ws)
            assert ticker == {"stream": "ethusdt@ticker", "data": data}
            assert list(data) == [
                "e", "E", "s", "p", "P", "w", "x", "c", "Q", "b", "B", "a", "A", "o", "h", "l",
                "v", "q", "O", "C", "F", "L", "n",
            ]  # fmt: skip
            assert (data["e"], data["s"], data["c"]) == ("24hrTicker", ETH, "110.50")
            bids, asks, _ = ex.truth(ETH, 1)
            assert (float(data["b"]), float(data["a"])) == (bids[0][0], asks[0][0])
            await send(ws, {"method": "UNSUBSCRIBE", "params": ["ethusdt@depth@100ms"], "id": 4})
            assert await recv(ws) == {"result": None, "id": 4}
            ex.ticker(BTC)  # not subscribed: never sent
            ex.tick(1, [ETH])
            ex.tick(1, [BTC])
            assert (await recv(ws))["stream"] == "btcusdt@depth@100ms"
            await send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 5})
            assert await recv(ws) == {
                "result": ["btcusdt@depth@100ms", "ethusdt@ticker", "xyzusdt@trade"], "id": 5
            }  # fmt: skip
        assert ex.received == [
            {"method": "SUBSCRIBE", "params": streams, "id": 3},
            {"method": "UNSUBSCRIBE", "params": ["ethusdt@depth@100ms"], "id": 4},
            {"method": "LIST_SUBSCRIPTIONS", "id": 5},
        ]
        with pytest.raises(urllib.error.HTTPError) as invalid:
            urllib.request.urlopen(
                f"{ex.rest_url}/api/v3/depth?symbol=XYZUSDT&limit=1000", timeout=2
            )
        assert invalid.value.code == 400
        assert orjson.loads(invalid.value.read()) == {"code": -1121, "msg": "Invalid symbol."}

    with FakeBinance([BTC, ETH]) as ex:
        run(lambda: body(ex))
