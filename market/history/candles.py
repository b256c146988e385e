"""The history writer's candle math, apart from its SQL: pure, and owned by one thread at a time.

- ``MinuteCandle``: one minute's candle built from trades (open, high, low, close, volume,
  price × size, trade count, buy and sell volume), continued from the row a previous run
  stored for that minute (``merge_before``);
- ``LiveCandles``: this run's minute candles per market, source and minute; which of them
  may continue a stored row; forgetting the written ones;
- ``StoredCandles``: the candles stored before this run and the venue's backfilled ones, per
  market, that the chart shows before the session's (``join_candles`` joins the two).

Rows go to and from the structs by column name (``db.row_of``, ``candle_of``): a field added to
``Candle``, ``Kline`` or ``MinuteCandle`` cannot shift a column.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any

from market.analytics import MINUTE_MS, Candle
from market.events import Trade
from market.history.db import CANDLE_COLUMNS, row_of
from market.venues.base import Kline

PRIOR_CANDLES = 240  # stored candles loaded per market to join the session's (4 hours)

Market = tuple[str, str, str]  # (exchange, symbol, source)
CandleKey = tuple[str, str, str, int]  # (exchange, symbol, source, open_ms)
CANDLE_KEY = CANDLE_COLUMNS[:4]  # the columns of a CandleKey
CANDLE_VALUES = CANDLE_COLUMNS[4:]  # a candle row's values: open … sell_volume
CANDLE_FIELDS = tuple(f.name for f in fields(Candle))  # stored columns of the same names


def minute_of(ms: int) -> int:
    return ms - ms % MINUTE_MS


class MinuteCandle:
    """One minute's candle being built; its attributes are named as the candle columns."""

    __slots__ = (
        "based",
        "buy_volume",
        "close",
        "high",
        "low",
        "notional",
        "open",
        "sell_volume",
        "trades",
        "volume",
    )

    def __init__(self, price: float) -> None:
        self.open = self.high = self.low = self.close = price
        self.volume = self.notional = self.buy_volume = self.sell_volume = 0.0
        self.trades = 0
        self.based = False  # a row stored before this run has been merged in (or there is none)

    def add(self, price: float, qty: float, buy: bool) -> None:
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        self.close = price
        self.volume += qty
        self.notional += price * qty
        self.trades += 1
        if buy:
            self.buy_volume += qty
        else:
            self.sell_volume += qty

    def merge_before(self, row: Mapping[str, Any]) -> None:
        """``row`` (a stored candle row, by column name) came first."""
        self.open = row["open"]
        self.high = max(self.high, row["high"])
        self.low = min(self.low, row["low"])
        self.volume += row["volume"]
        self.notional += row["notional"] or 0.0  # NULL only in venue rows, never merged here
        self.trades += int(row["trades"] or 0)
        self.buy_volume += row["buy_volume"] or 0.0
        self.sell_volume += row["sell_volume"] or 0.0

    def row(self, key: CandleKey) -> tuple[Any, ...]:
        """The candle's row of ``CANDLE_COLUMNS``."""
        return row_of(CANDLE_COLUMNS, self, **dict(zip(CANDLE_KEY, key, strict=True)))


class LiveCandles:
    """This run's one-minute candles from its trades. A minute that may already be stored (it
    opened before this run started, or at or before a minute of its market already forgotten)
    is not ``based`` until the stored row is merged in; a replay's never needs it (a replay
    overwrites). Not thread-safe: the writer thread's own."""

    def __init__(self, started_ms: int) -> None:
        self._started_minute = minute_of(started_ms)
        self._candles: dict[CandleKey, MinuteCandle] = {}
        self._newest: dict[Market, int] = {}  # market → newest minute
        self._pruned: dict[Market, int] = {}  # market → newest minute forgotten

    def add(
        self, exchange: str, symbol: str, source: str, trades: Iterable[Trade]
    ) -> list[CandleKey]:
        """Add trades (a fetched backfill's skipped: not this run's); the keys they touched."""
        touched: list[CandleKey] = []
        market: Market = (exchange, symbol, source)
        for t in trades:
            if t.backfill:
                continue
            key: CandleKey = (*market, minute_of(t.ts_ms))
            candle = self._candles.get(key)
            if candle is None:
                candle = self._candles[key] = MinuteCandle(t.price)
                opened = key[3]
                if opened > self._newest.get(market, -1):
                    self._newest[market] = opened
                maybe_stored = opened <= self._started_minute or opened <= self._pruned.get(
                    market, -1
                )
                candle.based = not maybe_stored or source == "replay"  # a replay overwrites
            candle.add(t.price, t.qty, t.side == "buy")
            touched.append(key)
        return touched

    def get(self, key: CandleKey) -> MinuteCandle | None:
        return self._candles.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._candles

    def drop(self, key: CandleKey) -> None:
        self._candles.pop(key, None)

    def markets(self) -> set[Market]:
        return {(k[0], k[1], k[2]) for k in self._candles}

    def prune(self, dirty: Collection[CandleKey]) -> None:
        """Forget written candles (not in ``dirty``) more than two minutes older than their
        market's newest."""
        for key in [k for k in self._candles if k not in dirty]:
            market: Market = (key[0], key[1], key[2])
            if key[3] < self._newest.get(market, 0) - 2 * MINUTE_MS:
                del self._candles[key]
                self._pruned[market] = max(self._pruned.get(market, -1), key[3])


