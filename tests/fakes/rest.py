"""The fakes' REST endpoint (``RestServer``, on 127.0.0.1) and the truth of a venue's one-minute
klines (``minute_candles``), which the history backfill is checked against.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit



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
