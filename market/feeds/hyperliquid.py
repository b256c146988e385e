"""HyperLiquid WebSocket: whole-image order books, trades, all mids.

    WS      {HYPERLIQUID_WS_URL}   wss://api.hyperliquid.xyz/ws
    subscribe {"method":"subscribe","subscription":{"type":"l2Book","coin":"BTC"}}
              {"type":"trades","coin":"BTC"}  {"type":"allMids"}
    coins   BTC, ETH, … (perps, quoted in USDC): the user's BTCUSDT / BTC-USD map to BTC
    limits  the server closes a connection idle for 60 s: send {"method":"ping"} well before

``l2Book`` frames are whole images (replace, never merge; an empty side is an empty side).
The first ``trades`` frame after subscribing replays recent history: the feed marks it as
backfill and ``TradeDeduper`` drops trades already seen (``tid`` is not monotonic).
The first frame of a connection is plain text ("Websocket connection established."): not bad.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson

from market.errors import BadMessage, InvalidSymbol
from market.events import BookSnapshot, Event, Levels, Side, Ticker, Trade
from market.feeds import decode_object, non_negative, optional, positive, price, symbol

EXCHANGE = "hyperliquid"
PING_INTERVAL_S = 30.0
PING_FRAME = b'{"method":"ping"}'
GREETING = "Websocket connection established."
_SIDES: dict[str, Side] = {"B": "buy", "A": "sell"}
_INF = float("inf")
COIN_RE = re.compile(r"^[A-Z0-9]{1,15}$")
QUOTES = ("USDT", "USDC", "USD", "PERP")


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply of the server to us: subscription response, pong or error."""

    channel: str
    ok: bool
    message: str


def venue_symbol(symbol: str) -> str:
    """``BTCUSDT`` / ``BTC-USD`` / ``btc`` → ``BTC``."""
    s = symbol.strip().upper()
    base = s.split("-")[0]
    for quote in QUOTES:
        if base == s.replace("-", "") and base.endswith(quote) and len(base) > len(quote):
            base = base[: -len(quote)]
            break
    if not COIN_RE.match(base):
        raise InvalidSymbol(f"{symbol!r}: not a HyperLiquid coin (e.g. BTC, or BTCUSDT for BTC)")
    return base


def subscribe_frame(kind: str, coin: str | None = None, method: str = "subscribe") -> bytes:
    subscription: dict[str, str] = {"type": kind}
    if coin is not None:
        subscription["coin"] = coin
    return orjson.dumps({"method": method, "subscription": subscription})


def _levels(raw: list[dict[str, Any]]) -> Levels:
    """``[{"px": "105055.0", "sz": "3.03622", "n": 5}, …]`` → levels; NaN, <= 0 refused."""
    if type(raw) is not list:
        raise TypeError(f"levels must be a list, got {type(raw).__name__}")
    out = tuple([(float(level["px"]), float(level["sz"])) for level in raw])
    for px, size in out:  # checked after converting: half the cost of a call per number
        if not (0 < px < _INF and 0 < size < _INF):  # also false for NaN
            raise ValueError(f"bad level {px!r} × {size!r}")
    return out


def parse(raw: str | bytes, received_at: float) -> list[Event | Reply]:
    """Parse one frame.

    Book image (trimmed; ``levels`` is [bids best first, asks best first])::

        {"channel":"l2Book","data":{"coin":"BTC","time":1737918843731,
         "levels":[[{"px":"105055.0","sz":"3.03622","n":5}],[{"px":"105056.0","sz":"0.1","n":1}]]}}

    Trades (``side`` is the aggressor: B buys, A sells)::

        {"channel":"trades","data":[{"coin":"BTC","side":"B","px":"105056.0","sz":"0.00219",
          "time":1737918794873,"hash":"0xde47…","tid":121451470284048,"users":["0x…","0x…"]}]}
    """
    if isinstance(raw, str) and raw.startswith(GREETING):
        return []
    msg = decode_object(raw)
    channel = msg.get("channel")
    data: Any = msg.get("data")
    try:
        if channel == "l2Book":
            bids, asks = data["levels"]
            return [
                BookSnapshot(
                    exchange=EXCHANGE,
                    symbol=symbol(data["coin"]),
                    bids=_levels(bids),
                    asks=_levels(asks),
                    update_id=int(data.get("time", 0)),
                    ts_ms=data.get("time"),
                    received_at=received_at,
                )
            ]
        if channel == "trades":
            return [
                Trade(
                    exchange=EXCHANGE,
                    symbol=symbol(t["coin"]),
                    price=positive(t["px"]),
                    qty=positive(t["sz"]),
                    side=_SIDES[t["side"]],
                    ts_ms=int(t["time"]),
                    trade_id=str(t["tid"]),
                    received_at=received_at,
                )
                for t in data
            ]
        if channel in ("activeAssetCtx", "activeSpotAssetCtx"):
            return [_asset_ctx(data, received_at)]
        if channel == "allMids":
            return [
                Ticker(exchange=EXCHANGE, symbol=coin, last=positive(px), received_at=received_at)
                for coin, px in data["mids"].items()
            ]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadMessage(f"malformed {channel} frame: {exc!r}") from None
    if channel in ("subscriptionResponse", "pong"):
        return [Reply(channel, True, "")]
    if channel == "error":
        return [Reply(channel, False, str(data))]
    raise BadMessage(f"unknown frame: {str(raw)[:80]!r}")


def _asset_ctx(data: dict[str, Any], received_at: float) -> Ticker:
    """24 h figures from ``activeAssetCtx``: change against ``prevDayPx``, notional volume.

    {"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":{"prevDayPx":"104000.0",
     "dayNtlVlm":"1.2e9","dayBaseVlm":"11800.5","markPx":"105050.0","midPx":"105055.5",…}}}
    """
    ctx = data["ctx"]
    last_px = optional(ctx.get("midPx") or ctx.get("markPx"))
    prev = optional(ctx.get("prevDayPx"), price)
    return Ticker(
        exchange=EXCHANGE,
        symbol=symbol(data["coin"]),
        last=last_px,
        change_pct=None if last_px is None or not prev else (last_px / prev - 1.0) * 100.0,
        volume=optional(ctx.get("dayBaseVlm"), non_negative),
        quote_volume=optional(ctx.get("dayNtlVlm"), non_negative),
        received_at=received_at,
    )


class TradeDeduper:
    """Remembers the last ``size`` trade ids per coin; ``fresh`` keeps only unseen trades."""

    def __init__(self, size: int = 5_000) -> None:
        self._size = size
        self._seen: dict[str, tuple[set[str], deque[str]]] = {}

    def fresh(self, trades: list[Trade]) -> list[Trade]:
        out = []
        for trade in trades:
            seen, order = self._seen.setdefault(trade.symbol, (set(), deque()))
            if trade.trade_id in seen:
                continue
            seen.add(trade.trade_id)
            order.append(trade.trade_id)
            if len(order) > self._size:
                seen.discard(order.popleft())
            out.append(trade)
        return out
