"""The Overview's data: one row per watched market from ONE store snapshot, their order,
the top movers and the table's frame; pure (no ``st.*``), so a test fills a ``MarketStore``
and compares the output with exact values.

Unknown figures are None in the rows, NaN (or an empty sparkline) in the frame, never 0. The
sparkline is the price of the last hour, one point a minute (the closes of the market's
one-minute trade candles, then the last price); the 24 h range is where the last price sits
between the 24 h low, 0 %, and high, 100 %. Prices in the frame are rounded to about five
significant digits of their own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]

from app.components.fmt import price_decimals
from app.components.status import is_simulated
from market.events import FeedStatus
from market.metrics import spread_bps, top_of_book
from market.views import MarketKey, MarketView, StoreSnapshot

MOVERS = 5
SPARK_POINTS = 60  # the last hour, one point a minute
SIMULATED = "SIMULATED"

# "Sort by" choices: label → (row field, descending). Unknown values always sort last.
SORTS: dict[str, tuple[str, bool]] = {
    "24h volume, largest first": ("volume", True),
    "24h change, gainers first": ("change_pct", True),
    "24h change, losers first": ("change_pct", False),
    "Spread, tightest first": ("spread_bps", False),
    "Symbol": ("symbol", False),
    "Exchange": ("exchange", False),
}
DEFAULT_SORT = "24h volume, largest first"

COLUMNS = (
    "Symbol",
    "Exchange",
    "Source",
    "Last hour",
    "Last",
    "24h %",
    "24h range",
    "24h volume",
    "24h high",
    "24h low",
    "Bid",
    "Ask",
    "Spread (bps)",
    "Feed",
)


@dataclass(frozen=True, slots=True)
class OverviewRow:
    """One market as the overview shows it; None where not known (yet)."""

    exchange: str
    symbol: str
    source: str  # "SIMULATED", "live" or "replay"
    last: float | None
    change_pct: float | None  # percent: 1.5 means +1.5 %
    volume: float | None  # 24 h quote volume where the venue gives it, else base volume
    volume_is_quote: bool
    high: float | None
    low: float | None
    bid: float | None
    ask: float | None
    spread_bps: float | None
    feed: str  # the exchange's feed state, plus why this market's book is not synced
    feed_class: str  # "ok", "sim", "warn" or "bad": the colour of ``feed``
    unsynced: str = ""  # why the book is not synced while the feed is up, else ""
    spark: tuple[float, ...] = ()  # the last hour's price, one point a minute, oldest first

    @property
    def simulated(self) -> bool:
        return self.source == SIMULATED

    @property
    def range_pct(self) -> float | None:
        """Where the last price sits in the 24 h range: 0 at the low, 100 at the high."""
        last, low, high = self.last, self.low, self.high
        if last is None or low is None or high is None or high <= low:
            return None
        return min(100.0, max(0.0, (last - low) / (high - low) * 100.0))


# -- pure: rows, order, movers ----------------------------------------------------------------


def _known(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _spread_bps(bid: float | None, ask: float | None) -> float | None:
    """From a ticker's bid/ask: None when either is unknown or they are crossed."""
    if bid is None or ask is None or bid <= 0 or ask < bid:
        return None
    return spread_bps(bid, ask)


def _feed(view: MarketView | None, status: FeedStatus | None, now: float) -> tuple[str, str, str]:
    """(text, colour class, why the book is not synced or "") of the Feed column (stale as
    of ``now``).

    While the exchange itself is not up (connecting, reconnecting, blocked, stopped, stale)
    the cell says only that: its status bar above the table gives the reason, and the cell
    stays short enough to read. While it is up, a market without a synced book says why."""
    if status is None:
        return "waiting", "warn", ""
    if status.is_stale(now):
        return f"{status.state} · STALE", "bad", ""
    state = status.state
    if state not in ("live", "simulated"):
        return state, "bad" if state in ("blocked", "stopped") else "warn", ""
    if view is None:
        return f"{state} · no data yet", "warn", ""
    if not (view.synced and view.bids and view.asks):
        detail = view.detail or "waiting for the book"
        return f"{state} · unsynced: {detail}", "warn", detail
    return state, "ok" if state == "live" else "sim", ""


def price_history(view: MarketView | None, last: float | None) -> tuple[float, ...]:
    """The sparkline: the closes of the last ``SPARK_POINTS - 1`` one-minute candles, then
    the last price (the minute in progress); () when nothing is known."""
    closes = [c.close for c in view.session.candles[-(SPARK_POINTS - 1) :]] if view else []
    if last is not None:
        closes.append(last)
    return tuple(closes)


