"""OrderBook: exact levels after scripted sequences, and a property test against a naive book."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.book import OrderBook
from market.errors import BookError, CrossedBook


def make_book() -> OrderBook:
    book = OrderBook("BTCUSDT")
    book.replace(
        bids=[(99.0, 1.0), (100.0, 2.0), (98.5, 3.0)],
        asks=[(101.0, 4.0), (102.5, 5.0), (101.5, 6.0)],
        update_id=10,
    )
    return book


def test_empty_book() -> None:
    book = OrderBook("BTCUSDT")
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert book.top(5) == ((), ())
    assert len(book) == 0
    assert book.update_id == 0
    assert not book.is_crossed()
    book.check_crossed()  # an empty book is not crossed


def test_replace_sorts_each_side_best_first() -> None:
    book = make_book()
    assert book.update_id == 10
    assert book.top(10) == (
        ((100.0, 2.0), (99.0, 1.0), (98.5, 3.0)),
        ((101.0, 4.0), (101.5, 6.0), (102.5, 5.0)),
    )
    assert book.best_bid() == (100.0, 2.0)
    assert book.best_ask() == (101.0, 4.0)
    assert len(book) == 6


def test_replace_skips_zero_quantities_and_forgets_the_old_image() -> None:
    book = make_book()
    book.replace(bids=[(90.0, 1.5), (91.0, 0.0)], asks=[(95.0, 0.0), (96.0, 2.5)], update_id=20)
    assert book.levels() == ({90.0: 1.5}, {96.0: 2.5})
    assert book.top(3) == (((90.0, 1.5),), ((96.0, 2.5),))
    assert book.update_id == 20


def test_insert_levels_inside_and_outside_the_best() -> None:
    book = make_book()
    book.apply(bids=[(100.5, 7.0), (97.0, 8.0), (99.5, 9.0)], asks=[(100.9, 1.5), (103.0, 2.5)])
    assert book.top(10) == (
        ((100.5, 7.0), (100.0, 2.0), (99.5, 9.0), (99.0, 1.0), (98.5, 3.0), (97.0, 8.0)),
        ((100.9, 1.5), (101.0, 4.0), (101.5, 6.0), (102.5, 5.0), (103.0, 2.5)),
    )
    assert book.best_bid() == (100.5, 7.0)
    assert book.best_ask() == (100.9, 1.5)


def test_update_replaces_the_quantity_it_does_not_add() -> None:
    book = make_book()
    book.apply(bids=[(99.0, 0.25)], asks=[(101.0, 10.0)])
    assert book.levels() == (
        {100.0: 2.0, 99.0: 0.25, 98.5: 3.0},
        {101.0: 10.0, 101.5: 6.0, 102.5: 5.0},
    )


def test_zero_quantity_removes_the_level() -> None:
    book = make_book()
    book.apply(bids=[(100.0, 0.0)], asks=[(101.5, 0.0)])
    assert book.top(10) == (
        ((99.0, 1.0), (98.5, 3.0)),
        ((101.0, 4.0), (102.5, 5.0)),
    )
    assert book.best_bid() == (99.0, 1.0)
    assert len(book) == 4


def test_removing_an_absent_level_is_fine() -> None:
    book = make_book()
    before = book.levels()
    book.apply(bids=[(42.0, 0.0), (100.25, 0.0)], asks=[(200.0, 0.0), (101.25, 0.0)])
    assert book.levels() == before
    assert book.top(3) == (
        ((100.0, 2.0), (99.0, 1.0), (98.5, 3.0)),
        ((101.0, 4.0), (101.5, 6.0), (102.5, 5.0)),
    )


def test_levels_apply_in_order_within_one_update() -> None:
    book = make_book()
    # insert, change, remove, re-insert the same price in one update: the last word wins
    book.apply(
        bids=[(97.0, 1.0), (97.0, 2.0), (97.0, 0.0), (97.0, 3.0)], asks=[(104.0, 1.0), (104.0, 0.0)]
    )
    bids, asks = book.levels()
    assert bids[97.0] == 3.0
    assert 104.0 not in asks
    assert book.top(5)[0] == ((100.0, 2.0), (99.0, 1.0), (98.5, 3.0), (97.0, 3.0))


def test_emptying_a_side() -> None:
    book = make_book()
    book.apply(bids=[(100.0, 0.0), (99.0, 0.0), (98.5, 0.0)], asks=[])
    assert book.best_bid() is None
    assert book.best_ask() == (101.0, 4.0)
    assert book.top(2) == ((), ((101.0, 4.0), (101.5, 6.0)))


def test_apply_sets_update_id_only_when_given() -> None:
    book = make_book()
    book.apply(bids=[(99.0, 1.5)], asks=[])
    assert book.update_id == 10
    book.apply(bids=[], asks=[], update_id=15)
    assert book.update_id == 15


def test_top_n_limits_and_orders() -> None:
    book = make_book()
    assert book.top(1) == (((100.0, 2.0),), ((101.0, 4.0),))
    assert book.top(2) == (((100.0, 2.0), (99.0, 1.0)), ((101.0, 4.0), (101.5, 6.0)))
    assert book.top(0) == ((), ())
    assert book.top(-3) == ((), ())


def test_clear() -> None:
    book = make_book()
    book.clear()
    assert book.top(5) == ((), ())
    assert book.update_id == 0
    assert len(book) == 0
    book.apply(bids=[(1.0, 1.0)], asks=[(2.0, 1.0)])
    assert book.top(5) == (((1.0, 1.0),), ((2.0, 1.0),))


def test_levels_returns_copies() -> None:
    book = make_book()
    bids, asks = book.levels()
    bids.clear()
    asks[1.0] = 1.0
    assert book.best_bid() == (100.0, 2.0)
    assert book.best_ask() == (101.0, 4.0)


@pytest.mark.parametrize(
    ("bids", "asks"),
    [
        ([(101.0, 1.0)], []),  # bid equal to the best ask: crossed (locked counts)
        ([(101.5, 1.0)], []),  # bid above the best ask
        ([], [(100.0, 1.0)]),  # ask equal to the best bid
        ([], [(95.0, 1.0)]),  # ask below the best bid
    ],
)
def test_crossed_or_locked_book_raises(
    bids: list[tuple[float, float]], asks: list[tuple[float, float]]
) -> None:
    book = make_book()
    book.apply(bids, asks)
    assert book.is_crossed()
    with pytest.raises(CrossedBook) as info:
        book.check_crossed()
    assert isinstance(info.value, BookError)
    assert info.value.symbol == "BTCUSDT"
    assert "BTCUSDT" in str(info.value)


def test_not_crossed_when_one_tick_apart_or_one_sided() -> None:
    book = make_book()
    book.apply(bids=[(100.99, 1.0)], asks=[])
    assert not book.is_crossed()
    book.check_crossed()
    one_sided = OrderBook("X")
    one_sided.replace(bids=[(5.0, 1.0)], asks=[])
    assert not one_sided.is_crossed()
    one_sided.check_crossed()


# -- property: OrderBook equals a naive reference book -----------------------------------------

PRICES = [round(100.0 + 0.5 * i, 1) for i in range(-8, 9)]  # a small grid: many collisions
QTYS = [0.0, 0.0, 0.5, 1.0, 2.25, 7.0]  # 0 (removal) drawn often

level_update = st.tuples(
    st.sampled_from(["bid", "ask"]), st.sampled_from(PRICES), st.sampled_from(QTYS)
)


class NaiveBook:
    """Plain dicts, sorted only when asked: slow, obviously right."""

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}

    def set(self, side: str, price: float, qty: float) -> None:
        levels = self.bids if side == "bid" else self.asks
        if qty == 0:
            levels.pop(price, None)
        else:
            levels[price] = qty

    def top(
        self, n: int
    ) -> tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]:
        bids = sorted(self.bids.items(), key=lambda kv: kv[0], reverse=True)[:n]
        asks = sorted(self.asks.items(), key=lambda kv: kv[0])[:n]
        return tuple(bids), tuple(asks)


@settings(max_examples=300, deadline=None)
@given(
    # an image has one quantity per price (no duplicates); updates may repeat a price
    initial_bids=st.dictionaries(st.sampled_from(PRICES), st.sampled_from(QTYS), max_size=10),
    initial_asks=st.dictionaries(st.sampled_from(PRICES), st.sampled_from(QTYS), max_size=10),
    batches=st.lists(st.lists(level_update, max_size=8), max_size=25),
    n=st.integers(min_value=1, max_value=20),
)
def test_matches_naive_reference(
    initial_bids: dict[float, float],
    initial_asks: dict[float, float],
    batches: list[list[tuple[str, float, float]]],
    n: int,
) -> None:
    book = OrderBook("X")
    ref = NaiveBook()
    for price, qty in initial_bids.items():
        ref.set("bid", price, qty)
    for price, qty in initial_asks.items():
        ref.set("ask", price, qty)
    book.replace(bids=list(initial_bids.items()), asks=list(initial_asks.items()), update_id=1)
    check_same(book, ref, n)
    for batch in batches:
        for side, price, qty in batch:
            ref.set(side, price, qty)
        book.apply(
            bids=[(p, q) for s, p, q in batch if s == "bid"],
            asks=[(p, q) for s, p, q in batch if s == "ask"],
        )
        check_same(book, ref, n)


def check_same(book: OrderBook, ref: NaiveBook, n: int) -> None:
    assert book.top(n) == ref.top(n)
    assert book.top(len(PRICES)) == ref.top(len(PRICES))
    assert book.levels() == (ref.bids, ref.asks)
    assert book.best_bid() == (max(ref.bids.items()) if ref.bids else None)
    assert book.best_ask() == (min(ref.asks.items()) if ref.asks else None)
    assert len(book) == len(ref.bids) + len(ref.asks)
    # the internal sorted price lists: ascending, no duplicates, exactly the dict's keys
    assert book._bid_prices == sorted(ref.bids)
    assert book._ask_prices == sorted(ref.asks)
    crossed = bool(ref.bids and ref.asks and max(ref.bids) >= min(ref.asks))
    assert book.is_crossed() is crossed


def test_trim_keeps_the_best_levels_a_side() -> None:
    book = OrderBook("X")
    book.replace([(99.0, 1.0), (98.0, 2.0), (97.0, 3.0)], [(101.0, 1.0), (102.0, 2.0), (103.0, 3.0)], 7)
    book.trim(2)
    assert book.top(5) == (((99.0, 1.0), (98.0, 2.0)), ((101.0, 1.0), (102.0, 2.0)))
    assert book.levels() == ({99.0: 1.0, 98.0: 2.0}, {101.0: 1.0, 102.0: 2.0})
    book.trim(5)  # nothing beyond: nothing changes
    assert len(book) == 4


def test_outside_top_tells_a_deep_change_from_one_within_the_top() -> None:
    book = OrderBook("X")
    book.replace([(100.0 - i, 1.0) for i in range(5)], [(101.0 + i, 1.0) for i in range(5)], 1)
    book.apply([(95.5, 2.0)], [(105.5, 0.0)], 2)  # deeper than the best 3, and an absent level
    assert book.outside_top(3, ((95.5, 2.0),), ((105.5, 0.0),))
    book.apply([(98.0, 0.0)], (), 3)  # the 3rd best bid goes: 97 moves into the top 3
    assert not book.outside_top(3, ((98.0, 0.0),), ())
    book.apply((), [(102.5, 1.0)], 4)  # a new ask inside the top 3
    assert not book.outside_top(3, (), ((102.5, 1.0),))
    book.apply((), [(102.5, 7.0)], 5)  # the 3rd best ask's size changes
    assert not book.outside_top(3, (), ((102.5, 7.0),))
    book.apply((), [(103.0, 7.0)], 6)  # now the 4th: outside
    assert book.outside_top(3, (), ((103.0, 7.0),))
    assert not book.outside_top(30, ((1.0, 1.0),), ())  # a side shorter than n: all of it shows


_prices = st.integers(min_value=1, max_value=60).map(float)
_sizes = st.sampled_from([0.0, 1.0, 2.0, 3.5])


@settings(max_examples=300, deadline=None)
@given(
    bids=st.dictionaries(st.integers(1, 30).map(float), st.sampled_from([1.0, 2.0]), max_size=25),
    asks=st.dictionaries(st.integers(31, 60).map(float), st.sampled_from([1.0, 2.0]), max_size=25),
    change=st.lists(st.tuples(_prices, _sizes), max_size=4),
    n=st.integers(1, 8),
)
def test_outside_top_never_hides_a_change_of_the_top(
    bids: dict[float, float], asks: dict[float, float], change: list[tuple[float, float]], n: int
) -> None:
    book = OrderBook("X")
    book.replace(bids.items(), asks.items(), 1)
    before = book.top(n)
    d_bids = tuple((p, q) for p, q in change if p <= 30)
    d_asks = tuple((p, q) for p, q in change if p > 30)
    book.apply(d_bids, d_asks, 2)
    if book.outside_top(n, d_bids, d_asks):
        assert book.top(n) == before


@settings(max_examples=300, deadline=None)
@given(
    initial=st.lists(level_update, max_size=20),
    steps=st.lists(
        st.one_of(
            st.lists(level_update, max_size=8),  # a diff
            st.integers(min_value=0, max_value=10),  # a venue's window: trim(depth)
        ),
        max_size=25,
    ),
    n=st.integers(min_value=1, max_value=12),
    as_generators=st.booleans(),
)
def test_top_kept_between_diffs_is_always_the_book_top(
    initial: list[tuple[str, float, float]],
    steps: list[list[tuple[str, float, float]] | int],
    n: int,
    as_generators: bool,
) -> None:
    """top(n) asked after every change (as the pipeline does) equals the naive book's top,
    whatever changed: prices at, above or below the nth level, removals, thin sides, trims."""
    book = OrderBook("X")
    ref = NaiveBook()
    for side, price, qty in initial:
        ref.set(side, price, qty)
    book.replace(list(ref.bids.items()), list(ref.asks.items()), 1)
    assert book.top(n) == ref.top(n)
    for step in steps:
        if isinstance(step, int):
            book.trim(step)
            ref.bids = dict(ref.top(step)[0])
            ref.asks = dict(ref.top(step)[1])
        else:
            for side, price, qty in step:
                ref.set(side, price, qty)
            bids = [(p, q) for s, p, q in step if s == "bid"]
            asks = [(p, q) for s, p, q in step if s == "ask"]
            if as_generators:
                book.apply((level for level in bids), (level for level in asks))
            else:
                book.apply(tuple(bids), tuple(asks))
        assert book.top(n) == ref.top(n)
        assert book.levels() == (ref.bids, ref.asks)
    assert book.top(n + 1) == ref.top(n + 1)  # another n: computed afresh
    assert book.top(n) == ref.top(n)
