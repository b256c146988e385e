"""The bus's messages: versioned, compact (msgpack through msgspec), one Struct per kind.

Every message is a map ``{"v": 1, "kind": "book", ...}`` with short field names. On a symbol's
channel, one ``tick`` per market and publication carries its new parts (``book``, ``trades``,
``candles``, ``alerts``, ``ticker``); the latest-value hash keeps each part alone. A reader
decodes the tagged union in one pass; when that fails it decodes only ``{v, kind}`` to tell a
message of another version (refused with a clear status) from garbage (counted and skipped).

Times are seconds since the epoch (the collector's clock); ``at`` on a book is the local
receive time of the exchange frame that last changed it, ``sent`` the publication time.
"""

from __future__ import annotations

import msgspec

from market.analytics import Candle, WhaleAlert
from market.events import FeedState, FeedStatus, Levels, Side, Source, Ticker, Trade

VERSION = 1
PREFIX = "mkt:"
CONTROL_CHANNEL = PREFIX + "ctl"  # heartbeats, feed statuses, wants, refusals


def symbol_channel(symbol: str) -> str:
    """Every exchange's messages about one symbol (a reader subscribes the symbols it wants)."""
    return f"{PREFIX}s:{symbol}"


def market_key(exchange: str, symbol: str) -> str:
    """The latest-value hash of one market: fields ``book``, ``trades``, ``candles``,
    ``ticker`` (a late joiner reads it once, then follows the channel)."""
    return f"{PREFIX}v:{exchange}:{symbol}"


def owner_key(exchange: str, symbol: str) -> str:
    """Which collector publishes this market (``SET NX PX``, refreshed with the heartbeat)."""
    return f"{PREFIX}own:{exchange}:{symbol}"


def epoch_key(exchange: str, symbol: str) -> str:
    """``INCR`` on every change of owner: readers drop messages of an older owner."""
    return f"{PREFIX}epoch:{exchange}:{symbol}"


def collector_key(collector: str) -> str:
    return f"{PREFIX}hb:c:{collector}"


def reader_key(reader: str) -> str:
    return f"{PREFIX}hb:r:{reader}"


def want_key(reader: str) -> str:
    return f"{PREFIX}want:{reader}"


COLLECTORS_MATCH = PREFIX + "hb:c:*"
READERS_MATCH = PREFIX + "hb:r:*"
WANTS_MATCH = PREFIX + "want:*"


class _Msg(msgspec.Struct, frozen=True, gc=False, tag_field="kind", kw_only=True):
    v: int = VERSION


class Book(_Msg, tag="book", frozen=True):
    """A market's top-of-book and top-20 levels (best first), at most every 100 ms."""

    c: str  # collector id
    e: int  # owner epoch of this market
    seq: int  # the collector's store version when copied (orders messages of one epoch)
    x: str  # exchange
    s: str  # symbol
    src: Source
    bids: Levels
    asks: Levels
    uid: int  # the venue's update id
    at: float | None  # local receive time of the frame that last changed the book
    sent: float
    synced: bool
    detail: str = ""
    bu: int = 0  # book updates applied
    rs: int = 0  # resyncs


class TradeMsg(msgspec.Struct, frozen=True, gc=False, array_like=True):
    price: float
    qty: float
    side: Side
    ts_ms: int
    trade_id: str
    received_at: float
    backfill: bool