def market_row(
    key: MarketKey, view: MarketView | None, status: FeedStatus | None, now: float
) -> OverviewRow:
    """One row: 24 h figures from the venue's ticker; bid, ask and spread from the book while
    it is synced (else from the ticker); the last trade stands in for an unknown last price;
    the feed's state as of ``now``."""
    exchange, symbol = key
    ticker = view.ticker if view is not None else None
    synced = view is not None and view.synced and bool(view.bids) and bool(view.asks)
    if synced:
        assert view is not None
        tob = top_of_book(view.bids, view.asks)
        bid, ask, spread = tob.best_bid, tob.best_ask, tob.spread_bps
    else:
        bid = _known(ticker.bid) if ticker else None
        ask = _known(ticker.ask) if ticker else None
        spread = _spread_bps(bid, ask)
    last = _known(ticker.last) if ticker else None
    if last is None and view is not None and view.last_trade is not None:
        last = view.last_trade.price
    quote = _known(ticker.quote_volume) if ticker else None
    volume = quote if quote is not None else (_known(ticker.volume) if ticker else None)
    feed, feed_class, unsynced = _feed(view, status, now)
    if is_simulated(view, status):
        source = SIMULATED
    else:
        source = view.source if view is not None else status.source if status else "live"
    return OverviewRow(
        exchange=exchange,
        symbol=symbol,
        source=source,
        last=last,
        change_pct=_known(ticker.change_pct) if ticker else None,
        volume=volume,
        volume_is_quote=quote is not None,
        high=_known(ticker.high) if ticker else None,
        low=_known(ticker.low) if ticker else None,
        bid=bid,
        ask=ask,
        spread_bps=spread,
        feed=feed,
        feed_class=feed_class,
        unsynced=unsynced,
        spark=price_history(view, last),
    )


def overview_rows(
    snap: StoreSnapshot, watched: Sequence[MarketKey] | None = None
) -> list[OverviewRow]:
    """A row for every watched market (every market of the snapshot when None), in that
    order; a watched market the store has not heard of yet gets a row of "—"."""
    keys = list(snap.markets) if watched is None else list(watched)
    statuses, now = snap.statuses, snap.taken_at
    return [market_row(k, snap.markets.get(k), statuses.get(k[0]), now) for k in keys]


def watched_exchanges(watched: Sequence[MarketKey] | None, snap: StoreSnapshot) -> list[str]:
    """The exchanges of ``watched`` in their order; every exchange of the snapshot (sorted)
    when None."""
    if watched is None:
        return sorted({k[0] for k in snap.markets} | set(snap.statuses))
    return list(dict.fromkeys(k[0] for k in watched))


def sort_rows(rows: Sequence[OverviewRow], sort_by: str) -> list[OverviewRow]:
    """By the chosen field; ties by symbol then exchange; rows where it is unknown last."""
    field, descending = SORTS[sort_by]
    known = [r for r in rows if getattr(r, field) is not None]
    unknown = [r for r in rows if getattr(r, field) is None]
    known.sort(key=lambda r: (r.symbol, r.exchange))
    known.sort(key=lambda r: getattr(r, field), reverse=descending)  # stable: ties keep order
    unknown.sort(key=lambda r: (r.symbol, r.exchange))
    return known + unknown


def movers(
    rows: Sequence[OverviewRow], n: int = MOVERS
) -> tuple[list[OverviewRow], list[OverviewRow]]:
    """The ``n`` largest 24 h rises and the ``n`` largest falls (ties by symbol, exchange)."""
    up = [r for r in rows if r.change_pct is not None and r.change_pct > 0]
    down = [r for r in rows if r.change_pct is not None and r.change_pct < 0]
    up.sort(key=lambda r: (-r.change_pct, r.symbol, r.exchange))  # type: ignore[operator]
    down.sort(key=lambda r: (r.change_pct, r.symbol, r.exchange))
    return up[:n], down[:n]


# -- pure: the frame --------------------------------------------------------------------------


def round_price(value: float) -> float:
    """About five significant digits, as the price cells of the Market page show them."""
    return round(value, price_decimals(value))


def overview_frame(rows: Sequence[OverviewRow]) -> pd.DataFrame:
    """The table's data: numbers stay numbers (a header click sorts them as numbers),
    unknown is NaN (drawn as "—"); prices rounded by ``round_price``."""

    def num(field: str, price: bool = False) -> np.ndarray:
        values = (getattr(r, field) for r in rows)
        return np.fromiter(
            (math.nan if v is None else round_price(v) if price else v for v in values),
            np.float64,
            len(rows),
        )

    data = {
        "Symbol": [r.symbol for r in rows],
        "Exchange": [r.exchange for r in rows],
        "Source": [r.source for r in rows],
        "Last hour": [[round_price(p) for p in r.spark] for r in rows],
        "Last": num("last", price=True),
        "24h %": num("change_pct"),
        "24h range": num("range_pct"),
        "24h volume": num("volume"),
        "24h high": num("high", price=True),
        "24h low": num("low", price=True),
        "Bid": num("bid", price=True),
        "Ask": num("ask", price=True),
        "Spread (bps)": num("spread_bps"),
        "Feed": [r.feed for r in rows],
    }
    return pd.DataFrame(data, columns=list(COLUMNS))
