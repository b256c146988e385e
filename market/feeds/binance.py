"""Binance spot: one combined-stream connection, diff depth + trades, REST snapshots.

    WS    {BINANCE_WS_URL}/stream?streams=btcusdt@depth@100ms/btcusdt@trade/btcusdt@ticker/…
          live changes: {"method":"SUBSCRIBE","params":["ethusdt@depth@100ms",…],"id":7}
    REST  {BINANCE_REST_URL}/api/v3/depth?symbol=BTCUSDT&limit=1000
    symbols: upper case in REST and payloads, lower case in stream names; [A-Z0-9]{2,20}
    limits: a connection lives at most 24 h; the server pings every 20 s (pong within 60 s);
            1024 streams per connection; 5 incoming messages a second per connection;
            a ``serverShutdown`` event means "reconnect now"

The book procedure lives in ``market.sync.BinanceSync``; this module only parses.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import orjson

from market.errors import BadMessage, InvalidSymbol
from market.events import BookDelta, BookSnapshot, Event, ServerNotice, Ticker, Trade
from market.feeds import decode_object, non_negative, number, optional, positive
from market.feeds import levels as _levels
from market.feeds import symbol as _symbol

EXCHANGE = "binance"
DEPTH_STREAM = "depth@100ms"
TRADE_STREAM = "trade"
TICKER_STREAM = "ticker"
STREAM_KINDS = (DEPTH_STREAM, TRADE_STREAM, TICKER_STREAM)
URL_SYMBOLS = 40  # symbols named in the connection URL; the rest are SUBSCRIBEd after it opens
MAX_PARAMS = 150  # streams per SUBSCRIBE request
SEND_INTERVAL_S = 0.25  # Binance allows 5 incoming messages a second per connection
SNAPSHOT_LIMIT = 1000
MAX_CONNECTION_AGE_S = 23 * 3600 + 50 * 60  # reconnect ourselves 10 min before the 24 h cut
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")


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
    """``SUBSCRIBE`` / ``UNSUBSCRIBE`` requests, ``MAX_PARAMS`` streams each, ids from ``request_id``."""
    return [
        orjson.dumps({"method": method, "params": names[i : i + MAX_PARAMS], "id": request_id + n})
        for n, i in enumerate(range(0, len(names), MAX_PARAMS))
    ]


def snapshot_url(base: str, symbol: str, limit: int = SNAPSHOT_LIMIT) -> str:
    return f"{base.rstrip('/')}/api/v3/depth?{urlencode({'symbol': symbol, 'limit': limit})}"


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
    unknown event types give no events).
    """
    msg = decode_object(raw)
    data = msg.get("data", msg)
    if not isinstance(data, dict):
        raise BadMessage("'data' is not an object")
    kind = data.get("e")
    try:
        if kind == "depthUpdate":
            first_id, last_id = int(data["U"]), int(data["u"])
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
                    ts_ms=None if event_time is None else int(event_time),
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
                    ts_ms=int(data["T"]),
                    trade_id=str(data["t"]),
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
                    ts_ms=None if data.get("E") is None else int(data["E"]),
                    received_at=received_at,
                )
            ]
        if kind == "serverShutdown":
            return [ServerNotice(EXCHANGE, "shutdown", "serverShutdown event")]
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise BadMessage(f"malformed {kind} event: {exc!r}") from None
    if kind is None and "u" in data and "B" in data and "A" in data:
        return []  # a bookTicker (best bid/ask only): the book gives the same, exactly
    if kind is None and "error" in msg:  # a refused request of ours
        error = msg["error"]
        detail = error.get("msg", error) if isinstance(error, dict) else error
        return [ServerNotice(EXCHANGE, "error", f"request {msg.get('id')} refused: {detail}")]
    if kind is None and type(msg.get("id")) is int:  # a reply to a request of ours
        return [ServerNotice(EXCHANGE, "reply", str(msg["id"]))]
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
            update_id=int(msg["lastUpdateId"]),
            received_at=received_at,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise BadMessage(f"malformed depth snapshot for {symbol}: {exc!r}") from None