class Session(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    trades: int = 0
    vwap: float | None = None
    cvd: float = 0.0
    high: float | None = None
    low: float | None = None
    vs: float = 0.0  # volatility spread, %
    whale: float = 0.0
    started: float | None = None


class CandleMsg(msgspec.Struct, frozen=True, gc=False, array_like=True):
    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int
    notional: float


class Trades(_Msg, tag="trades", frozen=True):
    """New trades of a market (oldest first), its trade count and session figures."""

    c: str
    e: int
    seq: int
    x: str
    s: str
    src: Source
    trades: tuple[TradeMsg, ...]
    seen: int  # trades seen by the collector since the market started
    session: Session
    full: bool = False  # the latest-value image: the last trades kept, replacing the tape


class Candles(_Msg, tag="candles", frozen=True):
    """One-minute candles, oldest first: the last two on every trade batch, all in the
    latest-value hash (``full``)."""

    c: str
    e: int
    seq: int
    x: str
    s: str
    candles: tuple[CandleMsg, ...]
    full: bool = False


class AlertMsg(msgspec.Struct, frozen=True, gc=False, array_like=True):
    ts_ms: int
    side: str
    price: float
    qty: float
    notional: float


class Alerts(_Msg, tag="alerts", frozen=True):
    c: str
    e: int
    seq: int
    x: str
    s: str
    alerts: tuple[AlertMsg, ...]  # new whale alerts, oldest first
    full: bool = False  # the latest-value image: the session's alerts, replacing them


class TickerMsg(_Msg, tag="ticker", frozen=True):
    c: str
    e: int
    seq: int
    x: str
    s: str
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


Part = Book | Trades | Candles | Alerts | TickerMsg


class Tick(_Msg, tag="tick", frozen=True):
    """Everything new about one market in one publication (one message, not five: the
    per-message cost dominates a reader's CPU); each part keeps its own kind and order."""

    x: str
    s: str
    parts: tuple[Part, ...]


class Status(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """One exchange connection's health (``FeedStatus``) as the collector saw it at ``sent``."""

    x: str
    state: FeedState
    detail: str = ""
    src: Source = "live"
    reconnects: int = 0
    resyncs: int = 0
    messages: int = 0
    bad: int = 0
    last_at: float | None = None  # time of the last exchange message
    rate: float = 0.0
    retry_in: float | None = None
    stale_after: float = 30.0
    symbols: tuple[str, ...] = ()
    up_since: float | None = None  # live (or simulated) without a break since then


class Refusal(msgspec.Struct, frozen=True, gc=False):
    reader: str
    symbol: str
    reason: str


class Heartbeat(_Msg, tag="hb", frozen=True):
    """The collector is alive: its feeds, the markets it publishes and those it refused."""

    c: str
    host: str
    pid: int
    started: float
    sent: float
    interval: float
    exchanges: tuple[str, ...]
    symbols: tuple[str, ...]
    statuses: tuple[Status, ...]
    owned: tuple[tuple[str, str], ...]  # (exchange, symbol) published by this collector
    refused: tuple[tuple[str, str, str], ...] = ()  # (exchange, symbol, owner) not published
    book_at: tuple[tuple[str, str, float], ...] = ()  # (exchange, symbol, book receive time)
    wants: tuple[Refusal, ...] = ()  # readers' wants refused, with the reason
    published: int = 0  # messages published since start
    publish_errors: int = 0
    bye: bool = False  # the collector is stopping: its markets are down from now on


class ReaderBeat(_Msg, tag="rhb", frozen=True):
    """A reader (dashboard process or ``watch --bus``) is alive."""

    r: str
    host: str
    pid: int
    started: float
    sent: float
    symbols: tuple[str, ...]
    state: str
    received: int
    garbage: int
    refused: int
    role: str = "reader"  # watch, dashboard


class Want(_Msg, tag="want", frozen=True):
    """A reader asks the collectors for these symbols (also kept in ``want:<reader>``)."""

    r: str
    symbols: tuple[str, ...]


Message = Tick | Book | Trades | Candles | Alerts | TickerMsg | Heartbeat | ReaderBeat | Want


class _Head(msgspec.Struct, gc=False):
    v: object = None
    kind: object = None


class UnknownVersion(Exception):
    """A message of a version this reader does not know (refused, with a status)."""

    def __init__(self, version: object, kind: object) -> None:
        super().__init__(f"bus message version {str(version)[:20]} (kind {str(kind)[:20]})")
        self.version = version


class Garbage(Exception):
    """Bytes on the bus that are not a message of ours (counted and skipped)."""


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)
_head = msgspec.msgpack.Decoder(_Head)


def encode(message: Message) -> bytes:
    return _encoder.encode(message)


def decode(data: bytes) -> Message:
    """One message; raises ``UnknownVersion`` or ``Garbage`` (with a short excerpt)."""
    try:
        message = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        try:
            head = _head.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            head = None
        if head is not None and isinstance(head.v, int) and head.v != VERSION:
            raise UnknownVersion(head.v, head.kind) from None
        raise Garbage(f"{exc}; bytes {bytes(data[:40])!r}") from None
    if message.v != VERSION:
        raise UnknownVersion(message.v, type(message).__name__)
    return message


# -- conversions ------------------------------------------------------------------------------


def trade_msg(t: Trade) -> TradeMsg:
    return TradeMsg(t.price, t.qty, t.side, t.ts_ms, t.trade_id, t.received_at, t.backfill)


def trade_of(m: TradeMsg, exchange: str, symbol: str) -> Trade:
    return Trade(
        exchange, symbol, m.price, m.qty, m.side, m.ts_ms, m.trade_id, m.received_at, m.backfill
    )


def candle_msg(c: Candle) -> CandleMsg:
    return CandleMsg(c.open_ms, c.open, c.high, c.low, c.close, c.volume, c.trades, c.notional)


def candle_of(m: CandleMsg) -> Candle:
    return Candle(m.open_ms, m.open, m.high, m.low, m.close, m.volume, m.trades, m.notional)


def alert_msg(a: WhaleAlert) -> AlertMsg:
    return AlertMsg(a.ts_ms, a.side, a.price, a.qty, a.notional)


def alert_of(m: AlertMsg, exchange: str, symbol: str) -> WhaleAlert:
    return WhaleAlert(m.ts_ms, exchange, symbol, m.side, m.price, m.qty, m.notional)


def ticker_of(m: TickerMsg) -> Ticker:
    return Ticker(
        m.x, m.s, m.last, m.change_pct, m.volume, m.quote_volume, m.high, m.low, m.bid, m.ask,
        m.ts_ms, m.received_at,
    )  # fmt: skip


def status_msg(s: FeedStatus, now: float, up_since: float | None) -> Status:
    return Status(
        s.exchange, s.state, s.detail, s.source, s.reconnects, s.resyncs, s.messages,
        s.bad_messages, s.last_message_at, s.msg_rate, s.next_retry_in(now), s.stale_after_s,
        s.symbols, up_since,
    )  # fmt: skip


def status_of(m: Status, now: float, sent: float) -> FeedStatus:
    """The feed status as a reader shows it: the collector's last-message time; the retry
    due after what remained of its delay when ``sent``, on the reader's clock from ``now``."""
    retry = None if m.retry_in is None else now + max(0.0, m.retry_in - max(0.0, now - sent))
    return FeedStatus(
        exchange=m.x,
        state=m.state,
        detail=m.detail,
        source=m.src,
        reconnects=m.reconnects,
        resyncs=m.resyncs,
        messages=m.messages,
        bad_messages=m.bad,
        last_message_at=m.last_at,
        msg_rate=m.rate,
        next_retry_at=retry,
        stale_after_s=m.stale_after,
        symbols=m.symbols,
    )
