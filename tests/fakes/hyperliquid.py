"""A fake HyperLiquid WebSocket on 127.0.0.1: whole-image ``l2Book``, ``trades`` with a
backfill, ``allMids`` and ``activeAssetCtx``, over one true book per coin, scripted to misbehave.

It runs in its own thread with its own asyncio loop; tests drive it with thread-safe methods:

    with FakeHyperLiquid(["BTC"]) as ex:
        worker = Worker(settings.with_urls(HYPERLIQUID_WS_URL=ex.ws_url))
        ex.tick(5)                       # 5 new images per coin, sent to the l2Book subscribers
        ex.empty_side("BTC", "bids")     # images now carry no bids: {"levels":[[],[…]]}
        ex.trade("BTC", "100.25", "0.5", "A")  # live, and kept for the next subscriber's backfill
        ex.mids()                        # an allMids frame (with coins nobody asked for)
        ex.idle_timeout = 1.0            # drop connections silent for 1 s (HL: 60 s)
        ex.unknown_coin = "close"        # an unknown coin closes the socket instead of an error
        ex.refuse(429), ex.drop(), ex.stall(True), ex.garbage("x")
        ex.subscriptions(), ex.received  # the newest connection's subscriptions; client frames

Every connection starts with the text frame "Websocket connection established.". ``truth``
is the last image made for a coin (on subscribe, ``tick`` or ``empty_side``), which the client
saw if it was subscribed and the fake not stalled. Frames are generated only when asked.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, Literal

import orjson

from tests.fakes.rest import RestServer, minute_candles
from tests.fakes.server import (
    Conn,
    FakeServer,
    Frame,
    Keyed,
    TrueBook,
    dumps,
)

GREETING = "Websocket connection established."
IMAGE_DEPTH = 20
EXTRA_COINS = ("ETH", "SOL")  # listed besides the constructor's coins
SPOT_MIDS = {"@107": "31.052", "PURR/USDC": "0.20124"}  # allMids keys that are not perps
TRADE_HISTORY_KEPT = 100


def _hl_num(hundredths: int) -> str:
    """HyperLiquid prints numbers with the zeros cut but one decimal kept: "105055.0"."""
    text = f"{hundredths / 100:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _frame(channel: str, data: object) -> str:
    return dumps({"channel": channel, "data": data})


def _key(kind: str, coin: str | None) -> str:
    return kind if coin is None else f"{kind}:{coin}"


class FakeHyperLiquid(FakeServer):
    thread_name = "fake-hyperliquid"
    refusal_body = b"429 Too Many Requests"

    def __init__(
        self,
        coins: Iterable[str],
        *,
        seed: int = 13,
        history: int = 10,
        idle_timeout: float = 0.0,
        unknown_coin: Literal["error", "close"] = "error",
    ) -> None:
        super().__init__()
        self.rng = random.Random(seed)
        coins = list(coins)
        self.listed: set[str] = set(coins) | set(EXTRA_COINS)  # coins that exist
        self.history = history  # trades replayed to a new ``trades`` subscriber
        self.idle_timeout = idle_timeout  # > 0: drop a connection silent for this long
        # what an unknown coin gets: an error frame, or the socket closed without a word
        self.unknown_coin = unknown_coin
        self.books: dict[str, TrueBook] = {}
        self._images: dict[str, dict[str, Any]] = {}  # coin → the last l2Book data made
        self._empty: set[tuple[str, str]] = set()  # (coin, "bids" | "asks") sent empty
        self._trades: dict[str, deque[dict[str, Any]]] = {}
        self._ctx: dict[str, dict[str, Any]] = {}
        for coin in [*coins, *EXTRA_COINS]:
            self._book(coin)
        self.rest = RestServer(self._rest)  # POST /info candleSnapshot (the history backfill)

    # -- the truth ----------------------------------------------------------------------------

    def _book(self, coin: str) -> TrueBook:
        book = self.books.get(coin)
        if book is None:
            mid = 100.0 + 10 * len(self.books)
            book = self.books[coin] = TrueBook(coin, self.rng, mid, px=_hl_num, qty=_hl_num)
        return book

    def _image(self, coin: str) -> dict[str, Any]:
        """A new whole image of the coin's book (its top 20 a side) and remember it."""
        bids, asks = self._book(coin).sides(IMAGE_DEPTH)
        levels = [
            [] if (coin, side) in self._empty
            else [{"px": p, "sz": q, "n": self.rng.randint(1, 20)} for p, q in rows]
            for side, rows in (("bids", bids), ("asks", asks))
        ]  # fmt: skip
        data = {"coin": coin, "time": self._now_ms(), "levels": levels}
        self._images[coin] = data
        return data

    def _mids(self) -> dict[str, str]:
        mids = dict(SPOT_MIDS)
        for coin in sorted(self.listed):
            bids, asks = self._book(coin).sides(1)
            if bids and asks:
                mids[coin] = _hl_num(round((float(bids[0][0]) + float(asks[0][0])) * 50))
        return mids

    def _ctx_of(self, coin: str) -> dict[str, Any]:
        ctx = self._ctx.get(coin)
        if ctx is None:
            bids, asks = self._book(coin).sides(1)
            bid, ask = float(bids[0][0]), float(asks[0][0])
            mid = (bid + ask) / 2
            ctx = self._ctx[coin] = {
                "funding": "0.0000125", "openInterest": "36585.31848",
                "prevDayPx": _hl_num(round(mid * 98)), "dayNtlVlm": f"{49116.08533 * mid:.10f}",
                "premium": "-0.0006413454", "oraclePx": _hl_num(round(mid * 100)),
                "markPx": _hl_num(round(mid * 100)), "midPx": _hl_num(round(mid * 100)),
                "impactPxs": [bids[0][0], asks[0][0]], "dayBaseVlm": "49116.08533",
            }  # fmt: skip
        return ctx

    # -- requests -----------------------------------------------------------------------------

    def _on_open(self, conn: Conn) -> None:
        conn.put(GREETING)

    def _on_frame(self, conn: Conn, raw: Frame, msg: Any) -> None:
        """``subscribe`` / ``unsubscribe`` / ``ping``, answered as HyperLiquid answers them."""
        conn.alive_at = time.monotonic()  # any client frame keeps a connection alive
        method = msg.get("method") if isinstance(msg, dict) else None
        if method == "ping":
            conn.put(dumps({"channel": "pong"}))
            return
        sub = msg.get("subscription") if isinstance(msg, dict) else None
        kind = sub.get("type") if isinstance(sub, dict) else None
        coin = sub.get("coin") if isinstance(sub, dict) else None
        needs_coin = kind in ("l2Book", "trades", "activeAssetCtx")
        if (
            method not in ("subscribe", "unsubscribe")
            or kind not in ("l2Book", "trades", "allMids", "activeAssetCtx")
            or (needs_coin and not isinstance(coin, str))
        ):
            text = raw if isinstance(raw, str) else raw.decode(errors="replace")
            self._error(conn, f"Error parsing JSON into valid websocket request: {text}")
            return
        assert isinstance(sub, dict) and isinstance(kind, str)
        echo: dict[str, Any] = {"type": kind}
        if needs_coin:
            echo["coin"] = coin
        if kind == "l2Book":
            echo |= {"nSigFigs": sub.get("nSigFigs"), "mantissa": sub.get("mantissa")}
        key = _key(kind, coin if needs_coin else None)
        if needs_coin and coin not in self.listed:
            if self.unknown_coin == "close":  # what a live probe saw: no reply, closed ~0.1 s
                self._loop.call_later(0.1, conn.ws.transport.abort)
            else:
                self._error(conn, f"Invalid subscription {dumps(sub)}")
            return
        if method == "unsubscribe":
            if key not in conn.topics:
                self._error(conn, f"Already unsubscribed: {dumps(echo)}")
                return
            conn.topics.discard(key)
            reply = {"method": "unsubscribe", "subscription": echo}
            conn.put(_frame("subscriptionResponse", reply))
            return
        if key in conn.topics:
            self._error(conn, f"Already subscribed: {dumps(echo)}")
            return
        conn.topics.add(key)
        conn.put(_frame("subscriptionResponse", {"method": "subscribe", "subscription": echo}))
        first = self._first_frame(kind, coin)
        if first is not None:
            conn.put(first)

    def _first_frame(self, kind: str, coin: str | None) -> str | None:
        """What a new subscriber gets at once: an image, the trade backfill, mids, the ctx."""
        if kind == "allMids":
            return _frame("allMids", {"mids": self._mids()})
        assert coin is not None
        if kind == "l2Book":
            return _frame("l2Book", self._image(coin))
        if kind == "activeAssetCtx":
            return _frame(kind, {"coin": coin, "ctx": self._ctx_of(coin)})
        recent = list(self._trades.get(coin, ()))[-self.history :] if self.history > 0 else []
        return _frame("trades", recent) if recent else None

    def _error(self, conn: Conn, text: str) -> None:
        conn.put(_frame("error", text))

    def _expired(self, conn: Conn, now: float) -> bool:
        return self.idle_timeout > 0 and now - conn.alive_at > self.idle_timeout

    async def _expire(self, conn: Conn) -> None:
        conn.ws.transport.abort()  # HyperLiquid closes idle sockets without a close frame

    # -- REST: candleSnapshot (the history backfill) ------------------------------------------

    @property
    def rest_url(self) -> str:
        return self.rest.url

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.rest.close()

    def _rest(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, bytes]:
        """``POST /info {"type":"candleSnapshot","req":{coin, interval, startTime, endTime}}``
        over the trades kept (``minute_candles``), as HyperLiquid answers it."""
        with self._lock:
            status = self.refuse_status
        if status is not None:
            return status, self.refusal_body
        try:
            req = orjson.loads(body)["req"]
            coin, start, end = req["coin"], int(req["startTime"]), int(req["endTime"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return 422, b"Failed to deserialize the JSON body into the target type"
        if path != "/info" or method != "POST":
            return 404, b"{}"
        with self._lock:
            kept = list(self._trades.get(coin, ()))
        trades = [(t["time"], float(t["px"]), float(t["sz"]), t["side"] == "B") for t in kept]
        rows = [
            {"t": r["t"], "T": r["t"] + 59_999, "s": coin, "i": "1m", "o": str(r["o"]),
             "c": str(r["c"]), "h": str(r["h"]), "l": str(r["l"]), "v": str(r["v"]), "n": r["n"]}
            for r in minute_candles(trades)
            if start <= r["t"] <= end
        ]  # fmt: skip
        return 200, orjson.dumps(rows)

    # -- scripting (thread-safe) --------------------------------------------------------------

    def tick(self, n: int = 1, coins: Iterable[str] | None = None) -> None:
        """``n`` changes per coin (default: every coin with a book), each followed by a new
        image sent to the coin's ``l2Book`` subscribers (unless stalled)."""
        with self._lock:
            frames: list[Keyed] = []
            for _ in range(n):
                for coin in list(coins or self.books):
                    self._book(coin).change()
                    data = self._image(coin)
                    frames.append((_key("l2Book", coin), _frame("l2Book", data)))
            marks = self._enqueue(frames)
        self._wait(marks)

    def empty_side(self, coin: str, side: Literal["bids", "asks"], on: bool = True) -> None:
        """Send that side empty in this and later images (``on=False``: send it again)."""
        if side not in ("bids", "asks"):
            raise ValueError(f"side must be 'bids' or 'asks', not {side!r}")
        with self._lock:
            (self._empty.add if on else self._empty.discard)((coin, side))
            frame = _frame("l2Book", self._image(coin))
            marks = self._enqueue([(_key("l2Book", coin), frame)])
        self._wait(marks)

    def trade(self, coin: str, px: str, sz: str, side: Literal["B", "A"] = "B") -> dict[str, Any]:
        """One trade (``side`` is the taker's: "B" bought, "A" sold), sent live in its own
        frame and kept for the backfill. Returns it as sent."""
        return self.trades(coin, [(px, sz, side)])[0]

    def trades(self, coin: str, fills: Iterable[tuple[str, str, str]]) -> list[dict[str, Any]]:
        """Several trades ``(px, sz, side)`` in one frame; returns them as sent."""
        with self._lock:
            history = self._trades.setdefault(coin, deque(maxlen=TRADE_HISTORY_KEPT))
            data = []
            for px, sz, side in fills:
                trade = {
                    "coin": coin, "side": side, "px": px, "sz": sz, "time": self._now_ms(),
                    "hash": f"0x{self.rng.getrandbits(256):064x}",
                    "tid": self.rng.randint(10**13, 10**15),  # not monotonic, as on HyperLiquid
                    "users": [f"0x{self.rng.getrandbits(160):040x}" for _ in range(2)],
                }  # fmt: skip
                history.append(trade)
                data.append(trade)
            marks = self._enqueue([(_key("trades", coin), _frame("trades", data))])
        self._wait(marks)
        return data

    def mids(self) -> dict[str, str]:
        """Send an ``allMids`` frame (every listed coin, and a few spot keys); returns it."""
        with self._lock:
            mids = self._mids()
            marks = self._enqueue([("allMids", _frame("allMids", {"mids": mids}))])
        self._wait(marks)
        return mids

    def asset_ctx(self, coin: str, **fields: object) -> dict[str, Any]:
        """Change ``activeAssetCtx`` fields (HyperLiquid's names) and send the whole ctx."""
        with self._lock:
            ctx = self._ctx_of(coin)
            ctx.update({k: v if isinstance(v, list) else str(v) for k, v in fields.items()})
            frame = _frame("activeAssetCtx", {"coin": coin, "ctx": ctx})
            marks = self._enqueue([(_key("activeAssetCtx", coin), frame)])
            sent = dict(ctx)
        self._wait(marks)
        return sent

    def subscriptions(self, conn: int | None = None) -> set[str]:
        """``"l2Book:BTC"``, ``"trades:BTC"``, ``"activeAssetCtx:BTC"``, ``"allMids"`` of
        connection number ``conn`` (default: the newest open one)."""
        return self.subscribed(conn)

    def truth(
        self, coin: str, n: int = 20
    ) -> tuple[list[tuple[float, float]], list[tuple[float, float]], int]:
        """The last image made for the coin, best first, and its ``time`` (no update ids on
        HyperLiquid); a coin never imaged is imaged now (not sent)."""
        with self._lock:
            image = self._images.get(coin) or self._image(coin)
            bids, asks = (
                [(float(level["px"]), float(level["sz"])) for level in side[:n]]
                for side in image["levels"]
            )
            return bids, asks, image["time"]
