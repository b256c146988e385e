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

This module also holds what the other fakes share: ``TrueBook`` (an exact book that moves at
random) and ``FakeServer`` (the loop thread, handshakes, ordered per-connection outboxes, and
the knobs every fake has).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response


def _px(ticks: int) -> str:
    return f"{ticks / 100:.8f}"


def _qty_str(hundredths: int) -> str:
    return f"{hundredths / 100:.8f}"


class TrueBook:
    """The exchange's book for one symbol, on a 0.01 tick grid, never crossed.

    Prices and quantities are kept as the exchange prints them: ``px`` and ``qty`` turn a
    number of hundredths into that string (Binance's 8 decimals by default).
    """

    def __init__(
        self,
        symbol: str,
        rng: random.Random,
        mid: float = 100.0,
        *,
        px: Callable[[int], str] = _px,
        qty: Callable[[int], str] = _qty_str,
    ) -> None:
        self.symbol = symbol
        self.rng = rng
        self.update_id = 1000
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self._px = px
        self._qty = qty
        mid_ticks = round(mid * 100)
        for i in range(1, 41):
            self.bids[px(mid_ticks - i)] = qty(rng.randint(1, 500))
            self.asks[px(mid_ticks + i)] = qty(rng.randint(1, 500))

    def sides(self, limit: int = 1000) -> tuple[list[list[str]], list[list[str]]]:
        """``[price, qty]`` strings, best first."""
        bids = sorted(self.bids.items(), key=lambda kv: -float(kv[0]))[:limit]
        asks = sorted(self.asks.items(), key=lambda kv: float(kv[0]))[:limit]
        return [list(x) for x in bids], [list(x) for x in asks]

    def snapshot(self, limit: int = 1000) -> dict[str, Any]:
        bids, asks = self.sides(limit)
        return {"lastUpdateId": self.update_id, "bids": bids, "asks": asks}

    def change(self) -> tuple[list[list[str]], list[list[str]]]:
        """Change a few levels (some removals, some of absent levels); return the changes."""
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
            price = self._px(ticks)
            r = self.rng.random()
            if r < 0.25 and book:
                price = self.rng.choice(sorted(book))  # remove an existing level
                qty = self._qty(0)
            elif r < 0.30:
                qty = self._qty(0)  # remove a level that may well be absent: normal on Binance
            else:
                qty = self._qty(self.rng.randint(1, 500))
            if float(qty) == 0:
                book.pop(price, None)
            else:
                book[price] = qty
            out.append([price, qty])
        return b, a

    def diff(self, event_time: int) -> dict[str, Any]:
        """Change a few levels and return Binance's ``depthUpdate`` event for it."""
        first = self.update_id + 1
        self.update_id += self.rng.randint(1, 3)
        b, a = self.change()
        return {
            "e": "depthUpdate", "E": event_time, "s": self.symbol,
            "U": first, "u": self.update_id, "b": b, "a": a,
        }  # fmt: skip

    def big_diff(self, event_time: int, levels: int) -> dict[str, Any]:
        """One ``depthUpdate`` changing ``levels`` distinct levels (a burst): bids at or below
        the best bid, asks at or above the best ask (never crossed), within ``levels`` ticks of
        the touch so the book stays under the snapshot's 1,000 levels a side; about a quarter
        remove a level (present or not)."""
        first = self.update_id + 1
        self.update_id += self.rng.randint(1, 3)
        best_bid = max((round(float(p) * 100) for p in self.bids), default=None)
        best_ask = min((round(float(p) * 100) for p in self.asks), default=None)
        if best_bid is None:
            best_bid = (best_ask or 10_000) - 2
        if best_ask is None:
            best_ask = best_bid + 2
        n_bids = levels // 2
        span = max(levels // 2 + 50, 100)
        changes: list[list[list[str]]] = [[], []]
        for side, ticks in (
            (0, self.rng.sample(range(best_bid - span, best_bid + 1), n_bids)),
            (1, self.rng.sample(range(best_ask, best_ask + span + 1), levels - n_bids)),
        ):
            book = self.bids if side == 0 else self.asks
            for tick in ticks:
                if tick <= 0:
                    continue
                price = self._px(tick)
                if self.rng.random() < 0.25:
                    qty = self._qty(0)
                    book.pop(price, None)
                else:
                    qty = book[price] = self._qty(self.rng.randint(1, 500))
                changes[side].append([price, qty])
        return {
            "e": "depthUpdate", "E": event_time, "s": self.symbol,
            "U": first, "u": self.update_id, "b": changes[0], "a": changes[1],
        }  # fmt: skip

    def trim(self, limit: int) -> tuple[list[str], list[str]]:
        """Drop the levels beyond the best ``limit`` of each side; return their prices."""
        bids, asks = self.sides()
        gone_b, gone_a = [p for p, _ in bids[limit:]], [p for p, _ in asks[limit:]]
        for p in gone_b:
            del self.bids[p]
        for p in gone_a:
            del self.asks[p]
        return gone_b, gone_a

    def top(self, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        bids = sorted(((float(p), float(q)) for p, q in self.bids.items()), reverse=True)[:n]
        asks = sorted((float(p), float(q)) for p, q in self.asks.items())[:n]
        return bids, asks


Frame = bytes | str
Keyed = tuple[str | None, Frame]  # (the subscription it belongs to, None: every connection; frame)


def dumps(payload: object) -> str:
    """A JSON text frame, compact, as the exchanges send them."""
    return orjson.dumps(payload).decode()


class Conn:
    """One accepted connection: what it subscribed to and its frames waiting to be written.

    Frames are queued with ``put`` under the fake's lock, so the order in which the fake decides
    them (a snapshot, then the deltas after it) is the order the client reads them.
    """

    def __init__(
        self, ws: ServerConnection, number: int, path: str, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.ws = ws
        self.number = number  # 1 for the first connection the fake accepted
        self.path = path  # of the handshake request: "/stream?streams=…"
        self.topics: set[str] = set()
        self.ident = ""
        self.alive_at = time.monotonic()  # the last client frame that keeps it alive
        self.closed = False
        self.outbox: deque[Frame | threading.Event] = deque()
        self.wakeup = asyncio.Event()
        self._loop = loop

    def put(self, *items: Frame | threading.Event) -> None:
        """Queue frames (and markers, set once written); the caller holds the fake's lock."""
        if self.closed:
            for item in items:
                if isinstance(item, threading.Event):
                    item.set()
            return
        self.outbox.extend(items)
        self._loop.call_soon_threadsafe(self.wakeup.set)

    def close(self) -> None:
        self.closed = True
        while self.outbox:
            item = self.outbox.popleft()
            if isinstance(item, threading.Event):
                item.set()


class FakeServer:
    """What every fake exchange shares: a WebSocket server on 127.0.0.1 in its own thread.

    Subclasses answer client frames in ``_on_frame`` and queue market data with ``_enqueue``
    (under ``_lock``, in the same critical section that changes the truth), then ``_wait``.
    """

    thread_name = "fake-exchange"
    refusal_body = b'{"msg":"refused"}'
    poll = 0.05  # how often an idle connection checks its keepalive deadline

    def __init__(self) -> None:
        self.refuse_status: int | None = None
        self.stalled = False
        self.handshakes = 0
        self.refused_handshakes = 0
        self.opened = 0  # connections that reached the handler (accepted handshakes)
        self.binary_frames = 0  # client frames sent as binary (the exchanges expect text)
        self.ws_paths: list[str] = []
        self.ws_port = 0
        self._received: list[Any] = []
        self._clock = 0
        self._lock = threading.Lock()  # guards the books, counters, flags and connections
        self._conns: dict[ServerConnection, Conn] = {}  # the open ones
        self._accepted: list[Conn] = []  # every accepted connection, in order
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError(f"{self.thread_name} did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop_event.set)
        self._thread.join(5)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop_event = asyncio.Event()
        async with serve(
            self._handler,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            process_response=self._process_response,
        ) as server:
            self.ws_port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop_event.wait()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        with self._lock:
            self.handshakes += 1
            self.ws_paths.append(request.path)
            status = self.refuse_status
            if status is not None:
                self.refused_handshakes += 1
        if status is not None:
            body = self.refusal_body
            headers = Headers([("Content-Length", str(len(body)))])
            return Response(status, HTTPStatus(status).phrase, headers, body)
        return None

    def _process_response(
        self, ws: ServerConnection, request: Request, response: Response
    ) -> None:
        """Take the connection on before the handshake's 101 goes out: once the client is
        connected, knobs reach it (frames wait in its outbox until the handler writes them)."""
        if response.status_code != HTTPStatus.SWITCHING_PROTOCOLS:
            return
        with self._lock:
            self.opened += 1
            conn = Conn(ws, self.opened, request.path, self._loop)
            self._conns[ws] = conn
            self._accepted.append(conn)
            self._on_open(conn)
        task = self._loop.create_task(self._forget(conn))  # also if the handler never runs
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forget(self, conn: Conn) -> None:
        await conn.ws.wait_closed()
        with self._lock:
            self._conns.pop(conn.ws, None)
            conn.close()

    async def _handler(self, ws: ServerConnection) -> None:
        with self._lock:
            conn = self._conns.get(ws)
        if conn is None:
            return
        writer = asyncio.create_task(self._write(conn))
        try:
            while True:
                try:
                    message = await asyncio.wait_for(ws.recv(), self.poll)
                except TimeoutError:
                    if self._expired(conn, time.monotonic()):
                        await self._expire(conn)
                        return
                    continue
                self._receive(conn, message)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._conns.pop(ws, None)
                conn.close()
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    async def _write(self, conn: Conn) -> None:
        while True:
            await conn.wakeup.wait()
            conn.wakeup.clear()
            while conn.outbox:
                item = conn.outbox.popleft()
                if isinstance(item, threading.Event):
                    item.set()
                    continue
                try:
                    await conn.ws.send(item)
                except ConnectionClosed:
                    return

    def _receive(self, conn: Conn, message: Frame) -> None:
        try:
            decoded = orjson.loads(message)
        except orjson.JSONDecodeError:
            decoded = message
        with self._lock:
            self._received.append(decoded)
            if isinstance(message, bytes):
                self.binary_frames += 1
            self._on_frame(conn, message, decoded)

    # -- what subclasses say ------------------------------------------------------------------

    def _on_open(self, conn: Conn) -> None:
        """A connection was accepted (lock held): set its topics, queue a greeting."""

    def _on_frame(self, conn: Conn, raw: Frame, msg: Any) -> None:
        """Answer one client frame (lock held); ``msg`` is it decoded, or ``raw`` if not JSON."""

    def _expired(self, conn: Conn, now: float) -> bool:
        """Whether the server gives up on a connection that has been quiet too long."""
        return False

    async def _expire(self, conn: Conn) -> None:
        conn.ws.transport.abort()

    # -- sending ------------------------------------------------------------------------------

    def _now_ms(self) -> int:
        """Wall-clock milliseconds, strictly increasing (the caller holds the lock)."""
        self._clock = max(int(time.time() * 1000), self._clock + 1)
        return self._clock

    def _enqueue(self, frames: Iterable[Keyed], *, data: bool = True) -> list[threading.Event]:
        """Queue each frame to every open connection subscribed to its key (None: to all);
        market ``data`` is not sent while stalled. The caller holds the lock and, after
        releasing it, passes the result to ``_wait``."""
        if data and self.stalled:
            return []
        frames = list(frames)
        marks = []
        for conn in self._conns.values():
            mine = [f for key, f in frames if key is None or key in conn.topics]
            if mine:
                mark = threading.Event()
                conn.put(*mine, mark)
                marks.append(mark)
        return marks

    @staticmethod
    def _wait(marks: list[threading.Event]) -> None:
        """Wait until the queued frames are written (or their connection is gone)."""
        for mark in marks:
            mark.wait(5)

    def _publish(self, frames: Iterable[Keyed], *, data: bool = True) -> None:
        with self._lock:
            marks = self._enqueue(frames, data=data)
        self._wait(marks)

    # -- scripting (thread-safe) --------------------------------------------------------------

    def connections(self) -> int:
        """Connections open now."""
        with self._lock:
            return len(self._conns)

    @property
    def received(self) -> list[Any]:
        """Every frame the clients sent, in order: decoded JSON, or the raw frame if not JSON."""
        with self._lock:
            return list(self._received)

    def _conn(self, number: int | None) -> Conn | None:
        """The ``number``-th accepted connection, or (None) the newest open one."""
        if number is None:
            return max(self._conns.values(), key=lambda c: c.number, default=None)
        return self._accepted[number - 1] if 0 < number <= len(self._accepted) else None

    def subscribed(self, conn: int | None = None) -> set[str]:
        """What connection number ``conn`` (1: the first accepted; default: the newest open
        one) is subscribed to now, or was when it closed."""
        with self._lock:
            c = self._conn(conn)
            return set(c.topics) if c else set()

    def garbage(self, *frames: Frame) -> None:
        """Send these frames as they are (bytes: a binary frame) to every connection."""
        self._publish([(None, f) for f in frames], data=False)

    def send_raw(self, payload: object) -> None:
        """Send ``payload`` as a JSON text frame to every connection."""
        self._publish([(None, dumps(payload))], data=False)

    def drop(self) -> None:
        """Close every connection without a close handshake (as a network drop looks)."""

        async def kill() -> None:
            for ws in list(self._conns):
                ws.transport.abort()

        asyncio.run_coroutine_threadsafe(kill(), self._loop).result(5)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close every connection with a close frame (``code``, ``reason``)."""

        async def close_all() -> None:
            await asyncio.gather(*(ws.close(code, reason) for ws in list(self._conns)))

        asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(5)

    def stall(self, on: bool = True) -> None:
        """Keep connections open but send no market data (replies to requests still go)."""
        with self._lock:
            self.stalled = on

    def refuse(self, status: int | None) -> None:
        """Answer every handshake with HTTP ``status`` (None: accept again)."""
        with self._lock:
            self.refuse_status = status


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


# -- klines (the history backfill): shared by the fakes ------------------------------------------

TradeLog = list[tuple[int, float, float, bool]]  # (time ms, price, qty, buyer-initiated)


def minute_candles(trades: TradeLog) -> list[dict[str, Any]]:
    """The truth of a venue's one-minute klines: per minute of the trades published, in order,
    ``t, o, h, l, c, v`` (base), ``quote`` (Σ price × qty), ``n`` and ``buy`` (taker-buy base)."""
    rows: dict[int, dict[str, Any]] = {}
    for ts, price, qty, buy in trades:
        t = ts - ts % 60_000
        r = rows.get(t)
        if r is None:
            r = rows[t] = {"t": t, "o": price, "h": price, "l": price, "c": price,
                           "v": 0.0, "quote": 0.0, "n": 0, "buy": 0.0}  # fmt: skip
        r["h"], r["l"], r["c"] = max(r["h"], price), min(r["l"], price), price
        r["v"] += qty
        r["quote"] += price * qty
        r["n"] += 1
        r["buy"] += qty if buy else 0.0
    return [rows[t] for t in sorted(rows)]


class RestServer:
    """A small HTTP server on 127.0.0.1 for a fake's REST endpoint: ``answer(method, path,
    query, body)`` returns (status, JSON body). Started on first use of ``url``."""

    def __init__(
        self, answer: Callable[[str, str, dict[str, list[str]], bytes], tuple[int, bytes]]
    ) -> None:
        self._answer = answer
        self._http: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._http is None:
            answer = self._answer

            class Handler(BaseHTTPRequestHandler):
                def _go(self, method: str) -> None:
                    url = urlsplit(self.path)
                    size = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(size) if size else b""
                    status, reply = answer(method, url.path, parse_qs(url.query), body)
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)

                def do_GET(self) -> None:
                    self._go("GET")

                def do_POST(self) -> None:
                    self._go("POST")

                def log_message(self, *args: object) -> None:
                    pass

            self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            self._thread = threading.Thread(
                target=self._http.serve_forever, args=(0.05,), name="fake-rest", daemon=True
            )
            self._thread.start()
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            if self._thread is not None:
                self._thread.join(5)
