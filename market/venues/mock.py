"""The simulated feed: the same normalized events as a real exchange, never mistaken for one.

Every market is a random-walk mid on a tick grid with ~50 levels a side (never crossed), about
10 book deltas and 5–20 trades a second, and now and then a large trade. About once a second
(and once at start) it also gives a ``Ticker`` of 24 h statistics consistent with that stream:
``last`` is the last trade, ``change_pct`` is measured from a seeded 24 h open (within ±8 %),
``high``/``low`` cover the open and every trade, the volumes are a seeded 24 h base plus the
simulated trades, and ``bid``/``ask`` are the book's best.

A fixed seed (``MOCK_SEED``) makes the whole stream reproducible: same seed, same symbols,
same events. Everything this module produces is labelled ``simulated`` by the worker and the
store.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable

from market.events import BookDelta, BookSnapshot, Event, Ticker, Trade
from market.venues.base import Venue, register

EXCHANGE = "mock"
LEVELS_PER_SIDE = 50
TRADE_RATE_RANGE = (5.0, 20.0)  # trades a second, drawn per market
LARGE_TRADE_PROBABILITY = 0.02  # a "whale": 20-60x the usual size
TICKER_INTERVAL_S = 1.0  # one Ticker a market about every second
MAX_24H_CHANGE = 0.08  # the simulated 24 h open is within ±8 % of the start price
# log10 of a plausible 24 h quote volume: majors trade 0.1-1.6 B, anything else 1-300 M
KNOWN_QUOTE_VOLUME_LOG10 = (8.0, 9.2)
OTHER_QUOTE_VOLUME_LOG10 = (6.0, 8.5)

# Plausible starting prices for well-known bases; anything else gets a stable pseudo-random one.
# fmt: off
KNOWN_PRICES = {
    "BTC": 65_000.0, "ETH": 3_200.0, "SOL": 150.0, "BNB": 580.0, "XRP": 0.55, "DOGE": 0.12,
    "ADA": 0.45, "AVAX": 30.0, "LINK": 15.0, "DOT": 6.5, "LTC": 80.0, "TRX": 0.12, "TON": 5.5,
    "BCH": 350.0, "XLM": 0.1, "ATOM": 6.0, "UNI": 8.0, "NEAR": 5.0, "APT": 8.0, "ARB": 0.8,
    "OP": 1.8, "SUI": 1.5, "SHIB": 0.00002, "PEPE": 0.00001, "HYPE": 30.0,
}
# fmt: on
QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "USD", "EUR", "BTC", "ETH")


def base_asset(symbol: str) -> str:
    s = symbol.upper().replace("-", "")
    for quote in QUOTES:
        if s.endswith(quote) and len(s) > len(quote):
            return s[: -len(quote)]
    return s


def start_price(symbol: str) -> float:
    base = base_asset(symbol)
    if base in KNOWN_PRICES:
        return KNOWN_PRICES[base]
    digest = int(hashlib.sha256(base.encode()).hexdigest()[:12], 16)
    price = 10 ** (-1 + 4 * (digest / 0xFFFFFFFFFFFF))  # 0.1 … 1000, log-uniform, stable
    return round(price, 4 - math.floor(math.log10(price)))  # 5 significant digits


def tick_size(price: float) -> float:
    """A tick of about 0.1–1 bp of the price, a power of ten (as most spot markets)."""
    return float(10 ** math.floor(math.log10(price * 1e-4)))


class _SimMarket:
    """One simulated market. ``rng`` drives the book and the trades; ``rng_24h`` only the
    24 h figures (so adding them left the book and trade stream of a seed unchanged)."""

    def __init__(self, symbol: str, rng: random.Random, rng_24h: random.Random) -> None:
        self.symbol = symbol
        self.rng = rng
        self.tick = tick_size(start_price(symbol))
        self.decimals = max(0, -round(math.log10(self.tick)))
        self.mid_ticks = round(start_price(symbol) * rng.uniform(0.97, 1.03) / self.tick)
        self.vol_ticks = max(1.0, 0.00015 * self.mid_ticks)  # per-step st.dev. of the mid, in ticks
        self.trade_rate = rng.uniform(*TRADE_RATE_RANGE)
        self.unit = 1000.0 / (self.mid_ticks * self.tick)  # a typical level holds ~1000 quote units
        self.update_id = 0
        self.bids: dict[int, float] = {}  # price in ticks → qty
        self.asks: dict[int, float] = {}
        self.bid_range = self.ask_range = range(0)  # the ticks each side holds, exactly
        self.trade_seq = 0
        # 24 h statistics: a seeded "yesterday" (open, range, volume) that the trades extend
        self.last = self.price(self.mid_ticks)  # the last trade (before the first: the mid)
        change = rng_24h.uniform(-MAX_24H_CHANGE, MAX_24H_CHANGE)
        self.open_24h = self.price(max(1, round(self.mid_ticks / (1.0 + change))))
        swing = self.last * rng_24h.uniform(0.002, 0.03)  # how far the day went beyond both
        self.high = self.price(round((max(self.open_24h, self.last) + swing) / self.tick))
        self.low = self.price(max(1, round((min(self.open_24h, self.last) - swing) / self.tick)))
        known = base_asset(symbol) in KNOWN_PRICES
        span = KNOWN_QUOTE_VOLUME_LOG10 if known else OTHER_QUOTE_VOLUME_LOG10
        self.quote_volume = 10 ** rng_24h.uniform(*span)
        self.volume = self.quote_volume / ((self.open_24h + self.last) / 2)
        self.next_ticker_at = -math.inf
        self.ticker_phase = rng_24h.uniform(0.0, TICKER_INTERVAL_S)  # markets tick staggered

    def price(self, ticks: int) -> float:
        return round(ticks * self.tick, self.decimals)

    def qty(self) -> float:
        """A level's size: lognormal (sigma 0.8) around ``unit``; ``exp(gauss)`` is the same
        law as ``lognormvariate`` at a third of the cost."""
        return round(self.unit * math.exp(self.rng.gauss(0.0, 0.8)), 4) or 0.0001

    def desired(self) -> tuple[range, range]:
        half = max(1, round(self.rng.uniform(0.5, 2.0)))
        best_bid = self.mid_ticks - half
        best_ask = self.mid_ticks + half
        return (
            range(best_bid - LEVELS_PER_SIDE + 1, best_bid + 1),
            range(best_ask, best_ask + LEVELS_PER_SIDE),
        )

    def snapshot(self, now: float) -> BookSnapshot:
        bid_range, ask_range = self.desired()
        self.bids = {t: self.qty() for t in bid_range}
        self.asks = {t: self.qty() for t in ask_range}
        self.bid_range, self.ask_range = bid_range, ask_range
        self.update_id += 1
        return BookSnapshot(
            exchange=EXCHANGE,
            symbol=self.symbol,
            bids=tuple((self.price(t), q) for t, q in sorted(self.bids.items(), reverse=True)),
            asks=tuple((self.price(t), q) for t, q in sorted(self.asks.items())),
            update_id=self.update_id,
            ts_ms=int(now * 1000),
            received_at=now,
        )

    def step(self, now: float) -> BookDelta:
        """Move the mid, re-centre both sides, touch a few sizes: one delta of absolute levels."""
        self.mid_ticks = max(
            LEVELS_PER_SIDE + 5, self.mid_ticks + round(self.rng.gauss(0, self.vol_ticks))
        )
        bid_range, ask_range = self.desired()
        bids_changed = _move(self.bids, self.bid_range, bid_range, self.qty, self.rng)
        asks_changed = _move(self.asks, self.ask_range, ask_range, self.qty, self.rng)
        self.bid_range, self.ask_range = bid_range, ask_range
        self.update_id += 1
        tick, places = self.tick, self.decimals  # self.price inlined: ~30 levels a step
        return BookDelta(
            exchange=EXCHANGE,
            symbol=self.symbol,
            bids=tuple((round(t * tick, places), q) for t, q in bids_changed),
            asks=tuple((round(t * tick, places), q) for t, q in asks_changed),
            first_id=self.update_id,
            last_id=self.update_id,
            prev_id=self.update_id - 1,
            ts_ms=int(now * 1000),
            received_at=now,
        )

    def trades(self, now: float, dt: float) -> list[Trade]:
        out: list[Trade] = []
        n = _poisson(self.rng, self.trade_rate * dt)
        for _ in range(n):
            side = "buy" if self.rng.random() < 0.5 else "sell"
            book = self.asks if side == "buy" else self.bids
            if not book:
                continue
            ticks = min(book) if side == "buy" else max(book)
            size = self.unit * 0.2 * math.exp(self.rng.gauss(0.0, 1.0))
            if self.rng.random() < LARGE_TRADE_PROBABILITY:
                size *= self.rng.uniform(20, 60)
            self.trade_seq += 1
            price, qty = self.price(ticks), round(size, 4) or 0.0001
            self._traded(price, qty)
            out.append(
                Trade(
                    exchange=EXCHANGE,
                    symbol=self.symbol,
                    price=price,
                    qty=qty,
                    side=side,  # type: ignore[arg-type]
                    ts_ms=int(now * 1000),
                    trade_id=str(self.trade_seq),
                    received_at=now,
                )
            )
        return out

    def _traded(self, price: float, qty: float) -> None:
        """A trade extends the 24 h figures: last, range, volumes."""
        self.last = price
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.volume += qty
        self.quote_volume += price * qty

    def ticker(self, now: float, first: bool = False) -> Ticker | None:
        """The 24 h statistics, when one is due (always when ``first``)."""
        if not first and now < self.next_ticker_at:
            return None
        self.next_ticker_at = now + (self.ticker_phase if first else TICKER_INTERVAL_S)
        return Ticker(
            exchange=EXCHANGE,
            symbol=self.symbol,
            last=self.last,
            change_pct=round((self.last / self.open_24h - 1.0) * 100.0, 4),
            volume=round(self.volume, 4),
            quote_volume=round(self.quote_volume, 2),
            high=self.high,
            low=self.low,
            bid=self.price(max(self.bids)) if self.bids else None,
            ask=self.price(min(self.asks)) if self.asks else None,
            ts_ms=int(now * 1000),
            received_at=now,
        )


def _move(
    side: dict[int, float], old: range, new: range, qty: Callable[[], float], rng: random.Random
) -> list[tuple[int, float]]:
    """Make ``side`` (exactly the ticks of ``old``) hold the ticks of ``new``, then re-size 3
    random levels. Only the ticks that leave or join are visited: a step costs what changed."""
    changed: list[tuple[int, float]] = []
    for gone in (
        range(old.start, min(old.stop, new.start)),
        range(max(old.start, new.stop), old.stop),
    ):
        for t in gone:
            del side[t]
            changed.append((t, 0.0))
    for joined in (
        range(new.start, min(new.stop, old.start)),
        range(max(new.start, old.stop), new.stop),
    ):
        for t in joined:
            q = side[t] = qty()
            changed.append((t, q))
    for t in rng.sample(new, k=min(3, len(new))):
        q = side[t] = qty()
        changed.append((t, q))
    return changed


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: fine for the small rates of one step
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class MockExchange:
    """A deterministic simulated exchange for any number of symbols.

    ``start(now)`` gives one snapshot and one ticker per symbol; ``step(now)`` then gives each
    symbol's next delta, the trades since the previous step and, about once a second, its
    ticker. Call ``step`` about 10 times a second.
    """

    def __init__(self, symbols: tuple[str, ...], seed: int | None = None) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self._markets: dict[str, _SimMarket] = {}
        for symbol in symbols:
            market_seed = self._rng.random()
            self._markets[symbol] = _SimMarket(
                symbol, random.Random(market_seed), random.Random(f"24h:{market_seed!r}")
            )
        self._last_step: float | None = None

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._markets)

    def start(self, now: float) -> list[Event]:
        """One snapshot per symbol, then one ticker per symbol."""
        self._last_step = now
        events: list[Event] = [m.snapshot(now) for m in self._markets.values()]
        for m in self._markets.values():
            events.append(m.ticker(now, first=True))  # type: ignore[arg-type]  # never None
        return events

    def step(self, now: float) -> list[Event]:
        dt = 0.1 if self._last_step is None else max(0.0, min(1.0, now - self._last_step))
        self._last_step = now
        events: list[Event] = []
        for market in self._markets.values():
            events.append(market.step(now))
            events.extend(market.trades(now, dt))
            ticker = market.ticker(now)
            if ticker is not None:
                events.append(ticker)
        return events


VENUE = register(
    Venue(name=EXCHANGE, display="Simulated", session=None, simulated=True, simulator=MockExchange)
)
