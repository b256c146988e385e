"""Pure book metrics, against values computed by hand."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.events import Levels
from market.metrics import (
    DEFAULT_IMBALANCE_DEPTH,
    TopOfBook,
    cumulative_depth,
    imbalance,
    imbalances,
    microprice,
    mid_price,
    spread,
    spread_bps,
    top_of_book,
)

# best first, as OrderBook.top returns them; binary fractions so sums are exact
BIDS = ((100.0, 2.0), (99.5, 1.0), (99.0, 4.0), (98.5, 0.5), (98.0, 8.0), (97.5, 16.0))
ASKS = ((100.5, 1.0), (101.0, 3.0), (101.5, 0.25), (102.0, 2.0), (102.5, 4.0), (103.0, 32.0))


def test_mid_price() -> None:
    assert mid_price(100.0, 100.5) == 100.25
    assert mid_price(None, 100.5) is None
    assert mid_price(100.0, None) is None
    assert mid_price(None, None) is None


def test_spread() -> None:
    assert spread(100.0, 100.5) == 0.5
    assert spread(None, 1.0) is None
    assert spread(1.0, None) is None


def test_spread_bps() -> None:
    # 0.5 / 100.25 * 10_000 = 49.875311…
    assert spread_bps(100.0, 100.5) == pytest.approx(49.87531172069825, rel=1e-12)
    assert spread_bps(99.0, 101.0) == pytest.approx(200.0, rel=1e-12)  # 2 / 100 = 2 %
    assert spread_bps(None, 100.0) is None
    assert spread_bps(100.0, None) is None
    assert spread_bps(0.0, 0.0) is None  # no mid to divide by
    assert spread_bps(-2.0, 1.0) is None


def test_imbalance_over_depth_levels() -> None:
    # depth 1: (2 - 1) / 3
    assert imbalance(BIDS, ASKS, 1) == pytest.approx(1 / 3, rel=1e-12)
    # depth 3: bids 2+1+4 = 7, asks 1+3+0.25 = 4.25 → 2.75 / 11.25
    assert imbalance(BIDS, ASKS, 3) == pytest.approx(2.75 / 11.25, rel=1e-12)
    # depth 5: bids 15.5, asks 10.25 → 5.25 / 25.75
    assert imbalance(BIDS, ASKS, 5) == pytest.approx(5.25 / 25.75, rel=1e-12)
    assert imbalance(BIDS, ASKS) == imbalance(BIDS, ASKS, DEFAULT_IMBALANCE_DEPTH)
    assert DEFAULT_IMBALANCE_DEPTH == 5
    # depth 6: bids 31.5, asks 42.25 → -10.75 / 73.75
    assert imbalance(BIDS, ASKS, 6) == pytest.approx(-10.75 / 73.75, rel=1e-12)
    # deeper than the book: every level counts, same as depth 6
    assert imbalance(BIDS, ASKS, 50) == imbalance(BIDS, ASKS, 6)


def test_imbalance_is_zero_safe() -> None:
    assert imbalance((), (), 5) is None  # no volume at all
    assert imbalance(BIDS, (), 5) == 1.0  # only bids
    assert imbalance((), ASKS, 5) == -1.0  # only asks
    assert imbalance(BIDS, ASKS, 0) is None
    assert imbalance(BIDS, ASKS, -1) is None
    assert imbalance(((1.0, 0.0),), ((2.0, 0.0),), 5) is None  # zero quantities only
    assert imbalance(((1.0, 3.0),), ((2.0, 3.0),), 1) == 0.0


def test_microprice() -> None:
    # (bp * aq + ap * bq) / (bq + aq) = (100 * 1 + 100.5 * 2) / 3 = 301 / 3
    assert microprice((100.0, 2.0), (100.5, 1.0)) == pytest.approx(301 / 3, rel=1e-12)
    # more resting on the ask: leans toward the bid
    assert microprice((100.0, 1.0), (100.5, 3.0)) == pytest.approx(100.125, rel=1e-12)
    assert microprice((100.0, 1.0), (100.5, 1.0)) == 100.25
    assert microprice((100.0, 0.0), (100.5, 0.0)) == 100.25  # no size: the plain mid
    assert microprice(None, (100.5, 1.0)) is None
    assert microprice((100.0, 1.0), None) is None


def test_top_of_book() -> None:
    tob = top_of_book(BIDS, ASKS)
    assert tob == TopOfBook(
        best_bid=100.0,
        best_ask=100.5,
        bid_qty=2.0,
        ask_qty=1.0,
        mid=100.25,
        spread=0.5,
        spread_bps=pytest.approx(49.87531172069825, rel=1e-12),
    )


def test_top_of_book_one_sided_and_empty() -> None:
    assert top_of_book(BIDS, ()) == TopOfBook(100.0, None, 2.0, None, None, None, None)
    assert top_of_book((), ASKS) == TopOfBook(None, 100.5, None, 1.0, None, None, None)
    assert top_of_book((), ()) == TopOfBook(None, None, None, None, None, None, None)


def test_cumulative_depth() -> None:
    assert cumulative_depth(BIDS) == [2.0, 3.0, 7.0, 7.5, 15.5, 31.5]
    assert cumulative_depth(ASKS) == [1.0, 4.0, 4.25, 6.25, 10.25, 42.25]
    assert cumulative_depth(()) == []


def test_imbalances_by_hand() -> None:
    # depths 1, 3, 5, 6 of BIDS/ASKS, as in test_imbalance_over_depth_levels
    assert imbalances(BIDS, ASKS, (1, 3, 5, 6, 20)) == pytest.approx(
        (1 / 3, 2.75 / 11.25, 5.25 / 25.75, -10.75 / 73.75, -10.75 / 73.75), rel=1e-12
    )
    assert imbalances((), (), (1, 5)) == (None, None)
    assert imbalances(BIDS, (), (1, 5)) == (1.0, 1.0)
    assert imbalances((), ASKS, (2,)) == (-1.0,)


def test_imbalances_zero_depth_and_any_order_like_imbalance() -> None:
    assert imbalances(BIDS, ASKS, (0, 5)) == (None, imbalance(BIDS, ASKS, 5))
    assert imbalances(BIDS, ASKS, (5, 1)) == (imbalance(BIDS, ASKS, 5), imbalance(BIDS, ASKS, 1))
    assert imbalances(BIDS, ASKS, ()) == ()


levels_strategy = st.lists(
    st.tuples(st.floats(0.01, 1e6), st.floats(0, 1e6, allow_subnormal=False)), max_size=30
).map(tuple)


@settings(max_examples=300, deadline=None)
@given(
    bids=levels_strategy,
    asks=levels_strategy,
    depths=st.lists(st.integers(1, 40), min_size=1, max_size=6, unique=True).map(
        lambda d: tuple(sorted(d))
    ),
)
def test_imbalances_equals_imbalance_at_each_depth(
    bids: Levels, asks: Levels, depths: tuple[int, ...]
) -> None:
    assert imbalances(bids, asks, depths) == tuple(imbalance(bids, asks, n) for n in depths)
