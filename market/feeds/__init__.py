"""Per-exchange adapters, sans-I/O: URLs, subscribe frames, and ``parse(raw, received_at)``."""

from __future__ import annotations

from typing import Any

import orjson

from market.errors import BadMessage


def decode_object(raw: str | bytes) -> dict[str, Any]:
    """Decode one frame that must be a JSON object; ``BadMessage`` for anything else."""
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadMessage(f"not JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise BadMessage(f"expected a JSON object, got {type(msg).__name__}")
    return msg
