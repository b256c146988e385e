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

import itertools
import re
from dataclasses import dataclass
from typing import Any

import orjson

from market.errors import BadMessage, InvalidSymbol
from market.events import BookDelta, BookSnapshot, Event, Side, Ticker, Trade
from market.feeds import (
    decode_object,
    levels,
    non_negative,
    number,
    optional,
    positive,
    price,
    symbol,
)

EXCHANGE = "bybit"
BOOK_DEPTH = 50
MAX_ARGS_PER_SUBSCRIBE = 10
PING_INTERVAL_S = 20.0
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,25}$")

_req_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Ack:
    """A reply to one of our requests (subscribe, unsubscribe, ping)."""

    op: str
    success: bool
    message: str
    req_id: str = ""


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


def parse(raw: str | bytes, received_at: float) -> list[Event | Ack]:
    """Parse one frame.

    Order book snapshot (trimmed)::

        {"topic":"orderbook.50.BTCUSDT","ts":1731035685326,"type":"snapshot",
         "data":{"s":"BTCUSDT","b":[["75848.74","0.067669"]],"a":[["75848.89","0.1"]],
                 "u":2876700,"seq":47474967822},"cts":1731035685322}

    Public trades (``S`` is the taker side)::

        {"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,
         "data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50",
                  "L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false}]}

    Subscription and ping replies become ``Ack``; anything else unknown raises ``BadMessage``.
    """
    msg = decode_object(raw)
    topic = msg.get("topic")
    if not isinstance(topic, str):
        op = msg.get("op")
        if isinstance(op, str):
            success = bool(msg.get("success", op in ("pong", "ping")))
            return [Ack(op, success, str(msg.get("ret_msg", "")), str(msg.get("req_id", "")))]
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
                    ts_ms=int(t["T"]),
                    trade_id=str(t["i"]),
                    received_at=received_at,
                )
                for t in data
            ]
        if topic.startswith("tickers."):
            return [_ticker(data, msg, received_at)]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadMessage(f"malformed {topic} frame: {exc!r}") from None
    return []  # a topic we do not use


def _book(
    msg: dict[str, Any], data: dict[str, Any], received_at: float
) -> BookSnapshot | BookDelta:
    update_id = int(data["u"])
    ts = msg.get("ts")
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
        ts_ms=msg.get("ts"),
        received_at=received_at,
    )
