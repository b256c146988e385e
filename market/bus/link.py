"""The Redis connection of a bus publisher or reader: URL check, client, backoff, state.

Both sides keep one client and, when Redis restarts or cannot be reached, drop it and connect
again after a delay from ``market.backoff.Backoff`` (1 → 30 s with jitter, reset after a
healthy connection). redis-py's own retries are off: the loop owning the client decides.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from market.redact import redact_url

log = logging.getLogger(__name__)

SOCKET_TIMEOUT_S = 5.0
HEALTHY_AFTER_S = 10.0  # a connection that lasted this long resets the backoff


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


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:80]}"


def wait(stop: threading.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless told to stop (True)."""
    return stop.wait(max(0.0, seconds))


def redacted(url: str) -> str:
    """The URL without its password (for statuses and logs): the one redactor's."""
    return redact_url(url, keep_user=True)
