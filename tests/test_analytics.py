"""Trade-flow analytics: exact, hand-computed values and the boundaries."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.analytics import (
    MINUTE_MS,
    Candle,
    CandleBuilder,
    SessionStats,
    WhaleAlert,
    aggregate_candles,
    candle_vwap,
    candles,
    cvd,
    cvd_series,
    depth_delta,
    is_whale,
    realized_volatility,
    rolling_vwap,
    volatility_spread,
    vwap,
)
from market.events import Trade


def trade(price: float, qty: float, side: str = "buy", ts: int = 0) -> Trade:
    return Trade("binance", "BTCUSDT", price, qty, side, ts)  # type: ignore[arg-type]


def test_vwap_weights_by_size() -> None:
    # (100*1 + 102*3) / 4 = 406 / 4 = 101.5
    assert vwap([trade(100, 1), trade(102, 3)]) == 101.5


def test_vwap_without_volume_is_none() -> None:
    assert vwap([]) is None
    assert vwap([trade(100, 0)]) is None


def test_rolling_vwap_keeps_the_window_inclusive() -> None:
    trades = [trade(90, 10, ts=0), trade(100, 1, ts=1_000), trade(110, 1, ts=6_000)]
    # window 5 s from the last trade (6 s): trades at ts >= 1 s → (100 + 110) / 2
    assert rolling_vwap(trades, 5_000) == 105.0
    assert rolling_vwap(trades, 4_999) == 110.0
    assert rolling_vwap([], 5_000) is None


def test_cvd_signs_by_taker_side() -> None:
    trades = [trade(1, 2.0, "buy"), trade(1, 0.5, "sell"), trade(1, 1.25, "sell")]
    assert cvd(trades) == 0.25
    assert cvd_series(trades) == [2.0, 1.5, 0.25]
    assert cvd([]) == 0


def test_depth_delta_over_top_levels() -> None:
    bids = tuple((100.0 - i, 1.0) for i in range(25))  # 25 levels of 1
    asks = tuple((101.0 + i, 0.5) for i in range(3))
    assert depth_delta(bids, asks) == 20 - 1.5  # only the best 20 bids count
    assert depth_delta(bids, asks, levels=2) == 2 - 1.0
    assert depth_delta((), ()) == 0


def test_volatility_spread_and_zero_division_safety() -> None:
    assert volatility_spread([100, 110, 105]) == pytest.approx(10.0)
    assert volatility_spread([]) == 0.0
    assert volatility_spread([0.0, 5.0]) == 0.0  # low 0: 0, not infinity
    assert volatility_spread([-1.0, 5.0]) == 0.0
    assert volatility_spread([42.0]) == 0.0


def test_realized_volatility_from_log_returns() -> None:
    prices = [100.0, 110.0, 99.0]
    expected = math.sqrt(math.log(1.1) ** 2 + math.log(0.9) ** 2) * 100
    assert realized_volatility(prices) == pytest.approx(expected)
    assert realized_volatility([100.0]) == 0.0
    assert realized_volatility([]) == 0.0


def test_whale_threshold_is_inclusive() -> None:
    assert is_whale(trade(50_000, 2), 100_000)  # exactly at the threshold alerts
    assert not is_whale(trade(50_000, 1.99998), 100_000)  # 99 999 just below does not
    assert not is_whale(trade(50_000, 100), 0)  # a threshold of 0 disables alerts


def test_candles_group_by_trade_time_and_fill_gaps_with_the_previous_close() -> None:
    trades = [
        trade(100, 1, ts=5_000),
        trade(103, 2, ts=30_000),
        trade(99, 1, ts=59_999),
        trade(101, 4, ts=3 * MINUTE_MS + 1),  # minutes 1 and 2 have no trade
    ]
    assert [c.as_list() for c in candles(trades)] == [
        [0, 100, 103, 99, 99, 4, 3],
        [60_000, 99, 99, 99, 99, 0.0, 0],
        [120_000, 99, 99, 99, 99, 0.0, 0],
        [180_000, 101, 101, 101, 101, 4, 1],
    ]


def test_candles_at_other_timeframes() -> None:
    trades = [trade(10, 1, ts=0), trade(11, 1, ts=999), trade(12, 1, ts=1_000)]
    assert [c.as_list() for c in candles(trades, 1_000)] == [[0, 10, 11, 10, 11, 2, 2], [1_000, 12, 12, 12, 12, 1, 1]]
    assert [c.as_list() for c in candles(trades, 5 * MINUTE_MS)] == [[0, 10, 12, 10, 12, 3, 3]]


def test_a_late_trade_updates_its_own_candle() -> None:
    builder = CandleBuilder(MINUTE_MS)
    builder.add(100, 1, 10_000)
    builder.add(105, 1, 70_000)
    builder.add(90, 2, 20_000)  # arrives late, belongs to the first minute
    assert [c.as_list() for c in builder.candles()] == [[0, 100, 100, 90, 90, 3, 2], [60_000, 105, 105, 105, 105, 1, 1]]


def test_candle_builder_is_bounded() -> None:
    builder = CandleBuilder(1_000, maxlen=5)
    for i in range(100):
        builder.add(100 + i, 1, i * 1_000)
    kept = builder.candles()
    assert len(kept) == 5
    assert [c.open_ms for c in kept] == [95_000, 96_000, 97_000, 98_000, 99_000]
    assert [c.close for c in builder.candles(last=2)] == [198, 199]


def test_session_stats_match_the_pure_functions() -> None:
    trades = [
        trade(100, 1, "buy", 1_000),
        trade(102, 3, "sell", 2_000),
        trade(99, 2, "buy", 61_000),
        trade(50_000, 2, "sell", 62_000),
    ]
    stats = SessionStats(whale_threshold=100_000)
    alerts = [stats.add(t) for t in trades]
    assert stats.trades == 4
    assert stats.vwap == vwap(trades)
    assert stats.cvd == cvd(trades) == 1 - 3 + 2 - 2
    assert stats.volatility_spread == volatility_spread(t.price for t in trades)
    assert [c.as_list() for c in stats.minute.candles()] == [c.as_list() for c in candles(trades)]
    assert alerts[:3] == [None, None, None]
    assert alerts[3] is not None and alerts[3].notional == 100_000 and alerts[3].side == "sell"
    assert list(stats.alerts) == [alerts[3]]


def test_session_stats_empty() -> None:
    stats = SessionStats()
    assert stats.vwap is None
    assert stats.cvd == 0.0
    assert stats.volatility_spread == 0.0
    assert stats.minute.candles() == []


def minute(i: int, o: float, h: float, lo: float, c: float, v: float, n: int) -> Candle:
    return Candle(i * MINUTE_MS, o, h, lo, c, v, n)


def test_aggregate_candles_into_five_minutes() -> None:
    ones = [
        minute(3, 100, 104, 99, 103, 2.0, 2),  # the session started at minute 3
        minute(4, 103, 103, 101, 102, 1.0, 1),
        minute(5, 102, 108, 102, 107, 3.0, 4),
        minute(6, 107, 107, 107, 107, 0.0, 0),  # no trade: flat at the previous close
        minute(9, 107, 109, 95, 96, 0.5, 1),  # minutes 7 and 8 missing: the same bucket
        minute(10, 96, 97, 96, 97, 1.5, 2),  # exactly on a boundary: a new period
    ]
    assert [c.as_list() for c in aggregate_candles(ones, 5 * MINUTE_MS)] == [
        [0, 100, 104, 99, 102, 3.0, 3],
        [300_000, 102, 109, 95, 96, 3.5, 5],
        [600_000, 96, 97, 96, 97, 1.5, 2],
    ]


def test_aggregate_candles_fills_an_empty_period_with_the_previous_close() -> None:
    ones = [minute(14, 50, 51, 49, 50.5, 1.0, 1), minute(47, 60, 61, 59, 60, 2.0, 3)]
    fifteen = aggregate_candles(ones, 15 * MINUTE_MS)
    assert [c.as_list() for c in fifteen] == [
        [0, 50, 51, 49, 50.5, 1.0, 1],
        [900_000, 50.5, 50.5, 50.5, 50.5, 0.0, 0],  # 15-29: nothing
        [1_800_000, 50.5, 50.5, 50.5, 50.5, 0.0, 0],  # 30-44: nothing
        [2_700_000, 60, 61, 59, 60, 2.0, 3],
    ]


def test_aggregate_candles_matches_candles_built_from_the_trades() -> None:
    trades = [trade(100 + (i * 7) % 11, 0.5 + i % 3, "buy", i * 13_000) for i in range(80)]
    ones = candles(trades, MINUTE_MS)
    for interval in (MINUTE_MS, 5 * MINUTE_MS, 15 * MINUTE_MS):
        assert aggregate_candles(ones, interval) == candles(trades, interval)


def test_aggregate_candles_boundaries() -> None:
    assert aggregate_candles([], 5 * MINUTE_MS) == []
    with pytest.raises(ValueError, match="positive"):
        aggregate_candles([], 0)
    with pytest.raises(ValueError, match="oldest first"):
        aggregate_candles([minute(5, 1, 1, 1, 1, 1, 1), minute(4, 1, 1, 1, 1, 1, 1)], MINUTE_MS * 5)


def test_candle_vwap_is_cumulative_at_the_typical_price() -> None:
    line = candle_vwap(
        [
            minute(0, 10, 10, 10, 10, 0.0, 0),  # no volume yet: no VWAP
            minute(1, 9, 12, 9, 9, 2.0, 2),  # typical (12 + 9 + 9) / 3 = 10
            minute(2, 9, 9, 9, 9, 0.0, 0),  # no volume: the line stays
            minute(3, 19, 22, 19, 19, 3.0, 1),  # typical 20 → (10*2 + 20*3) / 5 = 16
        ]
    )
    assert line == [None, 10.0, 10.0, 16.0]
    assert candle_vwap([]) == []


def test_candle_vwap_from_built_candles_equals_the_trades_vwap() -> None:
    trades = [
        Trade("x", "S", 100.0, 2.0, "buy", 1_000), Trade("x", "S", 110.0, 1.0, "sell", 30_000),
        Trade("x", "S", 90.0, 3.0, "buy", 61_000), Trade("x", "S", 95.0, 1.0, "buy", 200_000),
    ]  # fmt: skip
    built = candles(trades, MINUTE_MS)
    assert [c.notional for c in built] == [310.0, 270.0, 0.0, 95.0]
    line = candle_vwap(built)
    assert line == [
        pytest.approx(310.0 / 3.0), pytest.approx(580.0 / 6.0), pytest.approx(580.0 / 6.0),
        pytest.approx(vwap(trades)),
    ]  # fmt: skip
    assert candle_vwap(aggregate_candles(built, 5 * MINUTE_MS)) == [pytest.approx(vwap(trades))]


# -- property: the batched session figures equal one trade at a time, bit for bit -------------

_trades = st.lists(
    st.builds(
        Trade,
        exchange=st.just("binance"),
        symbol=st.just("BTCUSDT"),
        price=st.floats(min_value=0.01, max_value=1e6, allow_nan=False),
        qty=st.floats(min_value=0.0, max_value=50.0, allow_nan=False),
        side=st.sampled_from(["buy", "sell"]),
        ts_ms=st.integers(min_value=0, max_value=20 * MINUTE_MS),  # late trades and gaps
        backfill=st.booleans(),
    ),
    max_size=40,
)


def _figures(s: SessionStats) -> tuple[object, ...]:
    candles_ = [(*c.as_list(), c.notional) for c in s.minute.candles()]
    return (s.trades, s.sum_pq, s.sum_q, s.cvd, s.high, s.low, candles_, list(s.alerts))


@settings(max_examples=300, deadline=None)
@given(batches=st.lists(_trades, max_size=4), threshold=st.sampled_from([0.0, 1e3, 1e5]))
def test_session_add_all_equals_the_trade_by_trade_reference(
    batches: list[list[Trade]], threshold: float
) -> None:
    batched = SessionStats(threshold, symbol="BTC", candles_kept=5)
    one_by_one = SessionStats(threshold, symbol="BTC", candles_kept=5)
    ref = _ReferenceSession(threshold, symbol="BTC", candles_kept=5)
    for batch in batches:
        raised = batched.add_all(batch)
        counted = [t for t in batch if not t.backfill]
        ref_raised = [a for a in map(ref.add, counted) if a is not None]
        assert raised == ref_raised
        assert [a for a in map(one_by_one.add, counted) if a is not None] == ref_raised
    assert _figures(batched) == _figures(one_by_one) == _figures(ref)


class _ReferenceSession(SessionStats):
    """The figures as first written, one trade at a time (max/min calls, ``is_whale``)."""

    def add(self, trade: Trade) -> WhaleAlert | None:
        p, q = trade.price, trade.qty
        self.trades += 1
        self.sum_pq += p * q
        self.sum_q += q
        self.cvd += q if trade.side == "buy" else -q
        if p > self.high:
            self.high = p
        if p < self.low:
            self.low = p
        _reference_candle(self.minute, p, q, trade.ts_ms)
        if is_whale(trade, self.whale_threshold):
            alert = WhaleAlert(
                trade.ts_ms, trade.exchange, self.symbol or trade.symbol, trade.side, p, q, p * q
            )
            self.alerts.append(alert)
            return alert
        return None


def _reference_candle(builder: CandleBuilder, price: float, qty: float, ts_ms: int) -> None:
    start = ts_ms - ts_ms % builder.interval_ms
    rows = builder._rows
    merge = _reference_merge
    if rows and start < rows[-1][0]:
        for row in reversed(rows):
            if row[0] == start:
                merge(row, price, qty)
                return
            if row[0] < start:
                break
        return
    if rows and rows[-1][0] == start:
        merge(rows[-1], price, qty)
        return
    if rows:
        prev_close = rows[-1][4]
        t = rows[-1][0] + builder.interval_ms
        gaps = (start - t) // builder.interval_ms
        if rows.maxlen is not None:
            gaps = min(gaps, rows.maxlen)
            t = start - gaps * builder.interval_ms
        while t < start:
            rows.append([t, prev_close, prev_close, prev_close, prev_close, 0.0, 0, 0.0])
            t += builder.interval_ms
    rows.append([start, price, price, price, price, qty, 1, price * qty])


def _reference_merge(row: list[float], price: float, qty: float) -> None:
    row[2] = max(row[2], price)
    row[3] = min(row[3], price)
    row[4] = price
    row[5] += qty
    row[6] += 1
    row[7] += price * qty
