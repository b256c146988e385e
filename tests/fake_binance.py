"""A fake Binance spot exchange on 127.0.0.1: a WebSocket combined stream and a REST snapshot
endpoint over one true order book per symbol, scripted to misbehave.

It runs in its own thread with its own asyncio loop; tests drive it with thread-safe methods:

    with FakeBinance(["BTCUSDT"]) as ex:
        worker = Worker(replace(settings, binance_ws_url=ex.ws_url, binance_rest_url=ex.rest_url))
        ex.tick(50)             # 50 diffs, applied to the truth and sent
        ex.skip(3)              # 3 diffs applied to the truth but never sent: a gap
        ex.garbage("not json")  # a frame the client must count and skip
        ex.drop()               # close every connection abruptly
        ex.stall(True)          # keep connections open but send nothing
        ex.refuse(451)          # answer every handshake and snapshot with HTTP 451
        ex.snapshot_failures = 3  # answer the next 3 snapshot requests with HTTP 500
        ex.rest_status["ETHUSDT"] = 500  # answer every ETHUSDT snapshot request with HTTP 500

Everything is bounded: diffs are generated only when asked, the servers stop on exit.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response


class TrueBook:
    """The exchange's book for one symbol, on a 0.01 tick grid, never crossed."""

    def __init__(self, symbol: str, rng: random.Random, mid: float = 100.0) -> None:
        self.symbol = symbol
        self.rng = rng
        self.update_id = 1000
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        mid_ticks = round(mid * 100)
        for i in range(1, 41):
            self.bids[_px(mid_ticks - i)] = _qty(rng)
            self.asks[_px(mid_ticks + i)] = _qty(rng)

    def snapshot(self, limit: int = 1000) -> dict[str, Any]:
        bids = sorted(self.bids.items(), key=lambda kv: -float(kv[0]))[:limit]
        asks = sorted(self.asks.items(), key=lambda kv: float(kv[0]))[:limit]
        return {"lastUpdateId": self.update_id, "bids": [list(x) for x in bids], "asks": [list(x) for x in asks]}

    def diff(self, event_time: int) -> dict[str, Any]:
        """Change a few levels (some removals, some of absent levels) and return the event."""
        first = self.update_id + 1
        n_ids = self.rng.randint(1, 3)
        self.update_id += n_ids
        b: list[list[str]] = []
        a: list[list[str]] = []
        for _ in range(self.rng.randint(1, 6)):
            best_bid = max(float(p) for p in self.bids) if self.bids else 99.0
            best_ask = min(float(p) for p in self.asks) if self.asks else best_bid + 0.02
            if not self.bids:
                best_bid = best_ask - 0.02
            side_bid = self.rng.random() < 0.5
            book, out = (self.bids, b) if side_bid else (self.asks, a)
            if side_bid:
                ticks = round(best_bid * 100) - self.rng.randint(-1, 30)
                if ticks >= round(best_ask * 100):
                    ticks = round(best_ask * 100) - 1
            else:
                ticks = round(best_ask * 100) + self.rng.randint(-1, 30)
                if ticks <= round(best_bid * 100):
                    ticks = round(best_bid * 100) + 1
            price = _px(ticks)
            r = self.rng.random()
            if r < 0.25 and book:
                price = self.rng.choice(sorted(book))  # remove an existing level
                qty = "0.00000000"
            elif r < 0.30:
                qty = "0.00000000"  # remove a level that may well be absent: normal on Binance
            else:
                qty = _qty(self.rng)
            if float(qty) == 0:
                book.pop(price, None)
            else:
                book[price] = qty
            out.append([price, qty])
        return {
            "e": "depthUpdate", "E": event_time, "s": self.symbol,
            "U": first, "u": self.update_id, "b": b, "a": a,
        }

    def top(self, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        bids = sorted(((float(p), float(q)) for p, q in self.bids.items()), reverse=True)[:n]
        asks = sorted((float(p), float(q)) for p, q in self.asks.items())[:n]
        return bids, asks


def _px(ticks: int) -> str:
    return f"{ticks / 100:.8f}"


def _qty(rng: random.Random) -> str:
    return f"{rng.randint(1, 500) / 100:.8f}"


class FakeBinance:
    def __init__(self, symbols: Iterable[str], seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.books = {s: TrueBook(s, self.rng, mid=100.0 + 10 * i) for i, s in enumerate(symbols)}
        self.refuse_status: int | None = None
        self.rest_refuse_status: int | None = None
        self.stalled = False
        self.handshakes = 0
        self.refused_handshakes = 0
        self.ws_paths: list[str] = []
        self.snapshot_requests: dict[str, int] = {s: 0 for s in self.books}
        self.snapshot_delay = 0.0
        self.snapshot_failures = 0  # the next this many snapshot requests get HTTP 500
        self.rest_status: dict[str, int] = {}  # symbol → HTTP status for all its snapshots
        self.opened = 0  # connections that reached the handler (accepted handshakes)
        self.invalid_requests: dict[str, int] = {}  # snapshot requests for unknown symbols
        self.snapshot_times: dict[str, list[float]] = {s: [] for s in self.books}  # arrivals
        self.in_flight: dict[str, int] = {s: 0 for s in self.books}  # requests being answered
        self.max_in_flight: dict[str, int] = {s: 0 for s in self.books}
        self._trade_id = 0
        self._event_time = 1_700_000_000_000
        self._lock = threading.Lock()  # guards books, counters and the flags above
        self._conns: set[ServerConnection] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-binance", daemon=True)
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, args=(0.05,), name="fake-binance-rest", daemon=True
        )  # a short poll interval: shutdown() returns quickly
        self.ws_port = 0

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> FakeBinance:
        self._http_thread.start()
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("fake Binance did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop_event.set)
        self._thread.join(5)
        self._http.shutdown()
        self._http.server_close()
        self._http_thread.join(5)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop_event = asyncio.Event()
        async with serve(self._handler, "127.0.0.1", 0, process_request=self._process_request) as server:
            self.ws_port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop_event.wait()

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        with self._lock:
            self.handshakes += 1
            self.ws_paths.append(request.path)
            status = self.refuse_status
            if status is not None:
                self.refused_handshakes += 1
        if status is not None:
            body = b'{"code":0,"msg":"Service unavailable from a restricted location."}'
            return Response(status, HTTPStatus(status).phrase, Headers([("Content-Length", str(len(body)))]), body)
        return None

    async def _handler(self, conn: ServerConnection) -> None:
        self._conns.add(conn)
        with self._lock:
            self.opened += 1
        try:
            await conn.wait_closed()
        finally:
            self._conns.discard(conn)

    # -- REST ---------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                symbol = query.get("symbol", [""])[0]
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

    # -- scripting (thread-safe) --------------------------------------------------------------

    def connections(self) -> int:
        return len(self._conns)

    def _broadcast(self, frames: list[bytes | str]) -> None:
        async def send() -> None:
            for conn in list(self._conns):
                for frame in frames:
                    try:
                        await conn.send(frame)
                    except Exception:
                        break

        asyncio.run_coroutine_threadsafe(send(), self._loop).result(5)

    def tick(self, n: int = 1, symbols: Iterable[str] | None = None) -> None:
        """Generate ``n`` diffs per symbol, apply them to the truth, send them (unless stalled)."""
        frames: list[bytes | str] = []
        with self._lock:
            for _ in range(n):
                for symbol in symbols or self.books:
                    self._event_time += 100
                    data = self.books[symbol].diff(self._event_time)
                    frames.append(orjson.dumps({"stream": f"{symbol.lower()}@depth@100ms", "data": data}))
            stalled = self.stalled
        if not stalled:
            self._broadcast(frames)

    def skip(self, n: int = 1, symbol: str | None = None) -> None:
        """Diffs applied to the truth but never sent: the client sees a gap."""
        with self._lock:
            for _ in range(n):
                self._event_time += 100
                self.books[symbol or next(iter(self.books))].diff(self._event_time)

    def trade(self, symbol: str, price: str, qty: str, buyer_is_maker: bool) -> None:
        with self._lock:
            self._trade_id += 1
            self._event_time += 1
            data = {"e": "trade", "E": self._event_time, "s": symbol, "t": self._trade_id, "p": price,
                    "q": qty, "T": self._event_time, "m": buyer_is_maker, "M": True}
        self._broadcast([orjson.dumps({"stream": f"{symbol.lower()}@trade", "data": data})])

    def garbage(self, *frames: bytes | str) -> None:
        self._broadcast(list(frames))

    def send_raw(self, payload: dict[str, Any]) -> None:
        self._broadcast([orjson.dumps(payload)])

    def drop(self) -> None:
        """Close every connection without a close handshake (as a network drop looks)."""

        async def kill() -> None:
            for conn in list(self._conns):
                conn.transport.abort()

        asyncio.run_coroutine_threadsafe(kill(), self._loop).result(5)

    def stall(self, on: bool = True) -> None:
        with self._lock:
            self.stalled = on

    def refuse(self, status: int | None, rest: bool = True) -> None:
        with self._lock:
            self.refuse_status = status
            if not rest:
                self.rest_refuse_status = None

    def truth(self, symbol: str, n: int = 20) -> tuple[list[tuple[float, float]], list[tuple[float, float]], int]:
        with self._lock:
            book = self.books[symbol]
            bids, asks = book.top(n)
            return bids, asks, book.update_id
