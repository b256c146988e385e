"""The venues' sans-I/O sessions, tested with strings: frames in, events and actions out.

No socket, no loop, no clock: ``now`` is an argument. What the connection runner and the
replay's player then do with each action is tested in test_worker_*.py and test_drift.py.
"""

from __future__ import annotations

import orjson

from market.events import BookDelta, BookSnapshot, Trade
from market.settings import Settings
from market.venues import SESSIONS
from market.venues.base import (
    FetchSnapshot,
    Later,
    NotListed,
    Reconnect,
    Rename,
    Resubscribe,
    Send,
    Status,
)
from market.venues.binance import URL_SYMBOLS, BinanceSession
from market.venues.bybit import BybitSession
from market.venues.hyperliquid import MIDS_COMPLETE, MIDS_WAIT_S, HyperLiquidSession

SETTINGS = Settings().with_urls(
    BINANCE_WS_URL="wss://ws.example", BINANCE_REST_URL="https://rest.example",
    BYBIT_WS_URL="wss://bybit.example/v5/public/linear", HYPERLIQUID_WS_URL="wss://hl.example/ws",
)  # fmt: skip


def frames(action: object) -> list[dict[str, object]]:
    assert isinstance(action, (Send, Resubscribe))
    return [orjson.loads(f) for f in action.frames]


def test_registry_names_every_venue_session() -> None:
    assert {
        "binance": BinanceSession, "bybit": BybitSession, "hyperliquid": HyperLiquidSession,
    } == SESSIONS  # fmt: skip


# -- Binance --------------------------------------------------------------------------------------


def test_binance_url_names_the_first_symbols_and_subscribes_the_rest() -> None:
    symbols = [f"S{i:03d}USDT" for i in range(URL_SYMBOLS + 2)]
    session = BinanceSession(SETTINGS, symbols)
    assert session.url().startswith("wss://ws.example/stream?streams=s000usdt@depth@100ms/")
    assert "s039usdt@ticker" in session.url() and "s040usdt" not in session.url()
    send, later, *fetches = session.opened(0.0)
    assert frames(send) == [
        {"method": "SUBSCRIBE", "id": 1, "params": [
            "s040usdt@depth@100ms", "s040usdt@trade", "s040usdt@ticker",
            "s041usdt@depth@100ms", "s041usdt@trade", "s041usdt@ticker",
        ]},
    ]  # fmt: skip
    assert later == Later(3.0, "1")
    assert fetches == [
        FetchSnapshot(s, f"https://rest.example/api/v3/depth?symbol={s}&limit=1000")
        for s in symbols[:URL_SYMBOLS]
    ]
    # the confirmation fetches the subscribed symbols' snapshots, once
    events, actions = session.receive('{"result":null,"id":1}', 1.0)
    assert events == [] and [a.symbol for a in actions if isinstance(a, FetchSnapshot)] == [
        "S040USDT", "S041USDT",
    ]  # fmt: skip
    assert session.timer("1", 3.0) == ([], [])


def test_binance_snapshots_replies_shutdown_and_refusals() -> None:
    session = BinanceSession(SETTINGS, ["BTCUSDT"])
    body = b'{"lastUpdateId":7,"bids":[["1.5","2"]],"asks":[["1.6","3"]]}'
    assert session.snapshot("BTCUSDT", body, 5.0) == (
        [BookSnapshot("binance", "BTCUSDT", ((1.5, 2.0),), ((1.6, 3.0),), 7, None, 5.0)],
        (),
    )
    assert session.receive('{"e":"serverShutdown","E":1}', 1.0) == (
        [],
        [Reconnect("the server announced a shutdown (serverShutdown)")],
    )
    refused = '{"error":{"code":2,"msg":"Invalid request"},"id":9}'
    assert session.receive(refused, 1.0) == (
        [],
        [Status("Binance: request 9 refused: Invalid request")],
    )
    assert session.refused("BTCUSDT", 400, b'{"code":-1121,"msg":"Invalid symbol."}') == [
        NotListed("BTCUSDT", "BTCUSDT: not listed on Binance (Invalid symbol.)")
    ]
    assert session.refused("BTCUSDT", 400, b'{"code":-1121}') == []  # said once
    assert session.refused("BTCUSDT", 500, b"oops") == []  # retried by the runner
    assert session.refusal(418, b'{"code":-1003,"msg":"banned"}') == "HTTP 418: banned"
    assert session.rebuild("BTCUSDT", "gap") == [
        FetchSnapshot("BTCUSDT", "https://rest.example/api/v3/depth?symbol=BTCUSDT&limit=1000")
    ]


def test_binance_live_changes_unsubscribe_then_subscribe() -> None:
    session = BinanceSession(SETTINGS, ["BTCUSDT", "ETHUSDT"])
    session.opened(0.0)
    unsub, sub, later = session.changed(["SOLUSDT"], ["ETHUSDT"], 1.0)
    assert frames(unsub)[0]["method"] == "UNSUBSCRIBE"
    assert frames(unsub)[0]["params"] == ["ethusdt@depth@100ms", "ethusdt@trade", "ethusdt@ticker"]
    assert frames(sub)[0]["method"] == "SUBSCRIBE" and later == Later(3.0, "2")
    assert list(session.symbols) == ["BTCUSDT", "SOLUSDT"]


# -- Bybit ----------------------------------------------------------------------------------------


