"""The Redis connection of a bus publisher or reader: URL check, client, backoff, state.

Both sides keep one client and, when Redis restarts or cannot be reached, drop it and connect
again after a delay from ``market.worker.backoff`` (1 → 30 s with jitter, reset after a
healthy connection). redis-py's own retries are off: the loop owning the client decides.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from market.errors import SettingsError
from market.worker import backoff

log = logging.getLogger(__name__)

SOCKET_TIMEOUT_S = 5.0
HEALTHY_AFTER_S = 10.0  # a connection that lasted this long resets the backoff


def check_url(name: str, value: str) -> str:
    """``redis://[user:password@]host[:port][/db]``; raises ``SettingsError`` naming ``name``
    (the password never appears in the message)."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
        db = parts.path.strip("/")
    except ValueError as exc:
        raise SettingsError(f"{name}: not a redis:// URL ({exc})") from None
    shown = f"{parts.scheme}://{parts.hostname or ''}{'' if port is None else f':{port}'}"
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise SettingsError(f"{name}={shown[:60]!r}: must be a redis://HOST[:PORT][/DB] URL")
    if db and not (db.isdigit() and int(db) < 1_000):
        raise SettingsError(
            f"{name}={shown[:60]!r}: the database must be a number, got {db[:20]!r}"
        )
    return text


def redacted(url: str) -> str:
    """The URL without its password (for statuses and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username or ''}:***@{netloc}").geturl()


def client(url: str) -> redis.Redis:
    """A client that fails fast (no hidden retries); the caller's loop reconnects."""
    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
        retry_on_error=[],
        health_check_interval=0,
    )


@dataclass(frozen=True, slots=True)
class LinkState:
    """How the bus connection is doing, for statuses: ``connecting``, ``connected``,
    ``reconnecting`` (with the reason and the next attempt), ``stopped``."""

    state: str = "connecting"
    detail: str = ""
    reconnects: int = 0
    next_retry_at: float | None = None
    connected_at: float | None = None


class Backoff:
    """The delays of one side's reconnect loop, reset after a healthy connection."""

    def __init__(self, initial: float = 1.0, cap: float = 30.0) -> None:
        self.initial = initial
        self.cap = cap
        self._delays: Iterator[float] = backoff(initial, 2.0, cap)

    def reset(self) -> None:
        self._delays = backoff(self.initial, 2.0, self.cap)

    def next(self) -> float:
        return next(self._delays)


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:80]}"


def wait(stop: threading.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless told to stop (True)."""
    return stop.wait(max(0.0, seconds))
