"""Trade-flow analytics: VWAP, CVD, book depth delta, OHLCV candles, volatility, whale alerts.

Pure functions over sequences of trades or levels, plus ``SessionStats``: the same figures
kept incrementally (O(1) a trade, bounded memory) for the trades seen since a feed started.
No clock, no I/O. Volumes are in base units; notional is price × size in quote units.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from market.events import Levels, Trade
from market.settings import DEFAULT_WHALE_NOTIONAL

MINUTE_MS = 60_000
TIMEFRAMES_MS = {"1s": 1_000, "1m": MINUTE_MS, "5m": 5 * MINUTE_MS, "15m": 15 * MINUTE_MS}
DEPTH_DELTA_LEVELS = 20


@dataclass(frozen=True, slots=True)
class Candle:
    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int
    notional: float = 0.0  # Σ price × size: the candle's own VWAP is notional / volume

    def as_list(self) -> list[float | int]:
        """``[open_ms, open, high, low, close, volume, n_trades]`` (the CLI's form)."""
        return [self.open_ms, self.open, self.high, self.low, self.close, self.volume, self.trades]


@dataclass(frozen=True, slots=True)
class WhaleAlert:
    ts_ms: int
    exchange: str
    symbol: str
    side: str
    price: float
    qty: float
    notional: float


def vwap(trades: Iterable[Trade]) -> float | None:
    """Volume-weighted average price; None with no volume."""
    pq = q = 0.0
    for t in trades:
        pq += t.price * t.qty
        q += t.qty
    return pq / q if q > 0 else None


def rolling_vwap(trades: Sequence[Trade], window_ms: int) -> float | None:
    """VWAP of the trades within ``window_ms`` of the last trade's time (inclusive)."""
    if not trades:
        return None
    start = trades[-1].ts_ms - window_ms
    return vwap(t for t in trades if t.ts_ms >= start)


def signed_volume(trade: Trade) -> float:
    return trade.qty if trade.side == "buy" else -trade.qty


def cvd(trades: Iterable[Trade]) -> float:
    """Cumulative volume delta: buyer-initiated volume minus seller-initiated volume."""
    return sum(signed_volume(t) for t in trades)


def cvd_series(trades: Iterable[Trade]) -> list[float]:
    total = 0.0
    out = []
    for t in trades:
        total += signed_volume(t)
        out.append(total)
    return out


def depth_delta(bids: Levels, asks: Levels, levels: int = DEPTH_DELTA_LEVELS) -> float:
    """Bid volume minus ask volume over the best ``levels`` a side (0 for an empty book)."""
    return sum(q for _, q in bids[:levels]) - sum(q for _, q in asks[:levels])


def volatility_spread(prices: Iterable[float]) -> float:
    """``(high - low) / low × 100``; 0 when there is no price or ``low`` is not positive."""
    high = -math.inf
    low = math.inf
    for p in prices:
        high = max(high, p)
        low = min(low, p)
    if low == math.inf or low <= 0:
        return 0.0
    return (high - low) / low * 100.0


def realized_volatility(prices: Sequence[float]) -> float:
    """Square root of the sum of squared log returns, in % (0 with fewer than 2 prices)."""
    total = 0.0
    n = 0
    for prev, cur in itertools.pairwise(prices):
        if prev > 0 and cur > 0:
            r = math.log(cur / prev)
            total += r * r
            n += 1
    return math.sqrt(total) * 100.0 if n else 0.0


def candles(trades: Iterable[Trade], interval_ms: int = MINUTE_MS) -> list[Candle]:
    """OHLCV candles by trade time, oldest first; a period with no trade between two trades
    gets a flat candle at the previous close with zero volume."""
    builder = CandleBuilder(interval_ms, maxlen=None)
    for t in trades:
        builder.add(t.price, t.qty, t.ts_ms)
    return builder.candles()


def aggregate_candles(source: Sequence[Candle], interval_ms: int) -> list[Candle]:
    """Candles of ``interval_ms`` from shorter ones (oldest first; their interval must divide
    ``interval_ms``, e.g. one-minute candles into 5 or 15 minutes). Each period opens at the
    first source candle's open and closes at the last one's close; high, low, volume and trades
    cover them all. A period without any source candle between two that have one gets a flat
    candle at the previous close with zero volume (as ``candles`` does for trades)."""
    if interval_ms <= 0:
        raise ValueError("interval_ms must be positive")
    out: list[Candle] = []
    for c in source:
        start = c.open_ms - c.open_ms % interval_ms
        if out and start < out[-1].open_ms:
            raise ValueError("source candles must be oldest first")
        if out and out[-1].open_ms == start:
            last = out[-1]
            out[-1] = Candle(
                start,
                last.open,
                max(last.high, c.high),
                min(last.low, c.low),
                c.close,
                last.volume + c.volume,
                last.trades + c.trades,
                last.notional + c.notional,
            )
            continue
        if out:
            prev = out[-1].close
            for t in range(out[-1].open_ms + interval_ms, start, interval_ms):
                out.append(Candle(t, prev, prev, prev, prev, 0.0, 0))
        out.append(Candle(start, c.open, c.high, c.low, c.close, c.volume, c.trades, c.notional))
    return out


def candle_vwap(source: Sequence[Candle]) -> list[float | None]:
    """The VWAP line drawn over candles: at each candle, the VWAP of every trade from the first
    candle through it (exact: candles keep price × size; a candle built without it counts its
    volume at the typical price ``(high + low + close) / 3``). None until there is volume."""
    out: list[float | None] = []
    pq = q = 0.0
    for c in source:
        pq += c.notional if c.notional > 0 else (c.high + c.low + c.close) / 3.0 * c.volume
        q += c.volume
        out.append(pq / q if q > 0 else None)
    return out


def is_whale(trade: Trade, threshold: float) -> bool:
    """A trade whose notional is at or above ``threshold`` (a threshold <= 0 disables)."""
    return threshold > 0 and trade.price * trade.qty >= threshold


class CandleBuilder:
    """Candles built one trade at a time; keeps the last ``maxlen`` (None: all)."""

    def __init__(self, interval_ms: int, maxlen: int | None = 500) -> None:
        if interval_ms <= 0:
            raise ValueError("interval_ms must be positive")
        self.interval_ms = interval_ms
        # each candle: [open_ms, open, high, low, close, volume, trades, notional]
        self._rows: deque[list[float]] = deque(maxlen=maxlen)

    def add(self, price: float, qty: float, ts_ms: int) -> None:
        start = ts_ms - ts_ms % self.interval_ms
        rows = self._rows
        if rows:
            row = rows[-1]
            if row[0] == start:  # the current candle: nearly every trade
                _merge(row, price, qty)
                return
            if start < row[0]:
                for row in reversed(rows):  # a late trade: update its candle if still kept
                    if row[0] == start:
                        _merge(row, price, qty)
                        return
                    if row[0] < start:
                        break
                return  # older than anything kept (or its period was skipped): dropped
            prev_close = row[4]
            t = row[0] + self.interval_ms
            gaps = (start - t) // self.interval_ms
            if rows.maxlen is not None:
                gaps = min(gaps, rows.maxlen)
                t = start - gaps * self.interval_ms
            while t < start:
                rows.append([t, prev_close, prev_close, prev_close, prev_close, 0.0, 0, 0.0])
                t += self.interval_ms
        rows.append([start, price, price, price, price, qty, 1, price * qty])

    def candles(self, last: int | None = None) -> list[Candle]:
        rows = list(self._rows)
        if last is not None:
            rows = rows[-last:] if last > 0 else []
        return [Candle(int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6]), r[7]) for r in rows]