class StoredCandles:
    """Per market and source, the candles stored before this run and the venue's backfilled
    ones, each minute once: the market's own source wins over the venue's. Not thread-safe:
    the writer holds its lock around every call."""

    def __init__(self) -> None:
        # market → open_ms → (candle, of the market's own source rather than the venue's)
        self._markets: dict[Market, dict[int, tuple[Candle, bool]]] = {}

    def load(self, market: Market, rows: Iterable[tuple[str, Candle]]) -> None:
        """``(source, candle)`` rows read from the database (the market's source or the
        venue's)."""
        prior = self._markets.setdefault(market, {})
        for source, candle in rows:
            if source == market[2] or candle.open_ms not in prior:
                prior[candle.open_ms] = (candle, source == market[2])

    def add_venue(self, exchange: str, symbol: str, klines: Iterable[Kline]) -> None:
        """The venue's backfilled candles: shown before a live session's only."""
        prior = self._markets.setdefault((exchange, symbol, "live"), {})
        for k in klines:
            prior.setdefault(k.open_ms, (k.candle(), False))

    def before(self, market: Market, before_ms: float) -> list[Candle]:
        """The last ``PRIOR_CANDLES``, oldest first: those opening before ``before_ms``, and at
        ``before_ms`` one of the market's own source (a venue's candle of that minute overlaps
        the session's trades)."""
        prior = self._markets.get(market, {})
        keys = sorted(
            k for k, (_, own) in prior.items() if k < before_ms or (own and k == before_ms)
        )
        return [prior[k][0] for k in keys[-PRIOR_CANDLES:]]


def candle_of(values: Sequence[Any], columns: Sequence[str] = CANDLE_FIELDS) -> Candle:
    """A ``Candle`` from a stored row's ``values`` of ``columns`` (the candle's fields among
    them, taken by name); a venue's unknown trade count and notional (NULL) become 0."""
    row = dict(zip(columns, values, strict=True))
    candle = {name: row[name] for name in CANDLE_FIELDS}
    candle["open_ms"] = int(candle["open_ms"])
    candle["trades"] = int(candle["trades"] or 0)
    candle["notional"] = candle["notional"] or 0.0
    return Candle(**candle)


def kline_row(exchange: str, symbol: str, k: Kline) -> tuple[Any, ...]:
    """A venue's candle as its row of ``CANDLE_COLUMNS`` (source ``venue``)."""
    return row_of(CANDLE_COLUMNS, k, exchange=exchange, symbol=symbol, source="venue")


def join_candles(stored: Sequence[Candle], session: Sequence[Candle]) -> list[Candle]:
    """Stored candles (from before this session, oldest first) then the session's; the minute
    both have is one candle (the stored part came first). Pure."""
    if not session:
        return list(stored)
    first = session[0].open_ms
    out = [c for c in stored if c.open_ms < first]
    boundary = next((c for c in stored if c.open_ms == first), None)
    if boundary is None:
        return out + list(session)
    s = session[0]
    joined = Candle(
        open_ms=first,
        open=boundary.open,
        high=max(boundary.high, s.high),
        low=min(boundary.low, s.low),
        close=s.close,
        volume=boundary.volume + s.volume,
        trades=boundary.trades + s.trades,
        notional=boundary.notional + s.notional,
    )
    return [*out, joined, *session[1:]]
