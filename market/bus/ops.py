"""The collector's side of the CLI and the operations view of the bus.

``WantsServer`` turns the readers' wants into the collector's symbols with the single
process's union-of-wants rule (``market.wants.Demand``).
``bus_status`` reads every collector's and reader's heartbeat and returns the JSON of
``python -m market status`` (the Feeds page draws the same dict).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import redis

from market.bus import schema
from market.bus.link import describe, redacted
from market.errors import InvalidSymbol, MarketError
from market.symbols import validate_symbol
from market.wants import DEFAULT_GRACE_S, Demand

log = logging.getLogger(__name__)

STATUS_TIMEOUT_S = 2.0


def check_wants(reader: str, wanted: Sequence[str]) -> tuple[tuple[str, ...], list[schema.Refusal]]:
    """A reader's wanted symbols in the worker's form (``btc-usdt`` → ``BTCUSDT``), and a
    refusal for each one that is not a symbol. Pure."""
    symbols: list[str] = []
    refused: list[schema.Refusal] = []
    for raw in wanted:
        try:
            symbol = validate_symbol(raw).replace("-", "")
        except InvalidSymbol as exc:
            refused.append(schema.Refusal(reader, raw[:30], f"invalid symbol: {exc}"))
            continue
        if symbol and symbol not in symbols:
            symbols.append(symbol)
    return tuple(symbols), refused


class Reconfigure(Protocol):
    """Sets the collector's symbols (the worker's ``reconfigure``); raises a ``MarketError``
    to refuse them."""

    def __call__(self, *, symbols: tuple[str, ...]) -> object: ...


class WantsServer:
    """The publisher's wants handler in ``collect``: every reader is a session of one
    ``market.wants.Demand`` (the single process's union-of-wants rule: the collector's own
    ``exchanges`` and ``symbols`` always, a reader's symbols until it has been gone for the
    grace), applied with ``reconfigure(symbols=…)``; a union refused is refused to the reader
    that asked, with the reason."""

    def __init__(
        self,
        reconfigure: Reconfigure,
        exchanges: tuple[str, ...],
        symbols: tuple[str, ...],
        *,
        grace_s: float = DEFAULT_GRACE_S,
    ) -> None:
        self._reconfigure = reconfigure
        self.demand = Demand(self._apply, exchanges, symbols, grace_s=grace_s)
        self._readers: set[str] = set()

    def _apply(self, exchanges: tuple[str, ...], symbols: tuple[str, ...]) -> None:
        self._reconfigure(symbols=symbols)

    def __call__(self, wants: Mapping[str, tuple[str, ...]]) -> list[schema.Refusal]:
        refused: list[schema.Refusal] = []
        for reader in self._readers - set(wants):
            self.demand.drop(reader)  # gone: its symbols stay for the grace, then go
        self._readers = set(wants)
        for reader, wanted in sorted(wants.items()):
            symbols, bad = check_wants(reader, wanted)
            refused += bad
            try:
                self.demand.want(reader, (), symbols)
            except MarketError as exc:
                served = set(self.demand.union()[1])
                reason = f"refused by the collector: {str(exc)[:80]}"
                refused += [schema.Refusal(reader, s, reason) for s in symbols if s not in served]
        self.demand.sweep()
        return refused


def _age(now: float, at: float | None) -> float | None:
    return None if at is None else round(max(0.0, now - at), 3)


def _round(age: float | None) -> float | None:
    return None if age is None else round(age, 3)


def collector_json(beat: schema.Heartbeat, now: float, down_after: float) -> dict[str, Any]:
    """One collector's operations view (its heartbeat as seen ``now``)."""
    up_since = dict(beat.up_since)
    statuses = beat.statuses
    return {
        "id": beat.c,
        "host": beat.host,
        "pid": beat.pid,
        "alive": now - beat.sent <= down_after,
        "heartbeat_age_s": _age(now, beat.sent),
        "uptime_s": _age(now, beat.started),
        "published": beat.published,
        "exchanges": [
            {
                "exchange": s.exchange,
                "state": s.state,
                "detail": s.detail,
                "source": s.source,
                "uptime_s": _age(now, up_since.get(s.exchange)),
                "reconnects": s.reconnects,
                "resyncs": s.resyncs,
                "messages": s.messages,
                "bad_messages": s.bad_messages,
                "messages_per_s": s.msg_rate,
                "last_message_age_s": _round(s.last_message_age(now)),
            }
            for s in statuses
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
