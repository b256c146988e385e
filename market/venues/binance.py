"""Binance spot: one combined-stream connection, diff depth + trades, REST snapshots.

    WS    {BINANCE_WS_URL}/stream?streams=btcusdt@depth@100ms/btcusdt@trade/btcusdt@ticker/…
          live changes: {"method":"SUBSCRIBE","params":["ethusdt@depth@100ms",…],"id":7}
    REST  {BINANCE_REST_URL}/api/v3/depth?symbol=BTCUSDT&limit=1000
    symbols: upper case in REST and payloads, lower case in stream names; [A-Z0-9]{2,20}
    limits: a connection lives at most 24 h; the server pings every 20 s (pong within 60 s);
            1024 streams per connection; 5 incoming messages a second per connection;
            a ``serverShutdown`` event means "reconnect now"

The book procedure is ``market.sync.SnapshotSync`` (diffs bracketed by a REST snapshot).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from urllib.parse import urlencode

import msgspec
import orjson

from market.errors import BadMessage, InvalidSymbol
from market.events import BookDelta, BookSnapshot, Event, ServerNotice, Side, Ticker, Trade
from market.settings import Settings
from market.sync import SnapshotSync
from market.venues.base import (
    DEFAULT_KLINES,
    NO_ACTIONS,
    Action,
    FetchSnapshot,
    Kline,
    KlineRequest,
    Later,
    Output,
    Reconnect,
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
    non_negative,
    number,
    optional,
    positive,
    register,
    rest_setting,
    ws_setting,
)
from market.venues.base import levels as _levels
from market.venues.base import symbol as _symbol

EXCHANGE = "binance"
WS_URL = ws_setting("BINANCE_WS_URL", "wss://stream.binance.com:9443")
REST_URL = rest_setting("BINANCE_REST_URL", "https://api.binance.com")
DEPTH_STREAM = "depth@100ms"
TRADE_STREAM = "trade"
TICKER_STREAM = "ticker"
STREAM_KINDS = (DEPTH_STREAM, TRADE_STREAM, TICKER_STREAM)
URL_SYMBOLS = 40  # symbols named in the connection URL; the rest are SUBSCRIBEd after it opens
MAX_PARAMS = 150  # streams per SUBSCRIBE request
SEND_INTERVAL_S = 0.25  # Binance allows 5 incoming messages a second per connection
SNAPSHOT_LIMIT = 1000
MAX_CONNECTION_AGE_S = 23 * 3600 + 50 * 60  # reconnect ourselves 10 min before the 24 h cut
SUBSCRIBE_REPLY_WAIT_S = 3.0  # fetch a subscribed symbol's snapshot anyway after this
INVALID_SYMBOL = -1121  # REST error code: "Invalid symbol."
# the largest messages: a depth snapshot of 1,000 levels a side is ~80 KB, a busy diff ~20 KB
MAX_FRAME_BYTES = 1 << 20
MAX_REST_BYTES = 4 << 20
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")
_INF = float("inf")


def venue_symbol(symbol: str) -> str:
    """``btc-usdt`` → ``BTCUSDT``; raises ``InvalidSymbol`` for what Binance cannot list."""
    s = symbol.strip().upper().replace("-", "")
    if not SYMBOL_RE.match(s):
        raise InvalidSymbol(f"{symbol!r}: not a Binance spot symbol (2-20 letters or digits)")
    return s


def streams(symbols: tuple[str, ...] | list[str]) -> list[str]:
    return [f"{s.lower()}@{kind}" for s in symbols for kind in STREAM_KINDS]


def stream_url(base: str, symbols: tuple[str, ...]) -> str:
    return f"{base.rstrip('/')}/stream?streams={'/'.join(streams(symbols))}"


def subscribe_frames(names: list[str], request_id: int, method: str = "SUBSCRIBE") -> list[bytes]:
    """``SUBSCRIBE`` / ``UNSUBSCRIBE`` requests of ``MAX_PARAMS`` streams each, with ids from
    ``request_id`` on."""
    return [
        orjson.dumps({"method": method, "params": names[i : i + MAX_PARAMS], "id": request_id + n})
        for n, i in enumerate(range(0, len(names), MAX_PARAMS))
    ]


def snapshot_url(base: str, symbol: str, limit: int = SNAPSHOT_LIMIT) -> str:
    return f"{base.rstrip('/')}/api/v3/depth?{urlencode({'symbol': symbol, 'limit': limit})}"


# -- typed decoding of the two hot frames (msgspec: prices to floats, checked, in C) -------------


class _Depth(msgspec.Struct, gc=False):
    s: str
    U: int
    u: int
    b: WireLevels
    a: WireLevels
    E: int | None = None


class _Trade(msgspec.Struct, gc=False):
    s: str
    t: int
    p: str  # decoded strictly (a "false" is no boolean); two floats are cheap in Python
    q: str
    T: int
    m: bool


class _DepthFrame(msgspec.Struct, gc=False):
    data: _Depth


class _TradeFrame(msgspec.Struct, gc=False):
    data: _Trade


_depth_frame = msgspec.json.Decoder(_DepthFrame, strict=False).decode
_trade_frame = msgspec.json.Decoder(_TradeFrame).decode
_depth = msgspec.json.Decoder(_Depth, strict=False).decode  # a bare payload (raw stream)
_trade = msgspec.json.Decoder(_Trade).decode
_DecodeError = (msgspec.ValidationError, msgspec.DecodeError)


def parse(raw: str | bytes, received_at: float) -> list[Event]:
    """Parse one frame of the combined stream (or a bare payload) into events.

    Diff depth (trimmed)::

        {"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998512568,
         "s":"NKNUSDT","U":499869753,"u":499869754,"b":[["0.35170000","4265.00000000"]],
         "a":[["0.35290000","10968.00000000"]]}}

    Trade (``m`` true: the buyer was the maker, so the taker sold)::

        {"stream":"btcusdt@trade","data":{"e":"trade","E":1672515782136,"s":"BTCUSDT",
         "t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}}

    Raises ``BadMessage`` for anything that is not one of these (subscription replies and
    unknown event types give no events, or a ``ServerNotice``).
    """
    head = raw[:48]
    if isinstance(head, bytes):
        head = head.decode("latin-1")
    try:  # the two frames of every busy second, decoded typed; anything odd takes the long way
        if "@depth" in head or '"e":"depthUpdate"' in head:
            d = _depth_frame(raw).data if "@depth" in head else _depth(raw)
            if d.u >= d.U and d.s:
                return [BookDelta(EXCHANGE, d.s, d.b, d.a, d.U, d.u, None, d.E, received_at)]
        elif "@trade" in head or '"e":"trade"' in head:
            t = _trade_frame(raw).data if "@trade" in head else _trade(raw)
            px, qty = float(t.p), float(t.q)
            if t.s and 0 < px < _INF and 0 < qty < _INF:  # also false for NaN
                side: Side = "sell" if t.m else "buy"
                return [Trade(EXCHANGE, t.s, px, qty, side, t.T, str(t.t), received_at)]
    except (*_DecodeError, ValueError):
        pass
    return _parse_any(raw, received_at)


def _parse_any(raw: str | bytes, received_at: float) -> list[Event]:
    """Every frame, checked field by field, with a precise reason when one is bad."""
    msg = decode_object(raw)
    data = msg.get("data", msg)
    if not isinstance(data, dict):
        raise BadMessage("'data' is not an object")
    kind = data.get("e")
    try:
        if kind == "depthUpdate":
            first_id, last_id = integer(data["U"]), integer(data["u"])
            if first_id > last_id:
                raise ValueError(f"U {first_id} > u {last_id}")
            event_time = data.get("E")
            return [
                BookDelta(
                    exchange=EXCHANGE,
                    symbol=_symbol(data["s"]),
                    bids=_levels(data["b"]),
                    asks=_levels(data["a"]),
                    first_id=first_id,
                    last_id=last_id,
                    ts_ms=None if event_time is None else integer(event_time),
                    received_at=received_at,
                )
            ]
        if kind == "trade":
            maker = data["m"]
            if type(maker) is not bool:
                raise TypeError(f"'m' must be true or false, got {maker!r:.20}")
            return [
                Trade(
                    exchange=EXCHANGE,
                    symbol=_symbol(data["s"]),
                    price=positive(data["p"]),
                    qty=positive(data["q"]),
                    side="sell" if maker else "buy",
                    ts_ms=integer(data["T"]),
                    trade_id=str(integer(data["t"])),
                    received_at=received_at,
                )
            ]
        if kind == "24hrTicker":
            return [
                Ticker(
                    exchange=EXCHANGE,
                    symbol=_symbol(data["s"]),
                    last=positive(data["c"]),
                    change_pct=number(data["P"]),
                    volume=non_negative(data["v"]),
                    quote_volume=non_negative(data["q"]),
                    high=positive(data["h"]),
                    low=positive(data["l"]),
                    bid=optional(data.get("b"), non_negative) or None,  # "0": an empty side
                    ask=optional(data.get("a"), non_negative) or None,
                    ts_ms=None if data.get("E") is None else integer(data["E"]),
                    received_at=received_at,
                )
            ]
        if kind == "serverShutdown":
            return [ServerNotice(EXCHANGE, "shutdown", "serverShutdown event")]
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise BadMessage(f"malformed {str(kind)[:24]} event: {str(exc)[:80]}") from None
    if kind is None and "u" in data and "B" in data and "A" in data:
        return []  # a bookTicker (best bid/ask only): the book gives the same, exactly
    if kind is None and "error" in msg:  # a refused request of ours
        error = msg["error"]
        detail = error.get("msg", error) if isinstance(error, dict) else error
        request = str(msg.get("id"))[:24]
        return [
            ServerNotice(
                EXCHANGE, "error", f"request {request} refused: {str(detail)[:120]}", False, request
            )
        ]
    if kind is None and type(msg.get("id")) is int:  # a reply to a request of ours
        return [ServerNotice(EXCHANGE, "reply", request=str(msg["id"]))]
    if kind is None and ("result" in msg or "id" in msg):
        return []
    if kind is None:
        raise BadMessage(f"unknown frame: {str(raw)[:80]!r}")
    return []  # an event type we do not use


def parse_snapshot(raw: str | bytes, symbol: str, received_at: float) -> BookSnapshot:
    """Parse ``GET /api/v3/depth``: ``{"lastUpdateId":…, "bids":[[p,q],…], "asks":[…]}``."""
    try:
        msg = orjson.loads(raw)
        return BookSnapshot(
            exchange=EXCHANGE,
            symbol=symbol,
            bids=_levels(msg["bids"]),
            asks=_levels(msg["asks"]),
            update_id=integer(msg["lastUpdateId"]),
            received_at=received_at,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise BadMessage(f"malformed depth snapshot for {symbol}: {str(exc)[:80]}") from None


def refusal_code(body: bytes) -> tuple[int | None, str]:
    """Binance's ``{"code": -1121, "msg": "Invalid symbol."}`` of a refused REST call."""
    try:
        payload = orjson.loads(body[:4096])
    except orjson.JSONDecodeError:
        return None, ""
    if not isinstance(payload, dict):
        return None, ""
    code = payload.get("code")
    return (code if type(code) is int else None), str(payload.get("msg", ""))[:120]


# -- Binance: GET /api/v3/klines ------------------------------------------------------------------


def klines_request(
    base_url: str, symbol: str, now_ms: int, limit: int = DEFAULT_KLINES
) -> KlineRequest:
    """The newest ``limit`` one-minute klines (at most 1000); ``symbol`` as Binance names it."""
    del now_ms  # the newest ones: no time range needed
    query = urlencode({"symbol": symbol, "interval": "1m", "limit": min(limit, 1000)})
    return KlineRequest("GET", f"{base_url.rstrip('/')}/api/v3/klines?{query}")


def parse_klines(raw: bytes | str) -> list[Kline]:
    """Binance's array of arrays, oldest first::

        [[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100",
          "148976.11427815",1499040059999,"2434.19055334",308,"1756.87402397",
          "28.46694368","0"]]

    open time, open, high, low, close, volume, close time, quote volume, trades,
    taker-buy base volume, taker-buy quote volume, ignore.
    """
    data = kline_json(raw)
    if not isinstance(data, list):
        raise BadMessage(f"klines: expected a list from Binance, got {kline_excerpt(raw)}")
    out = []
    for row in data:
        if not isinstance(row, list) or len(row) < 10 or not isinstance(row[0], int):
            raise BadMessage(f"klines: bad Binance kline in {kline_excerpt(raw)}")
        o, h, lo, c, v = (kline_number(x, raw) for x in row[1:6])
        trades = row[8]
        if not isinstance(trades, int) or trades < 0:
            raise BadMessage(f"klines: bad trade count in {kline_excerpt(raw)}")
        out.append(
            checked_kline(
                Kline(
                    row[0],
                    o,
                    h,
                    lo,
                    c,
                    v,
                    kline_number(row[7], raw),
                    trades,
                    kline_number(row[9], raw),
                ),
                raw,
            )
        )
    return sorted(out, key=lambda k: k.open_ms)


# -- the session -------------------------------------------------------------------------------


class BinanceSession(Session):
    """Diff streams plus REST snapshots (``SnapshotSync``).

    The URL names the first ``URL_SYMBOLS`` symbols, whose snapshots are fetched at once; the
    others are SUBSCRIBEd on the open connection and their snapshots fetched once Binance
    confirms the request (their diffs are flowing by then, as the book procedure wants), or
    after ``SUBSCRIBE_REPLY_WAIT_S`` without an answer. ``serverShutdown`` reconnects.
    """

    exchange = EXCHANGE
    max_frame_bytes = MAX_FRAME_BYTES
    max_rest_bytes = MAX_REST_BYTES
    sync_factory = SnapshotSync
    send_interval = SEND_INTERVAL_S
    max_age = MAX_CONNECTION_AGE_S
    max_age_note = "Binance closes at 24 h"
    syncing = "syncing: waiting for the snapshot"

    def __init__(self, settings: Settings, symbols: Sequence[str] = ()) -> None:
        super().__init__(settings, symbols)
        self._ids = itertools.count(1)
        self._pending: dict[str, list[str]] = {}  # SUBSCRIBE id → its symbols, until confirmed

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
        return klines_request(base_url, symbol, now_ms, limit)

    @staticmethod
    def parse_klines(raw: bytes | str) -> list[Kline]:
        return parse_klines(raw)

    def url(self) -> str:
        return stream_url(self.settings.url(WS_URL), tuple(self.symbols)[:URL_SYMBOLS])

    def _fetch(self, symbol: str) -> FetchSnapshot:
        return FetchSnapshot(symbol, snapshot_url(self.settings.url(REST_URL), symbol))

    def _subscribe(self, symbols: list[str], method: str = "SUBSCRIBE") -> list[Action]:
        per_request = MAX_PARAMS // len(STREAM_KINDS)
        frames: list[bytes] = []
        actions: list[Action] = []
        for i in range(0, len(symbols), per_request):
            chunk = symbols[i : i + per_request]
            request_id = next(self._ids)
            frames += subscribe_frames(streams(chunk), request_id, method)
            if method == "SUBSCRIBE":
                self._pending[str(request_id)] = chunk
                actions.append(Later(SUBSCRIBE_REPLY_WAIT_S, str(request_id)))
        return [Send(tuple(frames)), *actions] if frames else []

    def opened(self, now: float) -> list[Action]:
        self._pending.clear()
        symbols = list(self.symbols)
        actions = self._subscribe(symbols[URL_SYMBOLS:])  # the URL names the first ones
        return actions + [self._fetch(s) for s in symbols[:URL_SYMBOLS]]

    def closed(self) -> None:
        self._pending.clear()

    def _confirmed(self, request: str) -> list[Action]:
        """Binance answered a SUBSCRIBE (or did not in time): fetch those snapshots."""
        return [self._fetch(s) for s in self._pending.pop(request, []) if s in self.symbols]

    def receive(self, frame: str | bytes, now: float) -> Output:
        events = parse(frame, now)
        if events and type(events[0]) is ServerNotice:
            notice = events[0]
            if notice.kind == "reply":
                return [], self._confirmed(notice.request)
            if notice.kind == "shutdown":
                return [], [Reconnect("the server announced a shutdown (serverShutdown)")]
            return [], [Status(f"Binance: {notice.detail}")]
        return events, NO_ACTIONS

    def snapshot(self, symbol: str, body: bytes | str, now: float) -> Output:
        return [parse_snapshot(body, symbol, now)], NO_ACTIONS

    def refused(self, symbol: str, status: int, body: bytes) -> list[Action]:
        code, detail = refusal_code(body)
        if code == INVALID_SYMBOL:
            return self.not_listed(symbol, f"{symbol}: not listed on Binance ({detail})")
        return []

    def refusal(self, status: int, body: bytes) -> str:
        detail = refusal_code(body)[1]
        return f"HTTP {status}{': ' + detail if detail else ''}"

    def changed(self, added: list[str], removed: list[str], now: float) -> list[Action]:
        super().changed(added, removed, now)
        actions = self._subscribe(removed, "UNSUBSCRIBE") if removed else []
        return actions + self._subscribe(added) if added else actions

    def rebuild(self, symbol: str, reason: str) -> list[Action]:
        return [self._fetch(symbol)]

    def timer(self, token: str, now: float) -> Output:
        return [], self._confirmed(token)


VENUE = register(
    Venue(
        name=EXCHANGE,
        display="Binance",
        session=BinanceSession,
        ws_url=WS_URL,
        rest_url=REST_URL,
        kinds=("spot",),
        signatures=('"stream"', '"e":"'),  # a combined-stream frame, or a bare event
        rest_snapshots=True,  # GET /api/v3/depth bodies, recorded inline
    )
)
