"""What the fake exchanges share (tests/fakes/): ``TrueBook`` (an exact book that moves at
random), ``FakeServer`` (the loop thread on 127.0.0.1, handshakes, ordered per-connection
outboxes, and the knobs every fake has: drop, stall, refuse, garbage). The REST side is in
``tests/fakes/rest.py``.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any, Self

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
