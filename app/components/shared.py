"""What every open tab can share: one process-wide, bounded, lock-guarded cache.

Every tab that shows the same market and view at the same store version needs the same
figure; with ten tabs open, building it ten times a tick is nine times too many. ``SharedCache``
keeps the last few dozen built values by key (the store, its version, the view's parameters),
least recently used out first, and builds a missing one once: a second tab asking for a key
that is being built waits for that build instead of repeating it.

Values must be immutable (or never mutated by a reader): they are handed to every thread.
Market data lives here only as derived, bounded, shared values, never per session.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from itertools import count
from typing import Generic, TypeVar

from streamlit.runtime.scriptrunner import get_script_run_ctx

from app.components.theme import REFRESH_S

V = TypeVar("V")

DEFAULT_ENTRIES = 48
TICK_S = REFRESH_S / 2  # a timed refresh may show a snapshot up to this old (another tab's)

_OWNERS: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()
_OWNERS_LOCK = threading.Lock()
_SERIAL = count(1)


def owner_token(owner: object) -> int:
    """A number naming ``owner`` (a store) for as long as it lives: unlike ``id``, never
    reused by a later object, so a cache key with it never matches another store's values."""
    with _OWNERS_LOCK:
        token = _OWNERS.get(owner)
        if token is None:
            token = _OWNERS[owner] = next(_SERIAL)
        return token


def reuse_s() -> float:
    """How old a snapshot another tab took may be for this run to show it: ``TICK_S`` in a
    run of the fragment alone (its timer, or a click inside it), 0 (a fresh one) in a run of
    the whole page (a page load, a sidebar change)."""
    ctx = get_script_run_ctx()
    return TICK_S if ctx is not None and ctx.fragment_ids_this_run else 0.0


class SharedCache(Generic[V]):
    """A small LRU of built values; ``get(key, build)`` builds a missing value once."""

    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        self._entries = entries
        # Guards _values, _building, hits and builds; never held while a value is built.
        self._lock = threading.Lock()
        self._values: OrderedDict[Hashable, V] = OrderedDict()
        self._building: dict[Hashable, threading.Event] = {}
        self.hits = 0
        self.builds = 0

    def get(self, key: Hashable, build: Callable[[], V]) -> V:
        while True:
            with self._lock:
                if key in self._values:
                    self._values.move_to_end(key)
                    self.hits += 1
                    return self._values[key]
                pending = self._building.get(key)
                if pending is None:
                    done = self._building[key] = threading.Event()
                    break
            pending.wait()  # another tab is building it: take its result (or build if it failed)
        try:
            value = build()
            with self._lock:
                self._values[key] = value
                self._values.move_to_end(key)
                while len(self._values) > self._entries:
                    self._values.popitem(last=False)
                self.builds += 1
            return value
        finally:
            with self._lock:
                del self._building[key]
            done.set()

    def peek(self, key: Hashable) -> V | None:
        """The cached value, or None; does not count as a use."""
        with self._lock:
            return self._values.get(key)

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self._entries:
                self._values.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self.hits = self.builds = 0
