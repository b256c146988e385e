"""What open sessions want, and the union the worker serves.

Each open dashboard session (or bus reader) says which exchanges and symbols it wants; every
call is also its heartbeat. The worker serves the union of those wants plus the server's
defaults (``MARKET_EXCHANGE`` / ``MARKET_SYMBOLS``), which are always fed. An exchange or a
symbol leaves the union only once no session has wanted it for ``grace_s`` seconds, so a viewer
flicking a symbol off and on again does not tear down its subscription, and a session that
stops ticking (a closed tab) is forgotten after the grace.

Pure and thread-safe: no I/O, no streamlit; the clock is injected. ``apply`` (in the app,
``Worker.reconfigure``) is called with the new union only when it changes, outside the state
lock but one call at a time, so the last call always carries the latest union.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Apply = Callable[[tuple[str, ...], tuple[str, ...]], None]
DEFAULT_GRACE_S = 60.0


@dataclass(frozen=True, slots=True)
class _Want:
    exchanges: tuple[str, ...]
    symbols: tuple[str, ...]
    seen: float  # clock time of the session's last call


class Demand:
    """What open sessions want; the worker serves the union (plus the server's defaults, always)."""

    def __init__(
        self,
        apply: Apply,
        exchanges: tuple[str, ...],
        symbols: tuple[str, ...],
        grace_s: float = DEFAULT_GRACE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if grace_s < 0:
            raise ValueError(f"grace_s must be >= 0, not {grace_s!r}")
        self._apply = apply
        self._defaults = (_unique(exchanges), _unique(symbols))
        self.grace_s = grace_s
        self._clock = clock
        # Guards _sessions and _exchange_seen/_symbol_seen (held briefly, never across apply).
        self._lock = threading.Lock()
        self._sessions: dict[str, _Want] = {}
        # item -> the last time any session wanted it; insertion order = order first wanted
        self._exchange_seen: dict[str, float] = {}
        self._symbol_seen: dict[str, float] = {}
        # Serializes apply calls and guards _applied: the union the worker was last given.
        self._apply_lock = threading.Lock()
        self._applied = self._defaults

    # -- sessions -----------------------------------------------------------------------------

    def want(self, session: str, exchanges: Sequence[str], symbols: Sequence[str]) -> None:
        """``session`` wants these (replacing what it wanted before); also its heartbeat.

        If ``apply`` refuses the new union (e.g. a symbol an exchange cannot list), the
        session's previous want is restored and the error is raised to the caller.
        """
        want_ex, want_sym = _unique(exchanges), _unique(symbols)
        with self._lock:
            now = self._clock()
            before = self._sessions.get(session)
            new_ex = [e for e in want_ex if e not in self._exchange_seen]
            new_sym = [s for s in want_sym if s not in self._symbol_seen]
            if before is not None:  # what it wanted until now was wanted until now
                _touch(self._exchange_seen, before.exchanges, now)
                _touch(self._symbol_seen, before.symbols, now)
            _touch(self._exchange_seen, want_ex, now)
            _touch(self._symbol_seen, want_sym, now)
            self._sessions[session] = _Want(want_ex, want_sym, now)
        try:
            self._refresh()
        except Exception:
            with self._lock:
                current = self._sessions.get(session)
                if current is not None and current.seen == now:  # still this call's want
                    if before is None:
                        del self._sessions[session]
                    else:
                        self._sessions[session] = _Want(before.exchanges, before.symbols, now)
                for e in new_ex:
                    if not self._wanted_by_session(e, exchanges=True):
                        self._exchange_seen.pop(e, None)
                for s in new_sym:
                    if not self._wanted_by_session(s, exchanges=False):
                        self._symbol_seen.pop(s, None)
            self._refresh()
            raise

    def drop(self, session: str) -> None:
        """The session is closed: its wants linger for the grace period, then go."""
        with self._lock:
            before = self._sessions.pop(session, None)
            if before is None:
                return
            now = self._clock()
            _touch(self._exchange_seen, before.exchanges, now)
            _touch(self._symbol_seen, before.symbols, now)
        self._refresh()

    def sweep(self) -> None:
        """Forget sessions silent for more than ``grace_s``; re-apply the union if it changed."""
        self._refresh()

    # -- reading ------------------------------------------------------------------------------

    @property
    def defaults(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The server's own (exchanges, symbols): always in the union."""
        return self._defaults

    def union(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(exchanges, symbols) to feed now: the defaults first, then by first wanted."""
        with self._lock:
            return self._union_locked(self._clock())

    def sessions(self) -> dict[str, float]:
        """Each known session and the seconds since its last call."""
        with self._lock:
            now = self._clock()
            return {name: max(0.0, now - want.seen) for name, want in self._sessions.items()}

    def wanted(self, session: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """What ``session`` last asked for, or None if it is unknown (never asked, or gone)."""
        with self._lock:
            want = self._sessions.get(session)
            return None if want is None else (want.exchanges, want.symbols)

    # -- internals ----------------------------------------------------------------------------

    def _refresh(self) -> None:
        with self._apply_lock:
            with self._lock:
                union = self._union_locked(self._clock())
            if union == self._applied:
                return
            self._apply(*union)  # may raise: then _applied is unchanged
            self._applied = union

    def _union_locked(self, now: float) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Expire what nobody wanted within the grace, then the union (``_lock`` held)."""
        for name in [n for n, w in self._sessions.items() if now - w.seen > self.grace_s]:
            del self._sessions[name]
        for seen in (self._exchange_seen, self._symbol_seen):
            for item in [i for i, t in seen.items() if now - t > self.grace_s]:
                del seen[item]
        defaults_ex, defaults_sym = self._defaults
        return (
            _unique((*defaults_ex, *self._exchange_seen)),
            _unique((*defaults_sym, *self._symbol_seen)),
        )

    def _wanted_by_session(self, item: str, *, exchanges: bool) -> bool:
        return any(
            item in (want.exchanges if exchanges else want.symbols)
            for want in self._sessions.values()
        )


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _touch(seen: dict[str, float], items: Iterable[str], now: float) -> None:
    for item in items:
        seen[item] = now
