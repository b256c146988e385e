"""A fake Bybit v5 public WebSocket on 127.0.0.1 (spot or linear): ``orderbook.50``,
``publicTrade`` and ``tickers`` over one true 50-level book per symbol, scripted to misbehave.

It runs in its own thread with its own asyncio loop; tests drive it with thread-safe methods:

    with FakeBybit(["BTCUSDT"], kind="spot") as ex:
        worker = Worker(settings.with_urls(BYBIT_WS_URL=ex.ws_url))
        ex.tick(50)              # 50 deltas per symbol, applied to the truth, sent to subscribers
        ex.skip(3, "BTCUSDT")    # 3 deltas applied to the truth but never sent: a gap in ``u``
        ex.restart("BTCUSDT")    # a service restart: a new book as a ``delta`` with ``u == 1``
        ex.trade("BTCUSDT", "100.25", "0.5", "Sell")
        ex.ticker("BTCUSDT", lastPrice="101.5")  # spot: a snapshot; linear: a delta of these
        ex.listed.discard("ETHUSDT")  # subscribing ETHUSDT now fails: "Invalid symbol :[…]"
        ex.ping_timeout = 1.0    # close connections that have not pinged for 1 s
        ex.refuse(403)           # answer every handshake with HTTP 403 (a region block)
        ex.subscribed(), ex.received  # the newest connection's topics; every client frame

The truth never holds more than 50 levels a side: a level pushed out of the top 50 leaves with
size "0" in the delta, so a snapshot and its deltas rebuild the truth exactly. Requests are
answered the way Bybit answers them (see ``_on_frame``); data for a topic goes only to the
connections subscribed to it. Frames are generated only when asked; the server stops on exit.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterable
from typing import Any, Literal

import orjson

from tests.fakes.rest import RestServer, TradeLog, minute_candles
from tests.fakes.server import (
    Conn,
    FakeServer,
    Frame,
    Keyed,
    TrueBook,
    dumps,
)

DEPTH = 50
MAX_SPOT_ARGS = 10
TOPIC_KINDS = (f"orderbook.{DEPTH}", "publicTrade", "tickers")

SPOT_TICKER_FIELDS = (
    "symbol", "lastPrice", "highPrice24h", "lowPrice24h", "prevPrice24h", "volume24h",
    "turnover24h", "price24hPcnt", "usdIndexPrice",
)  # fmt: skip
LINEAR_TICKER_FIELDS = (
    "symbol", "tickDirection", "price24hPcnt", "lastPrice", "prevPrice24h", "highPrice24h",
    "lowPrice24h", "prevPrice1h", "markPrice", "indexPrice", "openInterest", "openInterestValue",
    "turnover24h", "volume24h", "nextFundingTime", "fundingRate", "bid1Price", "bid1Size",
    "ask1Price", "ask1Size",
)  # fmt: skip


def _strip(text: str) -> str:
    """``"75845.40"`` → ``"75845.4"``, ``"75844.00"`` → ``"75844"`` (spot prints numbers so)."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def _spot_num(hundredths: int) -> str:
    return _strip(f"{hundredths / 100:.2f}")


def _linear_px(ticks: int) -> str:
    return f"{ticks / 100:.2f}"


def _linear_qty(hundredths: int) -> str:
    return f"{hundredths / 100:.3f}" if hundredths else "0"


