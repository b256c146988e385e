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
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import orjson

from market.analytics import MINUTE_MS
from market.errors import BadMessage, InvalidSymbol
from market.events import BookSnapshot, Event, Levels, ServerNotice, Side, Ticker, Trade
from market.settings import Settings
from market.venues.base import (
    DEFAULT_KLINES,
    NO_ACTIONS,
    Action,
    Kline,
    KlineRequest,
    Later,
    Output,
    Rename,
    Send,
    Session,
    Status,
    Venue,
    checked_kline,
    decode_object,
    integer,
    kline_excerpt,
    kline_json,
    kline_number,
    non_negative,
    optional,
    positive,
    price,
    register,
    rest_setting,
    symbol,
    ws_setting,
)

EXCHANGE = "hyperliquid"
WS_URL = ws_setting("HYPERLIQUID_WS_URL", "wss://api.hyperliquid.xyz/ws")
REST_URL = rest_setting("HYPERLIQUID_REST_URL", "https://api.hyperliquid.xyz")
PING_INTERVAL_S = 30.0
PING_FRAME = b'{"method":"ping"}'
GREETING = "Websocket connection established."
MIDS_WAIT_S = 2.0  # subscribe the coins anyway if allMids has not come by then
MIDS_COMPLETE = 100  # an allMids naming fewer coins than this is not trusted to list them all
# the largest messages: allMids names every coin (~30 KB for ~400), an l2Book image ~3 KB
MAX_FRAME_BYTES = 1 << 20
_SIDES: dict[str, Side] = {"B": "buy", "A": "sell"}
_INF = float("inf")
COIN_RE = re.compile(r"^[A-Z0-9]{1,15}$")
QUOTES = ("USDT", "USDC", "USD", "PERP")


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


def parse(raw: str | bytes, received_at: float) -> list[Event]:
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
                    update_id=integer(data.get("time", 0)),
                    ts_ms=None if data.get("time") is None else integer(data["time"]),
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
                    ts_ms=integer(t["time"]),
                    trade_id=str(t["tid"])[:40],
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
        raise BadMessage(f"malformed {str(channel)[:40]} frame: {str(exc)[:80]}") from None
    if channel in ("subscriptionResponse", "pong"):
        return [ServerNotice(EXCHANGE, channel)]
    if channel == "error":
        return [ServerNotice(EXCHANGE, channel, str(data)[:300], False)]
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

    def fresh(self, trades: Iterable[Trade]) -> list[Trade]:
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


# -- HyperLiquid: POST /info {"type": "candleSnapshot"} -------------------------------------------


def klines_request(
    base_url: str, coin: str, now_ms: int, limit: int = DEFAULT_KLINES
) -> KlineRequest:
    """The one-minute candles of the last ``limit`` minutes (HyperLiquid wants a range)."""
    start = now_ms - now_ms % MINUTE_MS - (limit - 1) * MINUTE_MS
    body = {
        "type": "candleSnapshot",
        "req": {"coin": coin, "interval": "1m", "startTime": start, "endTime": now_ms},
    }
    return KlineRequest("POST", f"{base_url.rstrip('/')}/info", orjson.dumps(body))


def parse_klines(raw: bytes | str) -> list[Kline]:
    """HyperLiquid's list of objects, oldest first::

        [{"t":1681923600000,"T":1681923659999,"s":"BTC","i":"1m","o":"29295.0",
          "c":"29258.0","h":"29309.0","l":"29250.0","v":"0.98639","n":189}]

    open time, close time, coin, interval, open, close, high, low, volume (base), trades; no
    quote volume (the chart's VWAP then uses the typical price) and no buy/sell split.
    """
    data = kline_json(raw)
    if not isinstance(data, list):
        raise BadMessage(f"klines: expected a list from HyperLiquid, got {kline_excerpt(raw)}")
    out = []
    for row in data:
        if not isinstance(row, dict) or not isinstance(row.get("t"), int):
            raise BadMessage(f"klines: bad HyperLiquid candle in {kline_excerpt(raw)}")
        o, h, lo, c, v = (kline_number(row.get(k), raw) for k in ("o", "h", "l", "c", "v"))
        n = row.get("n")
        if not isinstance(n, int) or n < 0:
            raise BadMessage(f"klines: bad trade count in {kline_excerpt(raw)}")
        out.append(checked_kline(Kline(row["t"], o, h, lo, c, v, None, n, None), raw))
    return sorted(out, key=lambda k: k.open_ms)


