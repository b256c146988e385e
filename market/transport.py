"""The one HTTP seam, and what a failed connection means.

``http_request`` carries out every REST request of the house (the runner's book snapshots,
the history backfill's candles: a GET, or a POST with a JSON body), with one User-Agent; it
refuses a body over the venue's cap and translates failures into the market error tree:
HTTP 451/403 → ``RegionBlocked``, another error status → ``HTTPRefused`` (with the body, for
the venue to read), no answer or an oversized one → ``RequestFailed``. ``classify`` tells a
refusal for our location (HTTP 451, or 403 at the handshake: never retried blindly) from an
ordinary error; ``describe`` says why a connection dropped, in a few words fit for the status
line (URLs in it redacted).
"""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request

from websockets.exceptions import ConnectionClosed, InvalidStatus

from market.errors import FeedError, RegionBlocked, SnapshotError
from market.redact import redact_text

BLOCKED_STATUSES = {451: "restricted location", 403: "forbidden"}
USER_AGENT = "market-monitor/0.1"


class HTTPRefused(FeedError):
    """A REST request answered with an error status the session may understand."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


class RequestFailed(SnapshotError):
    """A REST request got no answer (network error, timeout), or one over the size cap;
    ``reason`` says which in a few words (the message is ``REST <reason>``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"REST {reason}")
        self.reason = reason


def classify(exc: BaseException) -> RegionBlocked | None:
    """A refusal that must not be retried blindly, or None for an ordinary retryable error."""
    if isinstance(exc, RegionBlocked):
        return exc
    if isinstance(exc, InvalidStatus):
        code = exc.response.status_code
        if code in BLOCKED_STATUSES:
            return RegionBlocked(code, f"HTTP {code}: {BLOCKED_STATUSES[code]}")
    return None


def describe(exc: BaseException) -> str:
    """A short human reason for a dropped or failed connection."""
    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code} at the handshake"
    if isinstance(exc, ConnectionClosed):
        rcvd, sent = exc.rcvd, exc.sent
        if rcvd is None and sent is not None and sent.code == 1009:  # over the venue's size
            return f"refused an oversized frame (code 1009: {sent.reason[:80]})"
        if rcvd is None:
            return "connection dropped (no close frame)"
        why = f": {rcvd.reason[:80]}" if rcvd.reason else ""
        return f"closed by the server (code {rcvd.code}{why})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return f"network error: {exc.strerror or exc}"
    return redact_text(f"{type(exc).__name__}: {str(exc)[:120]}")  # an URL may hold a secret


def http_request(
    url: str, timeout: float, limit: int, method: str = "GET", body: bytes | None = None
) -> bytes:
    """``method`` ``url`` (``body``, if any, sent as JSON); the response body, of at most
    ``limit`` bytes. Errors are translated into the market tree (see the module docstring)."""
    headers = {"User-Agent": USER_AGENT}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer: bytes = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        if exc.code in BLOCKED_STATUSES:
            raise RegionBlocked(exc.code, f"HTTP {exc.code}: {BLOCKED_STATUSES[exc.code]}") from exc
        refusal = b""
        with contextlib.suppress(Exception):
            refusal = exc.read(64 * 1024)
        raise HTTPRefused(exc.code, refusal) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RequestFailed(f"request failed: {str(reason)[:120]}") from exc
    if len(answer) > limit:
        raise RequestFailed(f"response over {limit:,} bytes: refused")
    return answer
