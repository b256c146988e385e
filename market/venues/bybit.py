"""Bybit v5 public WebSocket: order book (50 levels), public trades, tickers.

    WS      {BYBIT_WS_URL}   spot: wss://stream.bybit.com/v5/public/spot
                             linear: wss://stream.bybit.com/v5/public/linear
    topics  orderbook.50.<SYMBOL>  publicTrade.<SYMBOL>  tickers.<SYMBOL>
    symbols upper case, no separator: BTCUSDT
    limits  ≤ 10 args per subscribe request on spot; send {"op":"ping"} every 20 s or the
            server closes the connection; HTTP 403 at the handshake = region block

Books: a ``snapshot`` frame replaces the book (so does a delta with ``u == 1``: a service
restart); ``delta`` frames apply, each continuing ``u`` by one (``market.sync.SequencedSync``);
a break resubscribes the topic. Linear tickers send a snapshot then deltas whose missing fields
mean "unchanged": ``Ticker`` fields are None there and the consumer merges.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import msgspec
import orjson

from market.errors import BadMessage, InvalidSymbol
from market.events import BookDelta, BookSnapshot, Event, ServerNotice, Side, Ticker, Trade
from market.settings import Settings
from market.sync import SequencedSync
from market.venues.base import (
    DEFAULT_KLINES,
    NO_ACTIONS,
    Action,
    Kline,
    KlineRequest,
    Output,
    Resubscribe,
    Send,
    Session,
    Status,
    Venue,
    WireLevels,
    checked_kline,
    decode_object,
    integer,
    kline_excerpt,
    kline_json,
    kline_number,
    levels,
    non_negative,
    number,
    optional,
    positive,
    price,
    register,
    rest_setting,
    symbol,
    ws_setting,
)

EXCHANGE = "bybit"
WS_URL = ws_setting("BYBIT_WS_URL", "wss://stream.bybit.com/v5/public/spot")
REST_URL = rest_setting("BYBIT_REST_URL", "https://api.bybit.com")
BOOK_DEPTH = 50
MAX_ARGS_PER_SUBSCRIBE = 10
PING_INTERVAL_S = 20.0
# the largest messages: an orderbook.50 snapshot is ~5 KB, a tickers frame ~1 KB
MAX_FRAME_BYTES = 1 << 20
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,25}$")

_req_ids = itertools.count(1)


def venue_symbol(symbol: str) -> str:
    s = symbol.strip().upper().replace("-", "")
    if not SYMBOL_RE.match(s):
        raise InvalidSymbol(f"{symbol!r}: not a Bybit symbol (letters and digits, e.g. BTCUSDT)")
    return s


def topics(symbol: str) -> list[str]:
    return [f"orderbook.{BOOK_DEPTH}.{symbol}", f"publicTrade.{symbol}", f"tickers.{symbol}"]


def subscribe_frames(args: list[str], op: str = "subscribe") -> list[bytes]:
    """Subscribe (or unsubscribe) requests, at most ``MAX_ARGS_PER_SUBSCRIBE`` args each."""
    frames = []
    for i in range(0, len(args), MAX_ARGS_PER_SUBSCRIBE):
        chunk = args[i : i + MAX_ARGS_PER_SUBSCRIBE]
        frames.append(orjson.dumps({"op": op, "args": chunk, "req_id": f"{op}-{next(_req_ids)}"}))
    return frames


PING_FRAME = b'{"op":"ping"}'
_SIDES: dict[str, Side] = {"Buy": "buy", "Sell": "sell"}


def _num(data: dict[str, Any], key: str, check: Any = price) -> float | None:
    """A ticker field: None where absent (a linear delta leaves unchanged fields out)."""
    return optional(data.get(key), check)


class _BookData(msgspec.Struct, gc=False):
    s: str
    b: WireLevels
    a: WireLevels
    u: int


class _BookFrame(msgspec.Struct, gc=False):
    type: str
    data: _BookData
    ts: int | None = None


_book_frame = msgspec.json.Decoder(_BookFrame, strict=False).decode


def parse(raw: str | bytes, received_at: float) -> list[Event]:
    """Parse one frame.

    Order book snapshot (trimmed)::

        {"topic":"orderbook.50.BTCUSDT","ts":1731035685326,"type":"snapshot",
         "data":{"s":"BTCUSDT","b":[["75848.74","0.067669"]],"a":[["75848.89","0.1"]],
                 "u":2876700,"seq":47474967822},"cts":1731035685322}

    Public trades (``S`` is the taker side)::

        {"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,
         "data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50",
                  "L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false}]}

    Subscription and ping replies become ``ServerNotice`` (``kind`` the request's ``op``);
    anything else unknown raises ``BadMessage``.
    """
    head = raw[:32]
    if '"orderbook.' in (head.decode("latin-1") if isinstance(head, bytes) else head):
        try:  # the hot frame, decoded typed; anything odd takes the long way for its reason
            book = _book_frame(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass
        else:
            d = book.data
            if d.s and (book.type == "snapshot" or d.u == 1):
                return [BookSnapshot(EXCHANGE, d.s, d.b, d.a, d.u, book.ts, received_at)]
            if d.s and book.type == "delta":
                return [BookDelta(EXCHANGE, d.s, d.b, d.a, d.u, d.u, d.u - 1, book.ts, received_at)]
    msg = decode_object(raw)
    topic = msg.get("topic")
    if not isinstance(topic, str):
        op = msg.get("op")
        if isinstance(op, str):
            success = bool(msg.get("success", op in ("pong", "ping")))
            message, request = str(msg.get("ret_msg", ""))[:300], str(msg.get("req_id", ""))[:40]
            return [ServerNotice(EXCHANGE, op[:24], message, success, request)]
        raise BadMessage(f"unknown frame: {str(raw)[:80]!r}")
    data: Any = msg.get("data")
    try:
        if topic.startswith("orderbook."):
            return [_book(msg, data, received_at)]
        if topic.startswith("publicTrade."):
            return [
                Trade(
                    exchange=EXCHANGE,
                    symbol=symbol(t["s"]),
                    price=positive(t["p"]),
                    qty=positive(t["v"]),
                    side=_SIDES[t["S"]],
                    ts_ms=integer(t["T"]),
                    trade_id=str(t["i"]),
                    received_at=received_at,
                )
                for t in data
            ]
        if topic.startswith("tickers."):
            return [_ticker(data, msg, received_at)]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadMessage(f"malformed {topic[:40]} frame: {str(exc)[:80]}") from None
    return []  # a topic we do not use


def _book(
    msg: dict[str, Any], data: dict[str, Any], received_at: float
) -> BookSnapshot | BookDelta:
    update_id = integer(data["u"])
    ts = None if msg.get("ts") is None else integer(msg["ts"])
    if msg["type"] == "snapshot" or update_id == 1:
        return BookSnapshot(
            exchange=EXCHANGE,
            symbol=symbol(data["s"]),
            bids=levels(data["b"]),
            asks=levels(data["a"]),
            update_id=update_id,
            ts_ms=ts,
            received_at=received_at,
        )
    if msg["type"] != "delta":
        raise ValueError(f"unknown order book frame type {msg['type']!r}")
    return BookDelta(
        exchange=EXCHANGE,
        symbol=symbol(data["s"]),
        bids=levels(data["b"]),
        asks=levels(data["a"]),
        first_id=update_id,
        last_id=update_id,
        prev_id=update_id - 1,
        ts_ms=ts,
        received_at=received_at,
    )


def _ticker(data: dict[str, Any], msg: dict[str, Any], received_at: float) -> Ticker:
    pct = _num(data, "price24hPcnt", number)
    return Ticker(
        exchange=EXCHANGE,
        symbol=symbol(data["symbol"]),
        last=_num(data, "lastPrice"),
        change_pct=None if pct is None else pct * 100.0,
        volume=_num(data, "volume24h", non_negative),
        quote_volume=_num(data, "turnover24h", non_negative),
        high=_num(data, "highPrice24h"),
        low=_num(data, "lowPrice24h"),
        bid=_num(data, "bid1Price"),
        ask=_num(data, "ask1Price"),
        ts_ms=None if msg.get("ts") is None else integer(msg["ts"]),
        received_at=received_at,
    )


# -- Bybit: GET /v5/market/kline ------------------------------------------------------------------


def category_of(ws_url: str) -> str:
    """spot, linear or inverse: the last part of the WebSocket URL (``/v5/public/spot``)."""
    tail = ws_url.rstrip("/").rsplit("/", 1)[-1]
    return tail if tail in ("spot", "linear", "inverse") else "spot"


def klines_request(
    base_url: str, symbol: str, now_ms: int, limit: int = DEFAULT_KLINES, category: str = "spot"
) -> KlineRequest:
    """The newest ``limit`` one-minute klines (at most 1000) of ``category``."""
    del now_ms
    query = urlencode(
        {"category": category, "symbol": symbol, "interval": "1", "limit": min(limit, 1000)}
    )
    return KlineRequest("GET", f"{base_url.rstrip('/')}/v5/market/kline?{query}")


def parse_klines(raw: bytes | str) -> list[Kline]:
    """Bybit's envelope, the list newest first (returned oldest first)::

        {"retCode":0,"retMsg":"OK","result":{"category":"spot","symbol":"BTCUSDT",
         "list":[["1670608800000","17071","17073","17027","17055.5","268611","15.74462667"]]},
         "retExtInfo":{},"time":1672025956592}

    start time, open, high, low, close, volume (base), turnover (quote); no trade count and no
    buy/sell split (stored as unknown).
    """
    data = kline_json(raw)
    if not isinstance(data, dict):
        raise BadMessage(f"klines: expected an object from Bybit, got {kline_excerpt(raw)}")
    if data.get("retCode") != 0:
        raise BadMessage(f"klines: Bybit refused: {str(data.get('retMsg', ''))[:60]!r}")
    result = data.get("result")
    rows = result.get("list") if isinstance(result, dict) else None
    if not isinstance(rows, list):
        raise BadMessage(f"klines: no result.list from Bybit in {kline_excerpt(raw)}")
    out = []
    for row in rows:
        if not isinstance(row, list) or len(row) < 7:
            raise BadMessage(f"klines: bad Bybit kline in {kline_excerpt(raw)}")
        try:
            start = int(row[0])
        except (TypeError, ValueError):
            raise BadMessage(f"klines: bad Bybit start time in {kline_excerpt(raw)}") from None
        o, h, lo, c, v, turnover = (kline_number(x, raw) for x in row[1:7])
        out.append(checked_kline(Kline(start, o, h, lo, c, v, turnover, None, None), raw))
    return sorted(out, key=lambda k: k.open_ms)


def bad_symbols(message: str) -> set[str]:
    """The symbols a refusal names: spot ``Invalid symbol :[orderbook.50.XYZUSDT]``, linear
    ``error:handler not found,topic:orderbook.50.XYZUSDT`` → {"XYZUSDT"}."""
    found: set[str] = set()
    groups = re.findall(r"\[([^\]]*)\]", message) + re.findall(r"topic:([\w.,]+)", message)
    for group in groups:
        for topic in group.split(","):
            topic = topic.strip()
            if "." in topic:
                found.add(topic.rsplit(".", 1)[-1])
    return found


def _symbol_of(topic: str) -> str:
    return topic.rsplit(".", 1)[-1]


class BybitSession(Session):
    """Snapshots and ``u``-chained deltas on the stream; a gap resubscribes that book topic.

    Subscribe replies are checked: a refused symbol is not listed (spot ``Invalid symbol``,
    linear ``handler not found``) and the rest of the refused request is asked for again;
    "already subscribed" means the topic streams already. Books keep the 50-level window.
    """

    exchange = EXCHANGE
    max_frame_bytes = MAX_FRAME_BYTES
    sync_factory = functools.partial(SequencedSync, depth=BOOK_DEPTH)
    ping_frame = PING_FRAME
    ping_interval = PING_INTERVAL_S

    def __init__(self, settings: Settings, symbols: Sequence[str] = ()) -> None:
        super().__init__(settings, symbols)
        self._requests: dict[str, list[str]] = {}  # req_id → the topics it asked for
        url = settings.url(WS_URL).rstrip("/")
        self.category = url.rsplit("/", 1)[-1] if "/v5/public/" in url else "spot"

    @staticmethod
    def parse(raw: str | bytes, received_at: float) -> list[Event]:
        return parse(raw, received_at)

    @staticmethod
    def venue_symbol(symbol: str) -> str:
        return venue_symbol(symbol)

    @staticmethod
    def klines_request(
        base_url: str, symbol: str, now_ms: int, limit: int, ws_url: str
    ) -> KlineRequest:
        return klines_request(base_url, symbol, now_ms, limit, category_of(ws_url))

    @staticmethod
    def parse_klines(raw: bytes | str) -> list[Kline]:
        return parse_klines(raw)

    def url(self) -> str:
        return self.settings.url(WS_URL)

    def _requests_for(self, topics_: list[str], op: str) -> tuple[bytes, ...]:
        frames = subscribe_frames(topics_, op)
        if op == "subscribe":
            for frame in frames:
                request = orjson.loads(frame)
                self._requests[request["req_id"]] = request["args"]
        return tuple(frames)

    def _send(self, symbols: list[str], op: str = "subscribe") -> list[Action]:
        frames = self._requests_for([t for s in symbols for t in topics(s)], op)
        return [Send(frames)] if frames else []

    def opened(self, now: float) -> list[Action]:
        return self._send([s for s in self.symbols if s not in self.unlisted])

    def closed(self) -> None:
        self._requests.clear()

    def changed(self, added: list[str], removed: list[str], now: float) -> list[Action]:
        super().changed(added, removed, now)
        return self._send(removed, "unsubscribe") + self._send(added)

    def rebuild(self, symbol: str, reason: str) -> list[Action]:
        """Resubscribe the book topic: Bybit answers with a fresh snapshot (a second subscribe
        alone would be refused as "already subscribed")."""
        if symbol not in self.symbols or symbol in self.unlisted:
            return []
        topic = [topics(symbol)[0]]
        frames = self._requests_for(topic, "unsubscribe") + self._requests_for(topic, "subscribe")
        return [Resubscribe(symbol, frames)]

    def receive(self, frame: str | bytes, now: float) -> Output:
        events = parse(frame, now)
        if events and type(events[0]) is ServerNotice:
            return [], self._reply(events[0])
        return events, NO_ACTIONS

    def _reply(self, reply: ServerNotice) -> list[Action]:
        asked = self._requests.pop(reply.request, [])
        if reply.ok or reply.kind not in ("subscribe", "unsubscribe"):
            return []
        if reply.kind == "unsubscribe" or "already subscribed" in reply.detail:
            return []  # nothing is missing
        bad = bad_symbols(reply.detail)
        actions: list[Action] = []
        if not bad:  # we cannot tell which: every symbol of that request says why
            actions.append(Status(f"Bybit refused a subscription: {reply.detail}"))
            for name in dict.fromkeys(_symbol_of(t) for t in asked):
                actions += self.not_listed(
                    name, f"{name}: Bybit refused the subscription: {reply.detail}"
                )
            return actions
        for name in sorted(bad):
            actions += self.not_listed(
                name, f"{name}: not listed on Bybit {self.category} ({reply.detail})"
            )
        # Bybit refuses the whole request: ask again for the topics of the symbols that exist
        retry = [t for t in asked if _symbol_of(t) not in bad and _symbol_of(t) in self.symbols]
        if retry:
            actions.append(Send(self._requests_for(retry, "subscribe")))
        return actions


VENUE = register(
    Venue(
        name=EXCHANGE,
        display="Bybit",
        session=BybitSession,
        ws_url=WS_URL,
        rest_url=REST_URL,
        kinds=("spot", "linear"),  # which one: the last part of BYBIT_WS_URL's path
        signatures=('"topic"', '"op"'),
    )
)