def test_bybit_subscribes_checks_refusals_and_retries_the_rest() -> None:
    session = BybitSession(SETTINGS, ["BTCUSDT", "NOPEUSDT"])
    assert session.category == "linear"
    (send,) = session.opened(0.0)
    (request,) = frames(send)
    assert request["op"] == "subscribe" and request["args"] == [
        "orderbook.50.BTCUSDT", "publicTrade.BTCUSDT", "tickers.BTCUSDT",
        "orderbook.50.NOPEUSDT", "publicTrade.NOPEUSDT", "tickers.NOPEUSDT",
    ]  # fmt: skip
    reply = {"success": False, "op": "subscribe", "req_id": request["req_id"],
             "ret_msg": "error:handler not found,topic:orderbook.50.NOPEUSDT"}  # fmt: skip
    events, (listed, retry) = session.receive(orjson.dumps(reply), 1.0)
    assert events == [] and listed == NotListed(
        "NOPEUSDT", f"NOPEUSDT: not listed on Bybit linear ({reply['ret_msg']})"
    )
    assert frames(retry)[0]["args"] == [
        "orderbook.50.BTCUSDT", "publicTrade.BTCUSDT", "tickers.BTCUSDT",
    ]  # fmt: skip
    already = {"success": False, "op": "subscribe", "ret_msg": "already subscribed"}
    assert session.receive(orjson.dumps(already), 2.0) == ([], [])


def test_bybit_book_frames_and_the_resubscribe_after_a_gap() -> None:
    session = BybitSession(SETTINGS, ["BTCUSDT"])
    snap = ('{"topic":"orderbook.50.BTCUSDT","ts":5,"type":"snapshot",'
            '"data":{"s":"BTCUSDT","b":[["10","1"]],"a":[["11","2"]],"u":7,"seq":1}}')  # fmt: skip
    assert session.receive(snap, 1.0) == (
        [BookSnapshot("bybit", "BTCUSDT", ((10.0, 1.0),), ((11.0, 2.0),), 7, 5, 1.0)],
        (),
    )
    delta = snap.replace('"snapshot"', '"delta"').replace('"u":7', '"u":8')
    assert session.receive(delta, 2.0)[0] == [
        BookDelta("bybit", "BTCUSDT", ((10.0, 1.0),), ((11.0, 2.0),), 8, 8, 7, 5, 2.0)
    ]
    (again,) = session.rebuild("BTCUSDT", "gap")
    assert isinstance(again, Resubscribe) and again.symbol == "BTCUSDT"
    assert [(f["op"], f["args"]) for f in frames(again)] == [
        ("unsubscribe", ["orderbook.50.BTCUSDT"]), ("subscribe", ["orderbook.50.BTCUSDT"]),
    ]  # fmt: skip
    assert session.rebuild("ETHUSDT", "gap") == []  # not watched


# -- HyperLiquid ----------------------------------------------------------------------------------


def mids(coins: list[str]) -> str:
    return orjson.dumps(
        {"channel": "allMids", "data": {"mids": {c: "1.5" for c in coins}}}
    ).decode()


def test_hyperliquid_asks_mids_first_then_subscribes_the_listed_coins_in_their_case() -> None:
    session = HyperLiquidSession(SETTINGS, ["BTC", "KPEPE", "NOPE"])
    send, later = session.opened(10.0)
    assert frames(send) == [{"method": "subscribe", "subscription": {"type": "allMids"}}]
    assert later == Later(MIDS_WAIT_S, "books")
    listed = ["BTC", "kPEPE", *[f"C{i}" for i in range(MIDS_COMPLETE)]]
    events, actions = session.receive(mids(listed), 11.0)
    assert len(events) == len(listed)
    rename, unlisted, subscribe = actions
    assert rename == Rename("KPEPE", "kPEPE")
    assert unlisted == NotListed("NOPE", "NOPE: not listed on HyperLiquid")
    assert [f["subscription"] for f in frames(subscribe)] == [
        {"type": kind, "coin": coin}
        for coin in ("BTC", "kPEPE") for kind in ("l2Book", "trades", "activeAssetCtx")
    ]  # fmt: skip
    assert session.timer("books", 12.0) == ([], [])  # asked already: once is enough


def test_hyperliquid_first_trades_after_subscribing_are_backfill_and_repeats_dropped() -> None:
    session = HyperLiquidSession(SETTINGS, ["BTC"])
    session.opened(100.0)
    session.timer("books", 102.0)  # no allMids came: subscribed at t = 102 s

    def trades(*rows: tuple[int, int]) -> str:
        data = [{"coin": "BTC", "side": "B", "px": "10", "sz": "1", "time": ms, "hash": "0x",
                 "tid": tid, "users": []} for tid, ms in rows]  # fmt: skip
        return orjson.dumps({"channel": "trades", "data": data}).decode()

    events, _ = session.receive(trades((1, 101_000), (2, 103_000)), 103.5)
    assert [(t.trade_id, t.backfill) for t in events if isinstance(t, Trade)] == [
        ("1", True), ("2", False),
    ]  # fmt: skip
    events, _ = session.receive(trades((2, 103_000), (3, 104_000)), 104.5)
    assert [(t.trade_id, t.backfill) for t in events if isinstance(t, Trade)] == [("3", False)]


def test_hyperliquid_error_reply_naming_a_coin_marks_it() -> None:
    session = HyperLiquidSession(SETTINGS, ["NOPE"])
    error = orjson.dumps(
        {"channel": "error", "data": 'Invalid subscription {"type":"l2Book","coin":"NOPE"}'}
    )
    events, actions = session.receive(error, 1.0)
    assert events == [] and [type(a) for a in actions] == [NotListed]
    other = '{"channel":"error","data":"rate limited"}'
    assert session.receive(other, 2.0) == ([], [Status("HyperLiquid: rate limited")])
