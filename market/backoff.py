"""Delays for every retry loop in the house: feeds, snapshots, the bus link, the history writer.

A leaf: it imports nothing of ``market``. ``backoff()`` is the generator (websockets' shape: a
first delay, a factor, a cap, each draw shortened by up to ``jitter``); ``Backoff`` holds one
and is reset after a healthy connection or a successful write.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator


def backoff(
    initial: float = 1.0,
    factor: float = 2.0,
    cap: float = 30.0,
    jitter: float = 0.2,
    rng: Callable[[], float] = random.random,
) -> Iterator[float]:
    """Retry delays: ``initial`` doubling to ``cap``, each shortened by up to ``jitter``.

    With the defaults: about 1, 2, 4, 8, 16, 30, 30 … seconds. Jitter spreads out many
    clients reconnecting at once; a delay never exceeds the cap.
    """
    delay = min(initial, cap)
    while True:
        yield delay * (1.0 - jitter * rng())
        delay = min(cap, delay * factor)


class Backoff:
    """The delays of one retry loop: ``next()`` after a failure, ``reset()`` after success."""

    def __init__(
        self, initial: float = 1.0, cap: float = 30.0, factor: float = 2.0, jitter: float = 0.2
    ) -> None:
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self._delays: Iterator[float] = backoff(initial, factor, cap, jitter)

    def reset(self) -> None:
        self._delays = backoff(self.initial, self.factor, self.cap, self.jitter)

    def next(self) -> float:
        return next(self._delays)