class HyperLiquidSession(Session):
    """Whole-image books (replace), trades with a backfill, mids and 24 h figures.

    ``allMids`` is asked for first and the coins are subscribed once it names them (HyperLiquid
    may close the whole connection on a subscription to a coin it does not have), or after
    ``MIDS_WAIT_S`` without it. A list naming fewer than ``MIDS_COMPLETE`` coins is not trusted
    to list them all. The list also gives a coin's exact case (``KPEPE`` → ``kPEPE``).
    The first trades frame after subscribing a coin replays history: its trades from before
    the subscription are marked ``backfill``; trades seen before (a reconnect) are dropped.
    """

    exchange = EXCHANGE
    max_frame_bytes = MAX_FRAME_BYTES
    ping_frame = PING_FRAME
    ping_interval = PING_INTERVAL_S
    CHANNELS = ("l2Book", "trades", "activeAssetCtx")

    def __init__(self, settings: Settings, symbols: Sequence[str] = ()) -> None:
        super().__init__(settings, symbols)
        self._dedupe = TradeDeduper()  # lives across reconnects: a replay is not new trades
        self._backfill: dict[str, float] = {}  # coin → when we subscribed it (ms)
        self._listed: set[str] | None = None  # every coin, from this connection's allMids
        self._books_asked = False

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
        return self.settings.url(WS_URL)

    def _subscribe(self, coins: list[str], now: float, method: str = "subscribe") -> list[Action]:
        coins = [c for c in coins if c not in self.unlisted]
        if method == "subscribe":
            self._backfill.update((coin, now * 1000.0) for coin in coins)
        frames = tuple(
            subscribe_frame(kind, coin, method) for coin in coins for kind in self.CHANNELS
        )
        return [Send(frames)] if frames else []

    def opened(self, now: float) -> list[Action]:
        self._listed = None
        self._books_asked = False
        return [Send((subscribe_frame("allMids"),)), Later(MIDS_WAIT_S, "books")]

    def _ask_books(self, now: float) -> list[Action]:
        if self._books_asked:
            return []
        self._books_asked = True
        return self._subscribe(list(self.symbols), now)

    def timer(self, token: str, now: float) -> Output:
        return [], self._ask_books(now)  # no allMids in time: subscribe anyway

    def changed(self, added: list[str], removed: list[str], now: float) -> list[Action]:
        actions = self._subscribe(removed, now, "unsubscribe")
        super().changed(added, removed, now)
        if self._listed is not None:
            checked, renames = self._check_listed(added)
            actions += renames
            added = checked
        if added and self._books_asked:
            actions += self._subscribe(added, now)
        return actions

    def receive(self, frame: str | bytes, now: float) -> Output:
        events = parse(frame, now)
        if not events:
            return events, NO_ACTIONS
        first = events[0]
        if isinstance(first, ServerNotice):
            return [], self._reply(first, now)
        if isinstance(first, Trade):
            since = self._backfill.pop(first.symbol, None)
            trades = [e for e in events if isinstance(e, Trade)]
            if since is not None:  # the first frame after subscribing replays history
                trades = [
                    msgspec.structs.replace(t, backfill=True) if t.ts_ms <= since else t
                    for t in trades
                ]
            return list(self._dedupe.fresh(trades)), NO_ACTIONS
        actions: list[Action] = []
        if isinstance(first, Ticker) and self._listed is None and "allMids" in str(frame[:40]):
            listed = {e.symbol for e in events if type(e) is Ticker}
            if len(listed) >= MIDS_COMPLETE:  # the whole list (the real one has hundreds)
                self._listed = listed
                actions = self._check_listed(list(self.symbols))[1]
            actions += self._ask_books(now)
        return events, actions

    def _check_listed(self, coins: list[str]) -> tuple[list[str], list[Action]]:
        """Keep the coins HyperLiquid lists; fix a coin's case (``KPEPE`` → ``kPEPE``); say
        which do not exist. Returns the coins to subscribe and the actions."""
        listed = self._listed or set()
        keep: list[str] = []
        actions: list[Action] = []
        for coin in coins:
            if coin in listed or coin in self.unlisted:
                keep.append(coin)
                continue
            near = [c for c in listed if c.upper() == coin.upper()]
            if near and near[0] not in self.symbols:
                self.symbols = {near[0] if s == coin else s: None for s in self.symbols}
                actions.append(Rename(coin, near[0]))
                keep.append(near[0])
                continue
            actions += self.not_listed(coin, f"{coin}: not listed on HyperLiquid")
        return [c for c in keep if c not in self.unlisted], actions

    def _reply(self, reply: ServerNotice, now: float) -> list[Action]:
        if reply.ok:
            return []
        actions: list[Action] = []
        if "allMids" in reply.detail:  # no list of coins to check against: subscribe now
            actions += self._ask_books(now)
        match = re.search(r'"coin"\s*:\s*"([^"]+)"', reply.detail)
        if match and match.group(1) in self.symbols:
            coin = match.group(1)
            return actions + self.not_listed(
                coin, f"{coin}: not listed on HyperLiquid ({reply.detail[:80]})"
            )
        return [*actions, Status(f"HyperLiquid: {reply.detail[:120]}")]


VENUE = register(
    Venue(
        name=EXCHANGE,
        display="HyperLiquid",
        session=HyperLiquidSession,
        ws_url=WS_URL,
        rest_url=REST_URL,
        kinds=("perp",),
        signatures=('"channel"',),
        greeting=GREETING,
    )
)
