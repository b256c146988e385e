"""The venues' one-minute candles over REST: request building and pure response parsing.

One section per venue (to move into that venue's module later): a request function returning
``KlineRequest`` (method, URL, body) and a parser from the response body to ``Kline`` values,
oldest first. No I/O, no clock: the caller passes ``now_ms``; every parser is testable with a
string and raises ``BadMessage`` with a short excerpt on anything it cannot trust.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from market.analytics import MINUTE_MS, Candle
from market.errors import BadMessage

DEFAULT_KLINES = 240  # the chart's window: four hours of one-minute candles


@dataclass(frozen=True, slots=True)
class Kline:
    """One closed (or forming) one-minute candle as a venue reports it; None: not reported."""

    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float  # base units
    notional: float | None  # quote volume (Σ price × size)
    trades: int | None
    buy_volume: float | None  # taker-buy base volume

    @property
    def sell_volume(self) -> float | None:
        return None if self.buy_volume is None else self.volume - self.buy_volume

    def candle(self) -> Candle:
        return Candle(
            self.open_ms, self.open, self.high, self.low, self.close, self.volume,
            self.trades or 0, self.notional or 0.0,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class KlineRequest:
    method: str  # GET or POST
    url: str
    body: bytes | None = None


def _excerpt(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return repr(text[:60] + ("…" if len(text) > 60 else ""))


def _num(value: Any, raw: bytes | str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise BadMessage(f"klines: not a number {value!r:.30} in {_excerpt(raw)}") from None
    if not math.isfinite(x) or x < 0:
        raise BadMessage(f"klines: bad number {value!r:.30} in {_excerpt(raw)}")
    return x


def _load(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadMessage(f"klines: not JSON: {_excerpt(raw)}") from None


def _checked(k: Kline, raw: bytes | str) -> Kline:
    if k.open_ms % MINUTE_MS or not (
        k.low <= min(k.open, k.close) <= max(k.open, k.close) <= k.high
    ):
        raise BadMessage(f"klines: inconsistent candle at {k.open_ms} in {_excerpt(raw)}")
    return k


# -- Binance: GET /api/v3/klines ------------------------------------------------------------------


def binance_request(
    base_url: str, symbol: str, now_ms: int, limit: int = DEFAULT_KLINES
) -> KlineRequest:
    """The newest ``limit`` one-minute klines (at most 1000); ``symbol`` as Binance names it."""
    del now_ms  # the newest ones: no time range needed
    query = urlencode({"symbol": symbol, "interval": "1m", "limit": min(limit, 1000)})
    return KlineRequest("GET", f"{base_url.rstrip('/')}/api/v3/klines?{query}")


def parse_binance(raw: bytes | str) -> list[Kline]:
    """Binance's array of arrays, oldest first::

        [[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100",
          "148976.11427815",1499040059999,"2434.19055334",308,"1756.87402397",
          "28.46694368","0"]]

    open time, open, high, low, close, volume, close time, quote volume, trades,
    taker-buy base volume, taker-buy quote volume, ignore.
    """
    data = _load(raw)
    if not isinstance(data, list):
        raise BadMessage(f"klines: expected a list from Binance, got {_excerpt(raw)}")
    out = []
    for row in data:
        if not isinstance(row, list) or len(row) < 10 or not isinstance(row[0], int):
            raise BadMessage(f"klines: bad Binance kline in {_excerpt(raw)}")
        o, h, lo, c, v = (_num(x, raw) for x in row[1:6])
        trades = row[8]
        if not isinstance(trades, int) or trades < 0:
            raise BadMessage(f"klines: bad trade count in {_excerpt(raw)}")
        out.append(
            _checked(
                Kline(row[0], o, h, lo, c, v, _num(row[7], raw), trades, _num(row[9], raw)), raw
            )
        )
    return sorted(out, key=lambda k: k.open_ms)


# -- Bybit: GET /v5/market/kline ------------------------------------------------------------------


def bybit_category(ws_url: str) -> str:
    """spot, linear or inverse: the last part of the WebSocket URL (``/v5/public/spot``)."""
    tail = ws_url.rstrip("/").rsplit("/", 1)[-1]
    return tail if tail in ("spot", "linear", "inverse") else "spot"


def bybit_request(
    base_url: str, symbol: str, now_ms: int, limit: int = DEFAULT_KLINES, category: str = "spot"
) -> KlineRequest:
    """The newest ``limit`` one-minute klines (at most 1000) of ``category``."""
    del now_ms
    query = urlencode(
        {"category": category, "symbol": symbol, "interval": "1", "limit": min(limit, 1000)}
    )
    return KlineRequest("GET", f"{base_url.rstrip('/')}/v5/market/kline?{query}")


def parse_bybit(raw: bytes | str) -> list[Kline]:
    """Bybit's envelope, the list newest first (returned oldest first)::

        {"retCode":0,"retMsg":"OK","result":{"category":"spot","symbol":"BTCUSDT",
         "list":[["1670608800000","17071","17073","17027","17055.5","268611","15.74462667"]]},
         "retExtInfo":{},"time":1672025956592}

    start time, open, high, low, close, volume (base), turnover (quote); no trade count and no
    buy/sell split (stored as unknown).
    """
    data = _load(raw)
    if not isinstance(data, dict):
        raise BadMessage(f"klines: expected an object from Bybit, got {_excerpt(raw)}")
    if data.get("retCode") != 0:
        raise BadMessage(f"klines: Bybit refused: {str(data.get('retMsg', ''))[:60]!r}")
    result = data.get("result")
    rows = result.get("list") if isinstance(result, dict) else None
    if not isinstance(rows, list):
        raise BadMessage(f"klines: no result.list from Bybit in {_excerpt(raw)}")
    out = []
    for row in rows:
        if not isinstance(row, list) or len(row) < 7:
            raise BadMessage(f"klines: bad Bybit kline in {_excerpt(raw)}")
        try:
            start = int(row[0])
        except (TypeError, ValueError):
            raise BadMessage(f"klines: bad Bybit start time in {_excerpt(raw)}") from None
        o, h, lo, c, v, turnover = (_num(x, raw) for x in row[1:7])
        out.append(_checked(Kline(start, o, h, lo, c, v, turnover, None, None), raw))
    return sorted(out, key=lambda k: k.open_ms)


# -- HyperLiquid: POST /info {"type": "candleSnapshot"} -------------------------------------------


def hyperliquid_request(
    base_url: str, coin: str, now_ms: int, limit: int = DEFAULT_KLINES
) -> KlineRequest:
    """The one-minute candles of the last ``limit`` minutes (HyperLiquid wants a range)."""
    start = now_ms - now_ms % MINUTE_MS - (limit - 1) * MINUTE_MS
    body = {
        "type": "candleSnapshot",
        "req": {"coin": coin, "interval": "1m", "startTime": start, "endTime": now_ms},
    }
    return KlineRequest("POST", f"{base_url.rstrip('/')}/info", orjson.dumps(body))


def parse_hyperliquid(raw: bytes | str) -> list[Kline]:
    """HyperLiquid's list of objects, oldest first::

        [{"t":1681923600000,"T":1681923659999,"s":"BTC","i":"1m","o":"29295.0",
          "c":"29258.0","h":"29309.0","l":"29250.0","v":"0.98639","n":189}]

    open time, close time, coin, interval, open, close, high, low, volume (base), trades; no
    quote volume (the chart's VWAP then uses the typical price) and no buy/sell split.
    """
    data = _load(raw)
    if not isinstance(data, list):
        raise BadMessage(f"klines: expected a list from HyperLiquid, got {_excerpt(raw)}")
    out = []
    for row in data:
        if not isinstance(row, dict) or not isinstance(row.get("t"), int):
            raise BadMessage(f"klines: bad HyperLiquid candle in {_excerpt(raw)}")
        o, h, lo, c, v = (_num(row.get(k), raw) for k in ("o", "h", "l", "c", "v"))
        n = row.get("n")
        if not isinstance(n, int) or n < 0:
            raise BadMessage(f"klines: bad trade count in {_excerpt(raw)}")
        out.append(_checked(Kline(row["t"], o, h, lo, c, v, None, n, None), raw))
    return sorted(out, key=lambda k: k.open_ms)


# -- the table the backfill uses ------------------------------------------------------------------

PARSERS: dict[str, Callable[[bytes | str], list[Kline]]] = {
    "binance": parse_binance,
    "bybit": parse_bybit,
    "hyperliquid": parse_hyperliquid,
}
