"""Per-exchange adapters, sans-I/O: URLs, subscribe frames, and ``parse(raw, received_at)``."""

from __future__ import annotations

from typing import Any

import orjson

from market.errors import BadMessage
from market.events import Levels

_INF = float("inf")


def decode_object(raw: str | bytes) -> dict[str, Any]:
    """Decode one frame that must be a JSON object; ``BadMessage`` for anything else."""
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadMessage(f"not JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise BadMessage(f"expected a JSON object, got {type(msg).__name__}")
    return msg


# Validators shared by the parsers: each raises TypeError/ValueError, which the parser turns
# into ``BadMessage``. Exchanges send numbers as strings; a bool or a null is never a number.


def number(raw: object) -> float:
    """A finite number (string or JSON number)."""
    if type(raw) is bool or raw is None:
        raise TypeError(f"not a number: {raw!r:.40}")
    value = float(raw)  # type: ignore[arg-type]
    if not -_INF < value < _INF:  # also false for NaN
        raise ValueError(f"not a finite number: {raw!r:.40}")
    return value


def positive(raw: object) -> float:
    value = number(raw)
    if value <= 0:
        raise ValueError(f"not a positive number: {raw!r:.40}")
    return value


def non_negative(raw: object) -> float:
    value = number(raw)
    if value < 0:
        raise ValueError(f"negative: {raw!r:.40}")
    return value


def price(raw: object) -> float | None:
    """A quoted price where "0" means "none" (an empty side): None then."""
    value = non_negative(raw)
    return value if value > 0 else None


def optional(raw: object, check: Any = positive) -> float | None:
    """``check(raw)``, or None where the exchange sent nothing (absent, null or "")."""
    return None if raw is None or raw == "" else check(raw)


def symbol(raw: object) -> str:
    if type(raw) is not str or not raw:
        raise TypeError(f"symbol must be a non-empty string, got {raw!r:.40}")
    return raw


def levels(raw: object) -> Levels:
    """``[["price", "qty"], …]`` → levels; anything else (NaN, negative, a string) is refused."""
    if type(raw) is not list:
        raise TypeError(f"levels must be a list, got {type(raw).__name__}")
    out = []
    for level in raw:
        if type(level) is not list or len(level) < 2:
            raise TypeError(f"a level must be [price, qty], got {level!r:.40}")
        price, qty = float(level[0]), float(level[1])
        if not (0 < price < _INF and 0 <= qty < _INF):  # also false for NaN
            raise ValueError(f"bad level {level!r:.60}")
        out.append((price, qty))
    return tuple(out)
