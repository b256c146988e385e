"""Normalized events: what every feed adapter produces and the pipeline consumes.

Market events are frozen ``msgspec.Struct``s (``gc=False``: they hold no cycles, and the
collector never has to walk the thousands a second a busy feed makes); construction costs a
fraction of a frozen dataclass's. Prices and sizes are floats converted once, in the parser
(msgspec's typed decoding turns the exchanges' price strings into floats in C); a level is
``(price, qty)`` with an absolute quantity (0 removes the level).
Times: ``ts_ms`` is the exchange's own timestamp in ms (or None), ``received_at`` the local
receive time in seconds since the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import msgspec

Level = tuple[float, float]
Levels = tuple[Level, ...]
Side = Literal["buy", "sell"]
FeedState = Literal["connecting", "live", "reconnecting", "blocked", "simulated", "stopped"]
Source = Literal["live", "simulated", "replay"]


class BookSnapshot(msgspec.Struct, frozen=True, gc=False):
    """A whole book image: replaces the local book."""

    exchange: str
    symbol: str
    bids: Levels
    asks: Levels
    update_id: int
    ts_ms: int | None = None
    received_at: float = 0.0


class BookDelta(msgspec.Struct, frozen=True, gc=False):
    """Changed levels with absolute quantities, covering update ids ``first_id..last_id``.

    ``prev_id`` is the id the previous delta must have ended on, where the exchange says so
    (a ``u`` chain); None where continuity is checked by ``first_id`` (a diff stream bracketed
    by a REST snapshot)
    """

    exchange: str
    symbol: str
    bids: Levels
    asks: Levels
    first_id: int
    last_id: int
    prev_id: int | None = None
    ts_ms: int | None = None
    received_at: float = 0.0


class Trade(msgspec.Struct, frozen=True, gc=False):
    """One trade. ``side`` is the taker's side: "buy" means buyer-initiated."""

    exchange: str
    symbol: str
    price: float
    qty: float
    side: Side
    ts_ms: int
    trade_id: str = ""
    received_at: float = 0.0
    backfill: bool = False


class Ticker(msgspec.Struct, frozen=True, gc=False):
    """24 h statistics for one market; None where the exchange did not say."""

    exchange: str
    symbol: str
    last: float | None = None
    change_pct: float | None = None
    volume: float | None = None
    quote_volume: float | None = None
    high: float | None = None
    low: float | None = None
    bid: float | None = None
    ask: float | None = None
    ts_ms: int | None = None
    received_at: float = 0.0


class ServerNotice(msgspec.Struct, frozen=True, gc=False):
    """What a venue said about the connection or about a request of ours (not market data).

    ``kind``: ``shutdown`` (the venue is going away: reconnect now), ``reply`` (an answer to a
    request; ``request`` is its id), ``error``, or the venue's own word for the reply (an
    ``op`` such as subscribe, unsubscribe, ping, pong; a ``channel`` such as
    subscriptionResponse). ``ok`` is False for a refusal, ``detail`` says why.
    """

    exchange: str
    kind: str
    detail: str = ""
    ok: bool = True
    request: str = ""


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """The health of one exchange connection, as shown on the page and in the CLI.

    Times are absolute (seconds since the epoch, None when unknown): whoever shows the status
    computes its ages as of its own ``now`` (``last_message_age``, ``next_retry_in``,
    ``is_stale``), so a status kept for a while never shows a stale age.
    """

    exchange: str
    state: FeedState = "connecting"
    detail: str = ""
    source: Source = "live"
    reconnects: int = 0
    resyncs: int = 0
    messages: int = 0
    bad_messages: int = 0
    last_message_at: float | None = None  # when the last message arrived
    msg_rate: float = 0.0
    next_retry_at: float | None = None  # when the next connection attempt is due
    stale_after_s: float = 30.0
    symbols: tuple[str, ...] = field(default_factory=tuple)

    def last_message_age(self, now: float) -> float | None:
        """Seconds since the last message as of ``now`` (never negative); None before one."""
        at = self.last_message_at
        return None if at is None else max(0.0, now - at)

    def next_retry_in(self, now: float) -> float | None:
        """Seconds until the next connection attempt as of ``now`` (never negative); None
        when none is scheduled."""
        at = self.next_retry_at
        return None if at is None else max(0.0, at - now)

    def is_stale(self, now: float) -> bool:
        """True when, as of ``now``, a live (or simulated) feed has had no message for longer
        than ``stale_after_s``."""
        age = self.last_message_age(now)
        return self.state in ("live", "simulated") and age is not None and age > self.stale_after_s


Event = BookSnapshot | BookDelta | Trade | Ticker | ServerNotice
