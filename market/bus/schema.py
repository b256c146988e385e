"""The bus's messages: versioned msgpack (through msgspec) envelopes around the house's structs.

Every message is a map ``{"v": 2, "kind": "book", ...}``: a small envelope (version, kind,
collector ``c``, owner epoch ``e``, store version ``seq``, exchange ``x``, symbol ``s``) around
the structs the collector's store holds, carried as they are (``Trade``, ``Ticker``, ``Candle``,
``WhaleAlert``, ``SessionView``, ``FeedStatus``): no mirror of them here, and a reader gets the
same values back, type-checked by msgspec as it decodes. On a symbol's channel, one ``tick``
per market and publication carries its new parts (``book``, ``trades``, ``candles``,
``alerts``, ``ticker``); the latest-value hash keeps each part alone. A reader decodes the
tagged union in one pass; when that fails it decodes only ``{v, kind}`` to tell a message of
another version (refused with a clear status) from garbage (counted and skipped). A struct
that names another market than its envelope is garbage too.

Times are seconds since the epoch (the collector's clock); ``at`` on a book is the local
receive time of the exchange frame that last changed it, ``sent`` the publication time.
"""

from __future__ import annotations

import msgspec

from market.analytics import Candle, WhaleAlert
from market.events import FeedStatus, Levels, Source, Ticker, Trade
from market.views import SessionView

VERSION = 2  # 2: the structs themselves in a tagged envelope (1: mirrored schemas)
PREFIX = "mkt:"
CONTROL_CHANNEL = PREFIX + "ctl"  # heartbeats, feed statuses, wants, refusals


def symbol_channel(symbol: str) -> str:
    """Every exchange's messages about one symbol (a reader subscribes the symbols it wants)."""
    return f"{PREFIX}s:{symbol}"


def market_key(exchange: str, symbol: str) -> str:
    """The latest-value hash of one market: fields ``book``, ``ticker`` (rewritten with every
    change), ``trades``, ``candles``, ``alerts`` (images rewritten at most once a second; what
    they lag is on ``since_key``). A late joiner reads it once, then follows the channel."""
    return f"{PREFIX}v:{exchange}:{symbol}"


# the most ticks a since list keeps (and a reader reads): ~10 s of publications, ten times what
# the images lag; bounded on both sides whatever another publisher on the Redis wrote there
SINCE_KEPT = 100


def since_key(market: str) -> str:
    """The list beside the hash ``market`` (a ``market_key``): a ``tick`` of the market's
    trades, candles and alerts parts for each publication since those images were last
    written, oldest first; emptied when they are rewritten (at most a second's worth)."""
    return PREFIX + "since:" + market.removeprefix(PREFIX + "v:")


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


class _Part(_Msg, frozen=True):
    """The envelope of one market's part: who sent it, under which epoch, and whose it is."""

    c: str  # collector id
    e: int  # owner epoch of this market
    seq: int  # the collector's store version when copied (orders messages of one epoch)
    x: str  # exchange
    s: str  # symbol


class Book(_Part, tag="book", frozen=True):
    """A market's top-20 levels (best first) and book counters, at most every 100 ms: the
    book fields of the store's ``MarketView`` (the view itself is not carried: its trades,
    ticker and session travel in their own parts, its series is the reader's own)."""

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


class Trades(_Part, tag="trades", frozen=True):
    """New trades of a market (oldest first), its trade count and session figures."""

    src: Source
    trades: tuple[Trade, ...]
    seen: int  # trades seen by the collector since the market started
    session: SessionView  # without candles and alerts: they travel in their own parts
    full: bool = False  # the latest-value image: the last trades kept, replacing the tape


class Candles(_Part, tag="candles", frozen=True):
    """One-minute candles, oldest first: the last two on every trade batch, all in the
    latest-value hash (``full``)."""

    candles: tuple[Candle, ...]
    full: bool = False


class Alerts(_Part, tag="alerts", frozen=True):
    alerts: tuple[WhaleAlert, ...]  # new whale alerts, oldest first
    full: bool = False  # the latest-value image: the session's alerts, replacing them


class TickerPart(_Part, tag="ticker", frozen=True):
    """The market's 24 h statistics, as the collector merged them."""

    ticker: Ticker


Part = Book | Trades | Candles | Alerts | TickerPart


class Tick(_Msg, tag="tick", frozen=True):
    """Everything new about one market in one publication (one message, not five: the
    per-message cost dominates a reader's CPU); each part keeps its own kind and order."""

    x: str
    s: str
    parts: tuple[Part, ...]


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
    statuses: tuple[FeedStatus, ...]  # each connection's health as of ``sent``
    owned: tuple[tuple[str, str], ...]  # (exchange, symbol) published by this collector
    up_since: tuple[tuple[str, float], ...] = ()  # (exchange, live without a break since)
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


Message = Tick | Book | Trades | Candles | Alerts | TickerPart | Heartbeat | ReaderBeat | Want


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
    stray = _stray(message)
    if stray:
        raise Garbage(f"{stray}; bytes {bytes(data[:40])!r}")
    return message


def _stray(message: Message) -> str:
    """Why a market's part names another market than its envelope (or "": none does)."""
    parts = message.parts if isinstance(message, Tick) else (message,)
    for part in parts:
        if not isinstance(part, _Part):
            continue
        x, s = part.x, part.s
        if isinstance(part, Trades):
            named = [(t.exchange, t.symbol) for t in part.trades]
        elif isinstance(part, Alerts):
            named = [(a.exchange, a.symbol) for a in part.alerts]
        elif isinstance(part, TickerPart):
            named = [(part.ticker.exchange, part.ticker.symbol)]
        else:
            continue
        for name in named:
            if name != (x, s):
                kind = part.__struct_config__.tag
                return f"{kind} of {name[0][:20]} {name[1][:20]} in a message of {x[:20]} {s[:20]}"
    return ""
