"""Charts that open full: fetch each new live market's recent one-minute candles from its venue.

The history writer calls ``request(exchange, symbol)`` when a live market appears (on start,
and when a symbol is added); this thread asks the venue's REST API (the venue's own module
builds the request and parses the answer: ``Session.klines_request`` / ``parse_klines``),
carried out by the one HTTP seam (``market.transport.http_request``: the venue's size cap,
the same status mapping as the runner's), and hands the candles to the writer, which stores
them with ``source='venue'`` and joins them before the session's. A refused or failing
request is a line in ``failures()`` with a short reason (``HTTP 451 Unavailable For Legal
Reasons``, ``request failed: …``, ``response over … bytes: refused``), shown with the
writer's status, never an exception; it is not retried blindly (the next start or re-add
asks again).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Protocol

from market.errors import MarketError, RegionBlocked
from market.transport import HTTPRefused, RequestFailed, http_request
from market.venues import SESSIONS
from market.venues.base import DEFAULT_KLINES, Kline

log = logging.getLogger(__name__)


class CandleSink(Protocol):
    """Where fetched candles go (the history writer)."""

    def add_venue_candles(self, exchange: str, symbol: str, klines: Sequence[Kline]) -> None: ...


class Backfiller:
    """One thread, one request at a time, bounded queue."""

    def __init__(
        self,
        writer: CandleSink,
        urls: Mapping[str, tuple[str, str]],
        *,
        timeout: float = 10.0,
        limit: int = DEFAULT_KLINES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.writer = writer
        # each venue's (REST base URL, WebSocket URL): a venue's market kind may be in the latter
        self.urls = dict(urls)
        self.timeout = timeout
        self.limit = limit
        self._clock = clock
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue(maxsize=1000)
        self._lock = threading.Lock()  # guards _results
        self._results: dict[tuple[str, str], str] = {}  # (exchange, symbol) → "" ok, or why not
        self._thread: threading.Thread | None = None

    def serves(self, exchange: str) -> bool:
        return exchange in SESSIONS and exchange in self.urls

    def request(self, exchange: str, symbol: str) -> None:
        """Ask for a market's recent candles (non-blocking; dropped when 1000 are queued)."""
        if self.serves(exchange):
            try:
                self._queue.put_nowait((exchange, symbol))
            except queue.Full:
                self._set(exchange, symbol, "backfill queue full: skipped")

    def start(self) -> Backfiller:
        self._thread = threading.Thread(target=self._run, name="market-backfill", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self.backfill(*item)

    def fetch(self, exchange: str, symbol: str) -> list[Kline]:
        """The venue's recent one-minute candles, oldest first (raises ``MarketError``)."""
        now_ms = int(self._clock() * 1000)
        venue = SESSIONS[exchange]
        rest_url, ws_url = self.urls[exchange]
        request = venue.klines_request(
            rest_url, venue.venue_symbol(symbol), now_ms, self.limit, ws_url
        )
        if request is None:
            raise MarketError(f"{exchange} serves no candles over REST")
        body = http_request(
            request.url, self.timeout, venue.max_rest_bytes, request.method, request.body
        )
        return venue.parse_klines(body)

    def backfill(self, exchange: str, symbol: str) -> int:
        """Fetch and hand over one market's candles; returns how many (0 on failure)."""
        try:
            klines = self.fetch(exchange, symbol)
        except MarketError as exc:  # refused, unreachable, oversized, unparsable, bad symbol
            reason = f"{exchange} {symbol} backfill failed: {_reason(exc)[:120]}"
            log.info("%s", reason)
            self._set(exchange, symbol, reason)
            return 0
        self.writer.add_venue_candles(exchange, symbol, klines)
        self._set(exchange, symbol, "")
        return len(klines)

    def _set(self, exchange: str, symbol: str, detail: str) -> None:
        with self._lock:
            self._results[(exchange, symbol)] = detail

    def failures(self) -> list[str]:
        """Why each failed backfill failed (empty when every one succeeded)."""
        with self._lock:
            return [d for d in self._results.values() if d]

    def done(self, exchange: str, symbol: str) -> str | None:
        """None while not tried yet; "" when it succeeded; else why it failed."""
        with self._lock:
            return self._results.get((exchange, symbol))


def _reason(exc: MarketError) -> str:
    """A refusal as its status line (``HTTP 403 Forbidden``), a failed request as the
    transport's reason, anything else as its message."""
    if isinstance(exc, (RegionBlocked, HTTPRefused)):
        try:
            return f"HTTP {exc.status} {HTTPStatus(exc.status).phrase}"
        except ValueError:  # a status of the venue's own
            return f"HTTP {exc.status}"
    if isinstance(exc, RequestFailed):
        return exc.reason
    return str(exc)
