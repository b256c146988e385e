"""A fake Binance spot exchange on 127.0.0.1: a WebSocket combined stream and a REST snapshot
endpoint over one true order book per symbol, scripted to misbehave.

It runs in its own thread with its own asyncio loop; tests drive it with thread-safe methods:

    with FakeBinance(["BTCUSDT"]) as ex:
        worker = Worker(settings.with_urls(BINANCE_WS_URL=ex.ws_url, BINANCE_REST_URL=ex.rest_url))
        ex.tick(50)             # 50 diffs, applied to the truth and sent
        ex.burst(5, levels=1000)  # 5 diffs of 1,000 level changes each
        ex.skip(3)              # 3 diffs applied to the truth but never sent: a gap
        ex.ticker("BTCUSDT", c="101.50")  # a 24hrTicker to the connections on btcusdt@ticker
        ex.garbage("not json")  # a frame the client must count and skip
        ex.drop()               # close every connection abruptly
        ex.stall(True)          # keep connections open but send nothing
        ex.refuse(451)          # answer every handshake and snapshot with HTTP 451
        ex.snapshot_failures = 3  # answer the next 3 snapshot requests with HTTP 500
        ex.rest_status["ETHUSDT"] = 500  # answer every ETHUSDT snapshot request with HTTP 500
        ex.received             # the client's frames, decoded (SUBSCRIBE requests…)
        ex.subscribed()         # the streams of the newest connection

A connection gets only its streams: those named in its URL (``/stream?streams=a/b``) and those
it SUBSCRIBEs to later (answered ``{"result":null,"id":n}``; an unknown symbol is acknowledged
the same way and then gets nothing, as on Binance). Everything is bounded: diffs are generated
only when asked, the servers stop on exit.

What the fakes share (``TrueBook``, ``FakeServer``, ``RestServer``) is in ``tests/fakes/server.py``.
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import orjson
from tests.fakes.rest import TradeLog, minute_candles
from tests.fakes.server import (
    Conn,
    FakeServer,
    Frame,
    Keyed,
    TrueBook,
    _px,
    dumps,
)


class FakeBinance(FakeServer):
    thread_name = "fake-binance"
    refusal_body = b'{"code":0,"msg":"Service unavailable from a restricted location."}'

    def __init__(self, symbols: Iterable[str], seed: int = 7) -> None:
        super().__init__()
        self.rng = random.Random(seed)
        self.books = {s: TrueBook(s, self.rng, mid=100.0 + 10 * i) for i, s in enumerate(symbols)}
        self.rest_refuse_status: int | None = None
        self.snapshot_requests: dict[str, int] = {s: 0 for s in self.books}
        self.snapshot_delay = 0.0
        self.snapshot_failures = 0  # the next this many snapshot requests get HTTP 500
        self.rest_status: dict[str, int] = {}  # symbol → HTTP status for all its snapshots
        self.invalid_requests: dict[str, int] = {}  # snapshot requests for unknown symbols
        self.snapshot_times: dict[str, list[float]] = {s: [] for s in self.books}  # arrivals
        self.in_flight: dict[str, int] = {s: 0 for s in self.books}  # requests being answered
        self.max_in_flight: dict[str, int] = {s: 0 for s in self.books}
        self._trade_id = 0
        self._last_trade: dict[str, tuple[str, str]] = {}  # symbol → (price, qty)
        self.trade_log: dict[str, TradeLog] = {}  # every trade sent: the klines' truth
        self._event_time = 1_700_000_000_000
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, args=(0.05,), name="fake-binance-rest", daemon=True
        )  # a short poll interval: shutdown() returns quickly

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._http_thread.start()
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._http.shutdown()
        self._http.server_close()
        self._http_thread.join(5)

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    # -- WebSocket requests -------------------------------------------------------------------

    def _on_open(self, conn: Conn) -> None:
        url = urlsplit(conn.path)
        if url.path.rstrip("/") == "/stream":
            for value in parse_qs(url.query).get("streams", []):
                conn.topics.update(s for s in value.split("/") if s)

    def _on_frame(self, conn: Conn, raw: Frame, msg: Any) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS, answered as Binance does."""
        if not isinstance(msg, dict):
            error = {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}
            conn.put(dumps({"error": error, "id": None}))
            return
        method, params, request_id = msg.get("method"), msg.get("params", []), msg.get("id")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE") and isinstance(params, list):
            names = [p for p in params if isinstance(p, str)]
            if method == "SUBSCRIBE":
                conn.topics.update(names)
            else:
                conn.topics.difference_update(names)
            conn.put(dumps({"result": None, "id": request_id}))
        elif method == "LIST_SUBSCRIPTIONS":
            conn.put(dumps({"result": sorted(conn.topics), "id": request_id}))
        else:
            variant = (
                f"Invalid request: unknown variant `{method}`, expected one of `SUBSCRIBE`, "
                "`UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"
            )
            conn.put(dumps({"error": {"code": 2, "msg": variant}, "id": request_id}))

    # -- REST ---------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's naming
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                symbol = query.get("symbol", [""])[0]
                if url.path == "/api/v3/klines":
                    self._reply(*fake._klines(symbol, query))
                    return
                known = symbol in fake.books
                with fake._lock:
                    if known:
                        fake.snapshot_requests[symbol] += 1
                        fake.snapshot_times[symbol].append(time.monotonic())
                        n = fake.in_flight[symbol] = fake.in_flight[symbol] + 1
                        fake.max_in_flight[symbol] = max(fake.max_in_flight[symbol], n)
                    else:
                        fake.invalid_requests[symbol] = fake.invalid_requests.get(symbol, 0) + 1
                try:
                    if fake.snapshot_delay:
                        threading.Event().wait(fake.snapshot_delay)
                    with fake._lock:
                        status = fake.rest_refuse_status or fake.refuse_status
                        forced = fake.rest_status.get(symbol) if known else None
                        answered = status is not None or forced is not None
                        fail = known and not answered and fake.snapshot_failures > 0
                        if fail:
                            fake.snapshot_failures -= 1
                        book = fake.books.get(symbol)
                        limit = int(query.get("limit", ["1000"])[0])
                        body = orjson.dumps(book.snapshot(limit)) if book else b""
                finally:
                    if known:  # before replying: the client may ask again as soon as it reads
                        with fake._lock:
                            fake.in_flight[symbol] -= 1
                if url.path != "/api/v3/depth":
                    self._reply(404, b'{"code":-1,"msg":"not found"}')
                elif status is not None:
                    self._reply(status, b'{"code":0,"msg":"restricted location"}')
                elif forced in (403, 451):
                    self._reply(forced, b'{"code":0,"msg":"restricted location"}')
                elif forced is not None:
                    self._reply(forced, b'{"code":-1000,"msg":"internal error"}')
                elif book is None:
                    self._reply(400, b'{"code":-1121,"msg":"Invalid symbol."}')
                elif fail:
                    self._reply(500, b'{"code":-1000,"msg":"internal error"}')
                else:
                    self._reply(200, body)

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def _klines(self, symbol: str, query: dict[str, list[str]]) -> tuple[int, bytes]:
        """``GET /api/v3/klines?symbol=…&interval=1m[&limit=…][&startTime=…][&endTime=…]``
        over the trades sent (``minute_candles``), as Binance answers it."""
        with self._lock:
            status = self.rest_refuse_status or self.refuse_status
            trades = list(self.trade_log.get(symbol, []))
        if status is not None:
            return status, b'{"code":0,"msg":"restricted location"}'
        if symbol not in self.books:
            return 400, b'{"code":-1121,"msg":"Invalid symbol."}'
        start = int(query.get("startTime", ["0"])[0])
        end = int(query.get("endTime", [str(2**62)])[0])
        limit = min(int(query.get("limit", ["500"])[0]), 1000)
        rows = [r for r in minute_candles(trades) if start <= r["t"] <= end][-limit:]
        f = "{:.8f}".format
        body = [
            [r["t"], f(r["o"]), f(r["h"]), f(r["l"]), f(r["c"]), f(r["v"]), r["t"] + 59_999,
             f(r["quote"]), r["n"], f(r["buy"]), f(r["buy"] * r["c"]), "0"]
            for r in rows
        ]  # fmt: skip
        return 200, orjson.dumps(body)

    # -- scripting (thread-safe) --------------------------------------------------------------

    def tick(self, n: int = 1, symbols: Iterable[str] | None = None) -> None:
        """Generate ``n`` diffs per symbol, apply them to the truth, send them (unless stalled)
        to the connections on ``<symbol>@depth@100ms``."""
        with self._lock:
            frames: list[Keyed] = []
            for _ in range(n):
                for symbol in symbols or self.books:
                    self._event_time += 100
                    data = self.books[symbol].diff(self._event_time)
                    stream = f"{symbol.lower()}@depth@100ms"
                    frames.append((stream, dumps({"stream": stream, "data": data})))
            marks = self._enqueue(frames)
        self._wait(marks)

    def burst(self, n: int = 1, levels: int = 1000, symbols: Iterable[str] | None = None) -> None:
        """Like ``tick``, but each diff changes ``levels`` levels at once (``TrueBook.big_diff``)."""
        with self._lock:
            frames: list[Keyed] = []
            for _ in range(n):
                for symbol in symbols or self.books:
                    self._event_time += 100
                    data = self.books[symbol].big_diff(self._event_time, levels)
                    stream = f"{symbol.lower()}@depth@100ms"
                    frames.append((stream, dumps({"stream": stream, "data": data})))
            marks = self._enqueue(frames)
        self._wait(marks)

    def skip(self, n: int = 1, symbol: str | None = None) -> None:
        """Diffs applied to the truth but never sent: the client sees a gap."""
        with self._lock:
            for _ in range(n):
                self._event_time += 100
                self.books[symbol or next(iter(self.books))].diff(self._event_time)

    def trade(self, symbol: str, price: str, qty: str, buyer_is_maker: bool) -> None:
        """One trade to the connections on ``<symbol>@trade`` (sent even while stalled)."""
        with self._lock:
            self._trade_id += 1
            self._event_time += 1
            self._last_trade[symbol] = (price, qty)
            log = self.trade_log.setdefault(symbol, [])
            log.append((self._event_time, float(price), float(qty), not buyer_is_maker))
            data = {
                "e": "trade", "E": self._event_time, "s": symbol, "t": self._trade_id,
                "p": price, "q": qty, "T": self._event_time, "m": buyer_is_maker, "M": True,
            }  # fmt: skip
            stream = f"{symbol.lower()}@trade"
            marks = self._enqueue([(stream, dumps({"stream": stream, "data": data}))], data=False)
        self._wait(marks)

    def ticker(self, symbol: str, **overrides: object) -> dict[str, Any]:
        """Send a ``24hrTicker`` to the connections on ``<symbol>@ticker`` (unless stalled) and
        return its ``data``. Values follow the truth (best bid/ask, the last trade) unless given
        by their Binance names: ``ticker("BTCUSDT", c="101.50", P="1.250")``."""
        with self._lock:
            self._event_time += 1
            data = self._ticker_data(symbol)
            data.update({k: v if isinstance(v, str | int | bool) else str(v)
                         for k, v in overrides.items()})  # fmt: skip
            stream = f"{symbol.lower()}@ticker"
            marks = self._enqueue([(stream, dumps({"stream": stream, "data": data}))])
        self._wait(marks)
        return data

    def _ticker_data(self, symbol: str) -> dict[str, Any]:
        bids, asks = self.books[symbol].sides(1)
        (bid, bid_qty), (ask, ask_qty) = bids[0], asks[0]
        mid = _px(round((float(bid) + float(ask)) * 50))
        last, last_qty = self._last_trade.get(symbol, (mid, "0.01000000"))
        close = float(last)
        open_ = round(close * 0.99, 2)
        volume = 1234.5
        avg = (open_ + close) / 2
        last_id = self._trade_id if self._trade_id else -1  # -1: no trade in the window
        first_id = max(last_id - 99, 1) if self._trade_id else -1
        return {
            "e": "24hrTicker", "E": self._event_time, "s": symbol,
            "p": f"{close - open_:.8f}", "P": f"{(close / open_ - 1) * 100:.3f}",
            "w": f"{avg:.8f}", "x": f"{open_:.8f}", "c": last, "Q": last_qty,
            "b": bid, "B": bid_qty, "a": ask, "A": ask_qty,
            "o": f"{open_:.8f}", "h": f"{max(close, open_) * 1.01:.8f}",
            "l": f"{min(close, open_) * 0.99:.8f}", "v": f"{volume:.8f}",
            "q": f"{volume * avg:.8f}", "O": self._event_time - 86_400_000, "C": self._event_time,
            "F": first_id, "L": last_id, "n": last_id - first_id + 1 if self._trade_id else 0,
        }  # fmt: skip

    def refuse(self, status: int | None, rest: bool = True) -> None:
        with self._lock:
            self.refuse_status = status
            if not rest:
                self.rest_refuse_status = None

    def truth(
        self, symbol: str, n: int = 20
    ) -> tuple[list[tuple[float, float]], list[tuple[float, float]], int]:
        with self._lock:
            book = self.books[symbol]
            bids, asks = book.top(n)
            return bids, asks, book.update_id


def books_exact(ex: FakeBinance, store: Any, symbols: Iterable[str]) -> bool:
    """Every one of ``symbols`` in ``store`` (a ``MarketStore``) is synced and equals the
    fake's whole true book, update id included."""
    snap = store.snapshot(series=False)
    for symbol in symbols:
        bids, asks, update_id = ex.truth(symbol)
        view = snap.markets.get(("binance", symbol))
        if not (
            view is not None
            and view.synced
            and view.update_id == update_id
            and list(view.bids) == bids
            and list(view.asks) == asks
        ):
            return False
    return True