class FakeBybit(FakeServer):
    thread_name = "fake-bybit"
    refusal_body = (
        b"<html><body><h1>403 ERROR</h1><p>The Amazon CloudFront distribution is configured "
        b"to block access from your country.</p></body></html>"
    )

    def __init__(
        self,
        symbols: Iterable[str],
        kind: Literal["spot", "linear"] = "spot",
        *,
        seed: int = 11,
        ping_timeout: float = 0.0,
        pong_args: bool = False,
    ) -> None:
        super().__init__()
        if kind not in ("spot", "linear"):
            raise ValueError(f"kind must be 'spot' or 'linear', not {kind!r}")
        self.kind = kind
        self.rng = random.Random(seed)
        symbols = list(symbols)
        self.listed: set[str] = set(symbols)  # symbols that exist: others are refused
        self.ping_timeout = ping_timeout  # > 0: close a connection not pinging for this long
        self.pong_args = pong_args  # answer pings {"op":"pong","args":[ms]} (option/private)
        # True: a level pushed out of the top 50 leaves silently (no "0" sent for it), so only
        # a client that keeps the 50-level window itself stays equal to the truth
        self.silent_trim = False
        self.trimmed = 0  # levels pushed out of the window so far
        self.books: dict[str, TrueBook] = {}
        self._seq: dict[str, int] = {}
        self._mids: dict[str, float] = {}
        self._tickers: dict[str, dict[str, str]] = {}
        self._last_price: dict[str, float] = {}  # the last trade's, for its tick direction
        self._direction: dict[str, str] = {}  # "PlusTick" or "MinusTick"
        self._cs = self.rng.randint(10**9, 10**10)  # the cross sequence of ticker frames
        self.trade_log: dict[str, TradeLog] = {}  # every trade sent: the klines' truth
        self.rest = RestServer(self._rest)  # GET /v5/market/kline (the history backfill)
        for symbol in symbols:
            self._book(symbol)

    # -- the truth ----------------------------------------------------------------------------

    def _book(self, symbol: str) -> TrueBook:
        """The symbol's book, made on first use (the caller holds the lock once started)."""
        book = self.books.get(symbol)
        if book is None:
            self._mids[symbol] = 100.0 + 10 * len(self.books)
            book = self.books[symbol] = self._new_book(symbol, self._mids[symbol])
            self._seq[symbol] = self.rng.randint(10**10, 10**11)
        return book

    def _new_book(self, symbol: str, mid: float) -> TrueBook:
        if self.kind == "spot":
            book = TrueBook(symbol, self.rng, mid, px=_spot_num, qty=_spot_num)
        else:
            book = TrueBook(symbol, self.rng, mid, px=_linear_px, qty=_linear_qty)
        book.update_id = self.rng.randint(1_000_000, 9_999_999)
        return book

    def _delta(
        self, symbol: str, pushed: bool = False
    ) -> tuple[list[list[str]], list[list[str]]]:
        """Change the truth by one update (``u`` + 1); return the changed levels, best first.
        ``pushed``: the change is a new best bid (taking the best ask's price when the spread
        is one tick), so a full window drops its worst bid."""
        book = self._book(symbol)
        b, a = book.change() if not pushed else self._push(book)
        gone_b, gone_a = book.trim(DEPTH)  # out of the top 50: "0", as Bybit sends it
        if not self.silent_trim:
            b += [[p, "0"] for p in gone_b]
            a += [[p, "0"] for p in gone_a]
        self.trimmed += len(gone_b) + len(gone_a)
        book.update_id += 1
        self._seq[symbol] += self.rng.randint(1, 40)
        return _levels(b, True), _levels(a, False)

    def _book_frame(
        self, symbol: str, kind: str, b: list[list[str]], a: list[list[str]]
    ) -> tuple[str, str]:
        ts = self._now_ms()
        topic = f"orderbook.{DEPTH}.{symbol}"
        data = {"s": symbol, "b": b, "a": a, "u": self._book(symbol).update_id,
                "seq": self._seq[symbol]}  # fmt: skip
        frame = {"topic": topic, "ts": ts, "type": kind, "data": data, "cts": ts - 3}
        return topic, dumps(frame)

    def _snapshot_frame(self, symbol: str) -> tuple[str, str]:
        bids, asks = self._book(symbol).sides(DEPTH)
        return self._book_frame(symbol, "snapshot", bids, asks)

    def _ticker_state(self, symbol: str) -> dict[str, str]:
        """The symbol's ticker as Bybit would send it whole (made up once, then as changed)."""
        state = self._tickers.get(symbol)
        if state is None:
            bids, asks = self._book(symbol).sides(1)
            last = (float(bids[0][0]) + float(asks[0][0])) / 2
            prev = last * 0.98
            full = {
                "symbol": symbol, "lastPrice": f"{last:.2f}", "highPrice24h": f"{last * 1.01:.2f}",
                "lowPrice24h": f"{prev * 0.99:.2f}", "prevPrice24h": f"{prev:.2f}",
                "volume24h": "6780.866843", "turnover24h": f"{6780.866843 * last:.8f}",
                "price24hPcnt": f"{last / prev - 1:.4f}", "usdIndexPrice": f"{last:.7f}",
                "tickDirection": "ZeroPlusTick", "prevPrice1h": f"{last:.2f}",
                "markPrice": f"{last:.2f}", "indexPrice": f"{last:.2f}",
                "openInterest": "58117.022", "openInterestValue": f"{58117.022 * last:.2f}",
                "nextFundingTime": "1715760000000", "fundingRate": "0.00008055",
                "bid1Price": bids[0][0], "bid1Size": bids[0][1],
                "ask1Price": asks[0][0], "ask1Size": asks[0][1],
            }  # fmt: skip
            names = SPOT_TICKER_FIELDS if self.kind == "spot" else LINEAR_TICKER_FIELDS
            state = self._tickers[symbol] = {k: full[k] for k in names}
        return state

    def _ticker_frame(self, symbol: str, kind: str, fields: dict[str, str]) -> tuple[str, str]:
        self._cs += self.rng.randint(1, 500)
        topic = f"tickers.{symbol}"
        names = SPOT_TICKER_FIELDS if self.kind == "spot" else LINEAR_TICKER_FIELDS
        data = {k: fields[k] for k in names if k in fields} | {
            k: v for k, v in fields.items() if k not in names
        }
        ts = self._now_ms()
        if self.kind == "spot":
            frame: dict[str, Any] = {"topic": topic, "ts": ts, "type": kind, "cs": self._cs}
            frame["data"] = data
        else:
            frame = {"topic": topic, "type": kind, "data": data, "cs": self._cs, "ts": ts}
        return topic, dumps(frame)

    # -- requests -----------------------------------------------------------------------------

    def _on_open(self, conn: Conn) -> None:
        conn.ident = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _reply(self, conn: Conn, op: str, req_id: str, ok: bool, message: str) -> None:
        conn.put(dumps({"success": ok, "ret_msg": message, "conn_id": conn.ident,
                        "req_id": req_id, "op": op}))  # fmt: skip

    def _on_frame(self, conn: Conn, raw: Frame, msg: Any) -> None:
        """``subscribe`` / ``unsubscribe`` / ``ping``, answered as Bybit answers them.

        A request with one bad topic fails whole (nothing of it is subscribed), naming the first:
        spot "Invalid symbol :[t]" for an unlisted symbol, linear "error:handler not found,
        topic:t" (also both kinds for a topic the fake does not serve); "error:already
        subscribed,topic:t"; spot refuses more than 10 args ("args size >10").
        """
        if not isinstance(msg, dict):
            self._reply(conn, "", "", False, f"Failed to decode incoming data: {raw!r:.60}")
            return
        op, req_id = str(msg.get("op", "")), str(msg.get("req_id", ""))
        if op == "ping":
            conn.alive_at = time.monotonic()
            if self.pong_args:
                conn.put(dumps({"req_id": req_id, "op": "pong", "args": [str(self._now_ms())],
                                "conn_id": conn.ident}))  # fmt: skip
            else:
                self._reply(conn, "ping", req_id, True, "pong")
            return
        if op not in ("subscribe", "unsubscribe"):
            self._reply(conn, op, req_id, False, "error:invalid op")
            return
        args = msg.get("args")
        if not isinstance(args, list) or not all(isinstance(t, str) for t in args):
            self._reply(conn, op, req_id, False, "error:args must be a list of topics")
            return
        if self.kind == "spot" and len(args) > MAX_SPOT_ARGS:
            self._reply(conn, op, req_id, False, f"args size >{MAX_SPOT_ARGS}")
            return
        ok_message = op if self.kind == "spot" else ""
        if op == "unsubscribe":
            conn.topics.difference_update(args)
            self._reply(conn, op, req_id, True, ok_message)
            return
        for topic in args:
            refusal = self._refusal(conn, topic)
            if refusal:
                self._reply(conn, op, req_id, False, refusal)
                return
        conn.topics.update(args)
        self._reply(conn, op, req_id, True, ok_message)
        for topic in dict.fromkeys(args):  # the first frame of a book topic is its snapshot
            kind, _, symbol = topic.rpartition(".")
            if kind == f"orderbook.{DEPTH}":
                conn.put(self._snapshot_frame(symbol)[1])
            elif kind == "tickers":
                conn.put(self._ticker_frame(symbol, "snapshot", self._ticker_state(symbol))[1])

    def _refusal(self, conn: Conn, topic: str) -> str:
        kind, _, symbol = topic.rpartition(".")
        if kind not in TOPIC_KINDS:
            return f"error:handler not found,topic:{topic}"
        if symbol not in self.listed:
            if self.kind == "spot":
                return f"Invalid symbol :[{topic}]"
            return f"error:handler not found,topic:{topic}"
        if topic in conn.topics:
            return f"error:already subscribed,topic:{topic}"
        return ""

    def _expired(self, conn: Conn, now: float) -> bool:
        return self.ping_timeout > 0 and now - conn.alive_at > self.ping_timeout

    async def _expire(self, conn: Conn) -> None:
        await conn.ws.close(1000, "ping timeout")

    # -- scripting (thread-safe) --------------------------------------------------------------

    def tick(self, n: int = 1, symbols: Iterable[str] | None = None) -> None:
        """``n`` deltas per symbol (default: every one with a book), applied to the truth and
        sent to the connections on ``orderbook.50.<symbol>`` (unless stalled)."""
        with self._lock:
            frames: list[Keyed] = []
            for _ in range(n):
                for symbol in list(symbols or self.books):
                    b, a = self._delta(symbol)
                    frames.append(self._book_frame(symbol, "delta", b, a))
            marks = self._enqueue(frames)
        self._wait(marks)

    @staticmethod
    def _push(book: TrueBook) -> tuple[list[list[str]], list[list[str]]]:
        best_bid = max(round(float(p) * 100) for p in book.bids)
        best_ask = min(round(float(p) * 100) for p in book.asks)
        a: list[list[str]] = []
        if best_bid + 1 == best_ask:
            a.append([book._px(best_ask), book._qty(0)])
            del book.asks[book._px(best_ask)]
        price, qty = book._px(best_bid + 1), book._qty(77)
        book.bids[price] = qty
        return [[price, qty]], a

    def push(self, symbol: str) -> None:
        """One delta with a new best bid: a full window pushes its worst bid out."""
        with self._lock:
            b, a = self._delta(symbol, pushed=True)
            marks = self._enqueue([self._book_frame(symbol, "delta", b, a)])
        self._wait(marks)

    def fill(self, symbol: str) -> None:
        """Make the truth a full 50 levels a side (before anyone subscribes): from then on
        every new price inside the window pushes one out of it."""
        with self._lock:
            book = self._book(symbol)
            worst_bid = min(float(p) for p in book.bids)
            worst_ask = max(float(p) for p in book.asks)
            for i in range(1, DEPTH):
                book.bids.setdefault(book._px(round(worst_bid * 100) - i), book._qty(100 + i))
                book.asks.setdefault(book._px(round(worst_ask * 100) + i), book._qty(100 + i))
            book.trim(DEPTH)

    def skip(self, n: int = 1, symbol: str | None = None) -> None:
        """Deltas applied to the truth (``u`` advances) but never sent: the client sees a gap."""
        with self._lock:
            for _ in range(n):
                self._delta(symbol or next(iter(self.books)))

    def resnapshot(self, symbol: str) -> None:
        """Send a fresh ``snapshot`` of the truth to the symbol's book subscribers."""
        with self._lock:
            marks = self._enqueue([self._snapshot_frame(symbol)])
        self._wait(marks)

    def restart(self, symbol: str) -> None:
        """A Bybit service restart: the truth is a new book and arrives as a ``delta`` frame
        with ``u == 1`` holding all of it (the client must take it as a snapshot)."""
        with self._lock:
            self._book(symbol)
            book = self.books[symbol] = self._new_book(symbol, self._mids[symbol])
            book.update_id = 1
            bids, asks = book.sides(DEPTH)
            marks = self._enqueue([self._book_frame(symbol, "delta", bids, asks)])
        self._wait(marks)

    # -- REST: klines (the history backfill) --------------------------------------------------

    @property
    def rest_url(self) -> str:
        return self.rest.url

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.rest.close()

    def _rest(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, bytes]:
        """``GET /v5/market/kline?category=…&symbol=…&interval=1[&limit=…]``: the trades sent
        (``minute_candles``), newest first, as Bybit answers it."""
        with self._lock:
            status = self.refuse_status
            symbol = query.get("symbol", [""])[0]
            trades = list(self.trade_log.get(symbol, []))
            listed = symbol in self.listed
        if status is not None:
            return status, self.refusal_body
        if path != "/v5/market/kline":
            return 404, b"{}"
        if not listed:
            return 200, b'{"retCode":10001,"retMsg":"Not supported symbols","result":{}}'
        limit = min(int(query.get("limit", ["200"])[0]), 1000)
        rows = [
            [str(r["t"]), *(str(r[k]) for k in ("o", "h", "l", "c", "v", "quote"))]
            for r in reversed(minute_candles(trades)[-limit:])
        ]
        result = {"category": self.kind, "symbol": symbol, "list": rows}
        return 200, orjson.dumps({"retCode": 0, "retMsg": "OK", "result": result, "time": 0})

    def trade(self, symbol: str, price: str, qty: str, side: str = "Buy") -> dict[str, Any]:
        """One trade (``side`` is the taker's: "Buy" or "Sell") in one ``publicTrade`` frame."""
        return self.trades(symbol, [(price, qty, side)])[0]

    def trades(self, symbol: str, fills: Iterable[tuple[str, str, str]]) -> list[dict[str, Any]]:
        """Several trades ``(price, qty, side)`` in one frame; returns them as sent."""
        with self._lock:
            ts = self._now_ms()
            data = []
            for price, qty, side in fills:
                last, now = self._last_price.get(symbol), float(price)
                if last is not None and now != last:
                    self._direction[symbol] = "PlusTick" if now > last else "MinusTick"
                    tick = self._direction[symbol]
                else:
                    tick = "Zero" + self._direction.get(symbol, "PlusTick")
                self._last_price[symbol] = now
                log = self.trade_log.setdefault(symbol, [])
                log.append((ts, now, float(qty), side.capitalize() == "Buy"))
                data.append({
                    "T": ts, "s": symbol, "S": side.capitalize(), "v": qty, "p": price, "L": tick,
                    "i": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), "BT": False,
                })  # fmt: skip
            topic = f"publicTrade.{symbol}"
            frame = {"topic": topic, "type": "snapshot", "ts": ts, "data": data}
            marks = self._enqueue([(topic, dumps(frame))])
        self._wait(marks)
        return data

    def ticker(self, symbol: str, **fields: object) -> dict[str, str]:
        """Change ticker fields (Bybit's names) and send them: spot sends the whole ticker as a
        ``snapshot``, linear a ``delta`` of just these fields. Returns what was sent."""
        with self._lock:
            changed = {"symbol": symbol} | {k: str(v) for k, v in fields.items()}
            state = self._ticker_state(symbol)
            state.update(changed)
            if self.kind == "spot":
                sent, frame = dict(state), self._ticker_frame(symbol, "snapshot", state)
            else:
                sent, frame = changed, self._ticker_frame(symbol, "delta", changed)
            marks = self._enqueue([frame])
        self._wait(marks)
        return sent

    def ticker_snapshot(self, symbol: str) -> dict[str, str]:
        """Send the whole ticker as a ``snapshot`` frame; returns its fields."""
        with self._lock:
            state = dict(self._ticker_state(symbol))
            marks = self._enqueue([self._ticker_frame(symbol, "snapshot", state)])
        self._wait(marks)
        return state

    def truth(
        self, symbol: str, n: int = 20
    ) -> tuple[list[tuple[float, float]], list[tuple[float, float]], int]:
        with self._lock:
            book = self._book(symbol)
            bids, asks = book.top(n)
            return bids, asks, book.update_id


def _levels(levels: list[list[str]], bids: bool) -> list[list[str]]:
    """One entry per price (the last change wins), best first, as Bybit orders them."""
    last = {p: q for p, q in levels}
    return [[p, q] for p, q in sorted(last.items(), key=lambda kv: float(kv[0]), reverse=bids)]
