"""Charts that open full: fetch each new live market's recent one-minute candles from its venue.

The history writer calls ``request(exchange, symbol)`` when a live market appears (on start,
and when a symbol is added); this thread asks the venue's REST API (the venue's own module
builds the request and parses the answer: ``Session.klines_request`` / ``parse_klines``),
and hands the candles to the writer, which stores them with ``source='venue'`` and joins
them before the session's. A refused or failing request is a
line in ``failures()`` (shown with the writer's status), never an exception; it is not retried
blindly (the next start or re-add asks again).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from market.errors import BadMessage, InvalidSymbol, MarketError
from market.venues import SESSIONS
from market.venues.base import DEFAULT_KLINES, Kline, KlineRequest

if TYPE_CHECKING:
    from market.history.writer import HistoryWriter

log = logging.getLogger(__name__)

Http = Callable[[KlineRequest, float], bytes]


def http(request: KlineRequest, timeout: float) -> bytes:
    """Carry out a ``KlineRequest``; errors become ``MarketError`` with a short reason."""
    headers = {"User-Agent": "market-monitor/0.1"}
    if request.body is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(
        request.url, data=request.body, headers=headers, method=request.method
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            body: bytes = response.read(16 * 1024 * 1024)  # bounded: ~1000 candles is ~200 kB
            return body
    except urllib.error.HTTPError as exc:
        raise MarketError(f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise MarketError(f"request failed: {getattr(exc, 'reason', exc)}") from exc


class Backfiller:
    """One thread, one request at a time, bounded queue."""

    def __init__(
        self,
        writer: HistoryWriter,
        urls: Mapping[str, tuple[str, str]],
        *,
        timeout: float = 10.0,
        limit: int = DEFAULT_KLINES,
        clock: Callable[[], float] = time.time,
        fetch: Http = http,
    ) -> None:
        self.writer = writer
        # each venue's (REST base URL, WebSocket URL): a venue's market kind may be in the latter
        self.urls = dict(urls)
        self.timeout = timeout
        self.limit = limit
        self._clock = clock
        self._fetch = fetch
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
        return venue.parse_klines(self._fetch(request, self.timeout))

    def backfill(self, exchange: str, symbol: str) -> int:
        """Fetch and hand over one market's candles; returns how many (0 on failure)."""
        try:
            klines = self.fetch(exchange, symbol)
        except (MarketError, BadMessage, InvalidSymbol) as exc:
            reason = f"{exchange} {symbol} backfill failed: {str(exc)[:120]}"
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
