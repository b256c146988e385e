"""The Redis connection of a bus publisher or reader: client, reconnect loop, state.

Both sides keep one client and, when Redis restarts or cannot be reached, drop it and connect
again after a delay from ``market.backoff.Backoff`` (1 → 30 s with jitter, reset after a
healthy connection). redis-py's own retries are off: ``Link``'s loop decides. The work done
on each connection is the owner's callable (``serve``); the loop, its thread and its state
(``LinkState``) are here, once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from market.backoff import Backoff
from market.redact import redact_text, redact_url

log = logging.getLogger(__name__)

SOCKET_TIMEOUT_S = 5.0
HEALTHY_AFTER_S = 10.0  # a connection that lasted this long resets the backoff

Serve = Callable[[redis.Redis], None]


def down_after(stale_after: float, heartbeat: float = 1.0) -> float:
    """How long without a heartbeat before a collector is shown down: three heartbeats (or
    half the staleness limit when longer), and always inside the limit."""
    return min(max(3.0 * heartbeat, stale_after / 2.0), stale_after * 0.75)


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


class Link:
    """One Redis connection kept up by a thread until ``stop()``.

    Each connection: a fresh ``client``, a ``PING``, then ``serve(client)`` until it returns
    (``stopping`` is set) or raises a Redis or socket error; then a backoff delay, during which
    ``idle()`` runs every ``idle_every`` seconds, and the next connection. When ``stopping`` is
    set, ``on_stop(client)`` runs once with the last client before it is closed (a clean
    goodbye). ``status`` is the ``LinkState``; ``name`` starts the log lines.
    """

    def __init__(
        self,
        url: str,
        name: str,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.name = name
        self.clock = clock
        self.stopping = threading.Event()
        self._backoff = backoff or Backoff()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards _status (read by other threads)
        self._status = LinkState()

    @property
    def status(self) -> LinkState:
        with self._lock:
            return self._status

    def start(
        self,
        serve: Serve,
        *,
        on_stop: Serve | None = None,
        idle: Callable[[], None] | None = None,
        idle_every: float = 1.0,
    ) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, args=(serve, on_stop, idle, idle_every),
                name=self.name.replace(" ", "-"), daemon=True,
            )  # fmt: skip
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _set(self, **changes: object) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)  # type: ignore[arg-type]

    def _run(
        self,
        serve: Serve,
        on_stop: Serve | None,
        idle: Callable[[], None] | None,
        idle_every: float,
    ) -> None:
        while not self.stopping.is_set():
            r = client(self.url)
            connected = time.monotonic()
            try:
                r.ping()
                self._set(
                    state="connected", detail=redacted(self.url), next_retry_at=None,
                    connected_at=self.clock(),
                )  # fmt: skip
                log.info("%s connected to %s", self.name, redacted(self.url))
                serve(r)
            except (redis.RedisError, OSError) as exc:
                if time.monotonic() - connected > HEALTHY_AFTER_S:
                    self._backoff.reset()
                delay = self._backoff.next()
                reason = describe(exc)
                with self._lock:
                    self._status = replace(
                        self._status, state="reconnecting", detail=f"bus: {reason}",
                        reconnects=self._status.reconnects + 1,
                        next_retry_at=self.clock() + delay,
                    )  # fmt: skip
                log.info("%s: %s; reconnecting in %.1f s", self.name, reason, delay)
                self._pause(delay, idle, idle_every)
            finally:
                if self.stopping.is_set() and on_stop is not None:
                    on_stop(r)
                r.close()
        self._set(state="stopped", next_retry_at=None)

    def _pause(self, delay: float, idle: Callable[[], None] | None, every: float) -> None:
        """Wait ``delay`` (unless stopped), running ``idle`` every ``every`` seconds."""
        if idle is None:
            self.stopping.wait(delay)
            return
        deadline = time.monotonic() + delay
        while not self.stopping.is_set() and time.monotonic() < deadline:
            idle()
            self.stopping.wait(min(every, deadline - time.monotonic()))


def describe(exc: BaseException) -> str:
    """A short reason for a Redis error (any URL in it redacted)."""
    text = str(exc) or type(exc).__name__
    return redact_text(f"{type(exc).__name__}: {text[:80]}")


def redacted(url: str) -> str:
    """The URL without its password (for statuses and logs): the one redactor's."""
    return redact_url(url, keep_user=True)
