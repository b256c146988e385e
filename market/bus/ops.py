"""The collector's side of the CLI and the operations view of the bus.

``union_of_wants`` is the one rule that turns the readers' wants into the collector's
symbols (the single process's union-of-wants rule; ``market.wants.Demand`` plugs in here).
``bus_status`` reads every collector's and reader's heartbeat and returns the JSON of
``python -m market status`` (the Feeds page draws the same dict).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import redis

from market.bus import schema
from market.bus.link import describe, redacted
from market.errors import InvalidSymbol, MarketError
from market.settings import MAX_SYMBOLS, validate_symbol
from market.worker import Worker

log = logging.getLogger(__name__)

STATUS_TIMEOUT_S = 2.0


def union_of_wants(
    base: Sequence[str], wants: Mapping[str, Sequence[str]], limit: int = MAX_SYMBOLS
) -> tuple[tuple[str, ...], list[schema.Refusal]]:
    """The collector's own symbols, then every reader's (readers in id order), each once, up to
    ``limit``; a want that cannot be served is refused with the reason. Pure."""
    symbols = list(dict.fromkeys(base))
    refused: list[schema.Refusal] = []
    for reader, wanted in sorted(wants.items()):
        for raw in wanted:
            try:
                symbol = validate_symbol(raw)
            except InvalidSymbol as exc:
                refused.append(schema.Refusal(reader, raw[:30], f"invalid symbol: {exc}"))
                continue
            if symbol in symbols:
                continue
            if len(symbols) >= limit:
                reason = f"the collector already watches its limit of {limit} symbols"
                refused.append(schema.Refusal(reader, symbol, reason))
                continue
            symbols.append(symbol)
    return tuple(symbols), refused


class WantsServer:
    """The publisher's wants handler in ``collect``: subscribes the union on the worker."""

    def __init__(self, worker: Worker, base: Sequence[str]) -> None:
        self.worker = worker
        self.base = tuple(base)

    def __call__(self, wants: Mapping[str, tuple[str, ...]]) -> list[schema.Refusal]:
        symbols, refused = union_of_wants(self.base, wants)
        if symbols == self.worker.settings.symbols:
            return refused
        try:
            self.worker.reconfigure(symbols=symbols)
        except MarketError as exc:  # the worker refused the set: keep ours, say why
            extra = [s for s in symbols if s not in self.base]
            log.warning("collect: readers' symbols refused: %s", exc)
            refused += [
                schema.Refusal(r, s, f"refused by the collector: {str(exc)[:80]}")
                for r, wanted in sorted(wants.items())
                for s in wanted
                if s in extra
            ]
            if self.worker.settings.symbols != self.base:
                self.worker.reconfigure(symbols=self.base)
        return refused


def _age(now: float, at: float | None) -> float | None:
    return None if at is None else round(max(0.0, now - at), 3)


def collector_json(beat: schema.Heartbeat, now: float, down_after: float) -> dict[str, Any]:
    """One collector's operations view (its heartbeat as seen ``now``)."""
    return {
        "id": beat.c,
        "host": beat.host,
        "pid": beat.pid,
        "alive": now - beat.sent <= down_after,
        "heartbeat_age_s": _age(now, beat.sent),
        "uptime_s": _age(now, beat.started),
        "published": beat.reader_msgs,
        "exchanges": [
            {
                "exchange": s.x,
                "state": s.state,
                "detail": s.detail,
                "source": s.src,
                "uptime_s": _age(now, s.up_since),
                "reconnects": s.reconnects,
                "resyncs": s.resyncs,
                "messages": s.messages,
                "bad_messages": s.bad,
                "messages_per_s": s.rate,
                "last_message_age_s": _age(now, s.last_at),
            }
            for s in beat.statuses
        ],
        "markets": [
            {"exchange": x, "symbol": s, "book_age_s": _age(now, at)} for x, s, at in beat.book_at
        ],
        "refused": [{"exchange": x, "symbol": s, "owner": o} for x, s, o in beat.refused],
        "wants_refused": [
            {"reader": w.reader, "symbol": w.symbol, "reason": w.reason} for w in beat.wants
        ],
    }


def reader_json(beat: schema.ReaderBeat, now: float) -> dict[str, Any]:
    return {
        "id": beat.r,
        "role": beat.role,
        "host": beat.host,
        "pid": beat.pid,
        "state": beat.state,
        "heartbeat_age_s": _age(now, beat.sent),
        "uptime_s": _age(now, beat.started),
        "symbols": list(beat.symbols),
        "received": beat.received,
        "garbage": beat.garbage,
        "refused_version": beat.refused,
    }


def read_beats(
    r: redis.Redis,
) -> tuple[list[schema.Heartbeat], list[schema.ReaderBeat], int]:
    """Every heartbeat kept on the bus: collectors', readers', and how many did not decode."""
    collectors: list[schema.Heartbeat] = []
    readers: list[schema.ReaderBeat] = []
    bad = 0
    for match in (schema.COLLECTORS_MATCH, schema.READERS_MATCH):
        names = list(r.scan_iter(match=match, count=500))
        for data in r.mget(names) if names else []:
            if not isinstance(data, bytes):
                continue
            try:
                msg = schema.decode(data)
            except (schema.Garbage, schema.UnknownVersion):
                bad += 1
                continue
            if isinstance(msg, schema.Heartbeat):
                collectors.append(msg)
            elif isinstance(msg, schema.ReaderBeat):
                readers.append(msg)
    collectors.sort(key=lambda b: b.c)
    readers.sort(key=lambda b: b.r)
    return collectors, readers, bad


def bus_status(url: str, now: float, down_after: float) -> dict[str, Any]:
    """``python -m market status --bus URL``: the bus, its collectors and readers."""
    out: dict[str, Any] = {"t": round(now, 3), "bus": redacted(url)}
    client = redis.Redis.from_url(
        url, socket_timeout=STATUS_TIMEOUT_S, socket_connect_timeout=STATUS_TIMEOUT_S
    )
    try:
        collectors, readers, bad = read_beats(client)
        memory = client.info("memory")
    except (redis.RedisError, OSError) as exc:
        out.update(state="unreachable", detail=describe(exc), collectors=[], readers=[])
        return out
    finally:
        client.close()
    out.update(
        state="connected",
        detail="",
        redis_used_memory=memory.get("used_memory"),
        collectors=[collector_json(b, now, down_after) for b in collectors],
        readers=[reader_json(b, now) for b in readers],
        bad_heartbeats=bad,
    )
    return out