def _merge(row: list[float], price: float, qty: float) -> None:
    # max(row[2], price) and min(row[3], price), without the calls: the same value kept
    if price > row[2]:
        row[2] = price
    if price < row[3]:
        row[3] = price
    row[4] = price
    row[5] += qty
    row[6] += 1
    row[7] += price * qty


class SessionStats:
    """Running figures over every trade of a session (since a feed started or a reset)."""

    def __init__(
        self,
        whale_threshold: float = DEFAULT_WHALE_NOTIONAL,
        alerts_kept: int = 50,
        symbol: str | None = None,
        candles_kept: int = 240,
    ) -> None:
        self.whale_threshold = whale_threshold
        self.symbol = symbol  # the name alerts carry (default: the trade's own)
        self.trades = 0
        self.sum_pq = 0.0
        self.sum_q = 0.0
        self.cvd = 0.0
        self.high = -math.inf
        self.low = math.inf
        self.minute = CandleBuilder(MINUTE_MS, maxlen=candles_kept)
        self.alerts: deque[WhaleAlert] = deque(maxlen=alerts_kept)

    def add(self, trade: Trade) -> WhaleAlert | None:
        """Count one trade; its whale alert, if it is one."""
        alerts = self.add_all((trade,), skip_backfill=False)
        return alerts[0] if alerts else None

    def add_all(self, trades: Iterable[Trade], skip_backfill: bool = True) -> list[WhaleAlert]:
        """Count a batch of trades, but the backfilled ones (history from before the session:
        shown, not counted) unless ``skip_backfill`` is False; the whale alerts raised, oldest
        first. The same sums in the same order as ``add`` a trade at a time, with the running
        figures kept in locals meanwhile (this runs for every trade)."""
        alerts: list[WhaleAlert] = []
        n = self.trades
        sum_pq, sum_q, cvd, high, low = self.sum_pq, self.sum_q, self.cvd, self.high, self.low
        threshold = self.whale_threshold
        add_candle = self.minute.add
        try:
            for trade in trades:
                if skip_backfill and trade.backfill:
                    continue
                p = trade.price
                q = trade.qty
                pq = p * q
                n += 1
                sum_pq += pq
                sum_q += q
                if trade.side == "buy":
                    cvd += q
                else:
                    cvd -= q
                if p > high:
                    high = p
                if p < low:
                    low = p
                add_candle(p, q, trade.ts_ms)
                if threshold > 0 and pq >= threshold:  # is_whale()
                    symbol = self.symbol or trade.symbol
                    alert = WhaleAlert(trade.ts_ms, trade.exchange, symbol, trade.side, p, q, pq)
                    self.alerts.append(alert)
                    alerts.append(alert)
        finally:
            self.trades = n
            self.sum_pq, self.sum_q, self.cvd, self.high, self.low = sum_pq, sum_q, cvd, high, low
        return alerts

    @property
    def vwap(self) -> float | None:
        return self.sum_pq / self.sum_q if self.sum_q > 0 else None

    @property
    def volatility_spread(self) -> float:
        if self.trades == 0 or self.low <= 0:
            return 0.0
        return (self.high - self.low) / self.low * 100.0
