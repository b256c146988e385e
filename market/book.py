"""A local limit order book with exact semantics.

Quantities are absolute: a level's quantity replaces the old one, 0 removes the level, and
removing an absent level is normal (exchanges send it). Each side is a dict price → qty plus a
sorted list of its prices (ascending), so best prices are O(1) and ``top(n)`` is a slice; an
insert or removal is a bisect plus a memmove, cheap for the few thousand levels a book holds.

``top(n)`` keeps what it returned for each side and gives it again while that side's best
``n`` levels are untouched: a diff that changes no price at or better than the nth best level
(the edge) leaves them as they were. Every other change of the book forgets it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from operator import itemgetter

from market.errors import CrossedBook
from market.events import Level, Levels

_INF = float("inf")
_price = itemgetter(0)


class OrderBook:
    __slots__ = (
        "_ask_prices",
        "_ask_top",
        "_asks",
        "_bid_prices",
        "_bid_top",
        "_bids",
        "_top_n",
        "symbol",
        "update_id",
    )

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.update_id = 0
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        self._bid_prices: list[float] = []  # ascending: best bid is the last
        self._ask_prices: list[float] = []  # ascending: best ask is the first
        # the last top(n) of each side while still true (None: compute it again)
        self._top_n = 0
        self._bid_top: Levels | None = None
        self._ask_top: Levels | None = None

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def clear(self) -> None:
        self.update_id = 0
        self._bids.clear()
        self._asks.clear()
        self._bid_prices.clear()
        self._ask_prices.clear()
        self._bid_top = self._ask_top = None

    def replace(self, bids: Iterable[Level], asks: Iterable[Level], update_id: int = 0) -> None:
        """Replace the whole book with an image (levels with quantity 0 are skipped)."""
        self._bids = {p: q for p, q in bids if q > 0}
        self._asks = {p: q for p, q in asks if q > 0}
        self._bid_prices = sorted(self._bids)
        self._ask_prices = sorted(self._asks)
        self._bid_top = self._ask_top = None
        self.update_id = update_id

    def apply(
        self, bids: Iterable[Level], asks: Iterable[Level], update_id: int | None = None
    ) -> None:
        """Apply changed levels (absolute quantities; 0 removes)."""
        top = self._bid_top
        if top is not None:
            bids = tuple(bids)  # the same object when it is one already
            # a price at or above the edge (or a side thinner than n) changes the best n;
            # venues send a side best first: its first price usually settles it
            if bids and (
                len(top) < self._top_n
                or bids[0][0] >= top[-1][0]
                or max(map(_price, bids)) >= top[-1][0]
            ):
                self._bid_top = None
        top = self._ask_top
        if top is not None:
            asks = tuple(asks)
            if asks and (
                len(top) < self._top_n
                or asks[0][0] <= top[-1][0]
                or min(map(_price, asks)) <= top[-1][0]
            ):
                self._ask_top = None
        if bids:  # a diff often moves one side only
            _apply_side(self._bids, self._bid_prices, bids)
        if asks:
            _apply_side(self._asks, self._ask_prices, asks)
        if update_id is not None:
            self.update_id = update_id

    def trim(self, depth: int) -> None:
        """Keep the best ``depth`` levels a side (a venue's window: a 50-level stream drops the
        worst level when a better one enters, without always saying so)."""
        for book, prices, worst in (
            (self._bids, self._bid_prices, True),
            (self._asks, self._ask_prices, False),
        ):
            extra = len(prices) - depth
            if extra > 0:
                gone = prices[:extra] if worst else prices[-extra:]
                for price in gone:
                    del book[price]
                if worst:
                    del prices[:extra]
                else:
                    del prices[-extra:]
        if depth < self._top_n:  # the window cuts into the best n kept by top()
            self._bid_top = self._ask_top = None

    def outside_top(self, n: int, bids: Levels, asks: Levels) -> bool:
        """After applying ``bids``/``asks``: True when none of their prices is within the best
        ``n`` levels a side, so ``top(n)`` is what it was (a change deeper in the book)."""
        bid_prices = self._bid_prices
        if bids:
            edge = bid_prices[-n] if len(bid_prices) >= n else -_INF
            for price, _ in bids:
                if price >= edge:
                    return False
        ask_prices = self._ask_prices
        if asks:
            edge = ask_prices[n - 1] if len(ask_prices) >= n else _INF
            for price, _ in asks:
                if price <= edge:
                    return False
        return True

    def best_bid(self) -> Level | None:
        if not self._bid_prices:
            return None
        price = self._bid_prices[-1]
        return price, self._bids[price]

    def best_ask(self) -> Level | None:
        if not self._ask_prices:
            return None
        price = self._ask_prices[0]
        return price, self._asks[price]

    def top(self, n: int) -> tuple[Levels, Levels]:
        """The best ``n`` levels a side: bids high→low, asks low→high."""
        if n <= 0:
            return (), ()
        if n != self._top_n:
            self._top_n = n
            self._bid_top = self._ask_top = None
        bids = self._bid_top
        if bids is None:
            bids = self._bid_top = _levels(self._bid_prices[: -n - 1 : -1], self._bids)
        asks = self._ask_top
        if asks is None:
            asks = self._ask_top = _levels(self._ask_prices[:n], self._asks)
        return bids, asks

    def is_crossed(self) -> bool:
        return bool(
            self._bid_prices and self._ask_prices and self._bid_prices[-1] >= self._ask_prices[0]
        )

    def check_crossed(self) -> None:
        """Raise ``CrossedBook`` when best bid >= best ask."""
        bid_prices = self._bid_prices  # is_crossed(), inlined: this runs after every diff
        ask_prices = self._ask_prices
        if bid_prices and ask_prices and bid_prices[-1] >= ask_prices[0]:
            raise CrossedBook(
                self.symbol,
                f"crossed book: best bid {bid_prices[-1]} >= best ask {ask_prices[0]}",
            )

    def levels(self) -> tuple[dict[float, float], dict[float, float]]:
        """Copies of both sides as dicts (for tests and comparisons)."""
        return dict(self._bids), dict(self._asks)


def _levels(prices: list[float], book: dict[float, float]) -> Levels:
    """``(price, book[price])`` for each price, in order. The pairs are built in C (zip, and
    itemgetter reading every quantity in one call): this runs on most book updates."""
    if len(prices) > 1:
        return tuple(zip(prices, itemgetter(*prices)(book), strict=True))
    return ((prices[0], book[prices[0]]),) if prices else ()


def _apply_side(book: dict[float, float], prices: list[float], levels: Iterable[Level]) -> None:
    for price, qty in levels:
        if qty > 0:
            if price not in book:
                # insort, inlined: the hot path of every book update
                prices.insert(bisect_left(prices, price), price)
            book[price] = qty
        elif price in book:
            del book[price]
            del prices[bisect_left(prices, price)]
