"""MarketStore: consistent immutable snapshots under a concurrent writer, bounded memory,
series throttling, resets, and ages computed from an injected clock."""

from __future__ import annotations

import dataclasses
import math
import threading
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.analytics import depth_delta
from market.events import FeedStatus, Levels, Side, Trade
from market.metrics import imbalances, top_of_book
from market.store import MarketStore
from market.views import IMBALANCE_DEPTHS, SERIES_COLUMNS, MarketView, StoreSnapshot, series_row

KEY = ("binance", "BTCUSDT")


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def book(i: int, depth: int = 20) -> tuple[Levels, Levels]:
    """Update ``i``: every level's quantity is ``i`` (so a torn copy would show), best first."""
    bids = tuple((1_000.0 + i - k, float(i)) for k in range(depth))
    asks = tuple((1_001.0 + i + k, float(i)) for k in range(depth))
    return bids, asks


def trade(n: int) -> Trade:
    side: Side = "buy" if n % 2 else "sell"
    return Trade("binance", "BTCUSDT", 100.0 + n, 0.5, side, n, str(n), float(n))


def view(store: MarketStore, key: tuple[str, str] = KEY) -> MarketView:
    return store.snapshot().markets[key]


# -- concurrency ------------------------------------------------------------------------------


def check_consistent(v: MarketView, series_points: int, trades_kept: int) -> None:
    """Everything one snapshot says about a market agrees with itself."""
    if v.update_id:
        i = v.update_id
        assert (v.bids, v.asks) == book(i)  # the levels belong to the update id they came with
        assert v.book_updates == i
        assert v.updated_at == float(i)
        assert v.synced
    prices = [p for p, _ in v.bids]
    assert prices == sorted(prices, reverse=True)
    assert [p for p, _ in v.asks] == sorted(p for p, _ in v.asks)
    times = [row[0] for row in v.series]
    assert times == sorted(times)
    assert len(v.series) <= series_points
    assert all(len(row) == len(SERIES_COLUMNS) for row in v.series)
    if v.series and v.updated_at is not None:
        assert times[-1] <= v.updated_at
    assert len(v.trades) <= trades_kept
    ids = [int(t.trade_id) for t in v.trades]
    assert ids == list(range(v.trades_seen - len(ids) + 1, v.trades_seen + 1))


def test_concurrent_writer_and_readers_see_consistent_snapshots() -> None:
    series_points, trades_kept, updates = 300, 100, 4_000
    store = MarketStore(series_points=series_points, trades_kept=trades_kept, series_interval=0.0)
    errors: list[BaseException] = []
    done = threading.Event()
    snapshots_taken = [0] * 4

    def writer() -> None:
        try:
            n = 0
            for i in range(1, updates + 1):
                bids, asks = book(i)
                store.update_book("binance", "BTCUSDT", bids, asks, i, float(i))
                if i % 4 == 0:  # batches of 3 trades
                    store.add_trades("binance", "BTCUSDT", [trade(n + k) for k in (1, 2, 3)])
                    n += 3
                if i % 500 == 0:
                    store.set_status(FeedStatus("binance", messages=i, last_message_at=float(i)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    def reader(slot: int) -> None:
        try:
            last_version = -1
            while not done.is_set() or snapshots_taken[slot] == 0:
                snap = store.snapshot()
                assert snap.version >= last_version
                last_version = snap.version
                v = snap.markets.get(KEY)
                if v is not None:
                    check_consistent(v, series_points, trades_kept)
                status = snap.statuses.get("binance")
                if status is not None:
                    assert status.messages % 500 == 0
                snapshots_taken[slot] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert all(n > 0 for n in snapshots_taken)

    v = view(store)
    check_consistent(v, series_points, trades_kept)
    assert v.update_id == v.book_updates == updates
    assert len(v.series) == series_points
    kept = range(updates - series_points + 1, updates + 1)
    assert [row[0] for row in v.series] == [float(t) for t in kept]
    assert v.trades_seen == 3 * (updates // 4)
    assert len(v.trades) == trades_kept


# -- immutability -----------------------------------------------------------------------------


def test_snapshots_are_immutable_copies() -> None:
    store = MarketStore(series_interval=0.0)
    bids, asks = book(1)
    store.update_book("binance", "BTCUSDT", bids, asks, 1, 1.0)
    store.add_trades("binance", "BTCUSDT", [trade(1)])
    store.set_status(FeedStatus("binance", state="live"))
    snap = store.snapshot()
    v = snap.markets[KEY]

    assert isinstance(snap.markets, MappingProxyType)
    assert isinstance(snap.statuses, MappingProxyType)
    with pytest.raises(TypeError):
        snap.markets[("binance", "ETHUSDT")] = v  # type: ignore[index]
    with pytest.raises(TypeError):
        del snap.statuses["binance"]  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.synced = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.version = 0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.statuses["binance"].state = "stopped"  # type: ignore[misc]
    for field in (v.bids, v.asks, v.series, v.trades, v.series[0], v.bids[0]):
        assert isinstance(field, tuple)
    with pytest.raises(AttributeError, match="immutable"):  # a frozen msgspec Struct
        v.trades[0].price = 0.0  # type: ignore[misc]

    # later writes do not show through an earlier snapshot
    bids2, asks2 = book(2)
    store.update_book("binance", "BTCUSDT", bids2, asks2, 2, 2.0)
    store.add_trades("binance", "BTCUSDT", [trade(2)])
    store.mark_unsynced("binance", "BTCUSDT", "gap")
    store.set_status(FeedStatus("binance", state="reconnecting"))
    assert (v.bids, v.update_id, v.synced, len(v.series), len(v.trades)) == (bids, 1, True, 1, 1)
    assert snap.statuses["binance"].state == "live"
    assert list(snap.markets) == [KEY]
    assert store.snapshot().version > snap.version


# -- bounded memory ---------------------------------------------------------------------------


def test_series_and_trades_are_bounded() -> None:
    store = MarketStore(series_points=50, trades_kept=30, series_interval=0.0)
    for i in range(1, 1_001):
        bids, asks = book(i)
        store.update_book("binance", "BTCUSDT", bids, asks, i, float(i))
        store.add_trades("binance", "BTCUSDT", [trade(i)])
    v = view(store)
    assert [row[0] for row in v.series] == [float(t) for t in range(951, 1_001)]
    assert [t.trade_id for t in v.trades] == [str(n) for n in range(971, 1_001)]
    assert (v.trades_seen, v.book_updates) == (1_000, 1_000)
    assert v.last_trade == trade(1_000)
    # tails on request
    tail = store.snapshot(max_series_points=3, max_trades=2).markets[KEY]
    assert [row[0] for row in tail.series] == [998.0, 999.0, 1_000.0]
    assert [t.trade_id for t in tail.trades] == ["999", "1000"]
    assert store.snapshot(series=False).markets[KEY].series == ()
    assert store.snapshot(max_series_points=0, max_trades=0).markets[KEY].trades == ()


def test_snapshot_limits_the_copied_markets() -> None:
    store = MarketStore(series_interval=0.0)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        for i in (1, 2):
            bids, asks = book(i)
            store.update_book("binance", symbol, bids, asks, i, float(i))
            store.add_trades("binance", symbol, [trade(i)])
    snap = store.snapshot([("binance", "ETHUSDT")])
    btc, eth = snap.markets[KEY], snap.markets[("binance", "ETHUSDT")]
    assert (len(eth.series), len(eth.trades)) == (2, 2)
    assert (btc.series, [t.trade_id for t in btc.trades]) == ((), ["2"])  # the book, the last trade
    assert btc.bids == book(2)[0]


# -- series -----------------------------------------------------------------------------------


def test_series_points_are_throttled_by_series_interval() -> None:
    store = MarketStore(series_interval=0.25)
    bids, asks = ((99.0, 1.0),), ((101.0, 3.0),)
    for t in (0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.875, 0.9375):
        store.update_book("binance", "BTCUSDT", bids, asks, 1, t)
    v = view(store)
    assert [row[0] for row in v.series] == [0.0, 0.25, 0.5, 0.875]
    assert v.book_updates == 8  # every update is published; only the series is throttled
    row = dict(zip(SERIES_COLUMNS, v.series[0]))
    assert row == {
        "t": 0.0, "best_bid": 99.0, "best_ask": 101.0, "mid": 100.0, "spread": 2.0,
        "spread_bps": 200.0, "imbalance_1": -0.5, "imbalance_3": -0.5, "imbalance_5": -0.5,
        "imbalance_10": -0.5, "imbalance_20": -0.5, "depth_delta": -2.0, "cvd": 0.0,
    }


def _trade(price: float, qty: float, side: str, ts_ms: int, backfill: bool = False) -> Trade:
    return Trade("binance", "BTCUSDT", price, qty, side, ts_ms, str(ts_ms), 1.0, backfill)  # type: ignore[arg-type]


def test_session_figures_follow_every_trade_and_the_series_carries_cvd() -> None:
    store = MarketStore(series_interval=0.0, whale_notional=1_000.0)
    store.add_trades("binance", "BTCUSDT", [
        _trade(100.0, 99.0, "buy", 60_000, backfill=True),  # history: shown, not counted
        _trade(100.0, 2.0, "buy", 60_500),
        _trade(110.0, 1.0, "sell", 61_000),
        _trade(90.0, 10.0, "buy", 125_000),  # 900 notional: below the threshold
        _trade(100.0, 10.0, "sell", 126_000),  # exactly 1,000: an alert
    ])
    store.update_book("binance", "BTCUSDT", ((99.0, 1.0),), ((101.0, 3.0),), 1, 2.0)
    v = view(store)
    s = v.session
    assert (s.trades, v.trades_seen) == (4, 5)
    assert s.vwap == pytest.approx((200.0 + 110.0 + 900.0 + 1000.0) / 23.0)
    assert (s.cvd, s.high, s.low) == (2.0 - 1.0 + 10.0 - 10.0, 110.0, 90.0)
    assert s.volatility_spread == pytest.approx((110.0 - 90.0) / 90.0 * 100.0)
    assert [c.as_list() for c in s.candles] == [
        [60_000, 100.0, 110.0, 100.0, 110.0, 3.0, 2],
        [120_000, 90.0, 100.0, 90.0, 100.0, 20.0, 2],
    ]
    assert [(a.side, a.price, a.qty, a.notional) for a in s.alerts] == [("sell", 100.0, 10.0, 1000.0)]
    assert store.snapshot().alerts == s.alerts
    assert dict(zip(SERIES_COLUMNS, v.series[-1]))["cvd"] == 1.0
    store.reset_session("binance", "BTCUSDT")
    s = view(store).session
    assert (s.trades, s.cvd, s.vwap, s.candles, s.alerts) == (0, 0.0, None, (), ())
    assert store.snapshot().alerts != ()  # the alerts history outlives a session reset


def test_whale_threshold_per_symbol_overrides_the_default() -> None:
    store = MarketStore(whale_notional=1_000.0)
    store.set_whale_threshold(5_000.0, "BTCUSDT")
    store.add_trades("binance", "BTCUSDT", [_trade(100.0, 49.99, "buy", 1), _trade(100.0, 50.0, "buy", 2)])
    store.add_trades("binance", "ETHUSDT", [Trade("binance", "ETHUSDT", 10.0, 100.0, "sell", 3)])
    assert [(a.symbol, a.notional) for a in store.snapshot().alerts] == [("BTCUSDT", 5000.0), ("ETHUSDT", 1000.0)]
    assert (store.whale_threshold("BTCUSDT"), store.whale_threshold("SOLUSDT")) == (5000.0, 1000.0)
    store.set_whale_threshold(0.0)  # off for every symbol without its own
    store.add_trades("binance", "ETHUSDT", [Trade("binance", "ETHUSDT", 10.0, 1e6, "sell", 4)])
    assert len(store.snapshot().alerts) == 2
    with pytest.raises(ValueError, match="whale threshold"):
        store.set_whale_threshold(float("nan"))
    assert store.whale_default == 0.0
    store.clear_whale_threshold("BTCUSDT")  # back to the default: off
    store.add_trades("binance", "BTCUSDT", [_trade(100.0, 1e4, "buy", 5)])
    assert (store.whale_threshold("BTCUSDT"), len(store.snapshot().alerts)) == (0.0, 2)


def test_series_row_of_a_one_sided_book_has_nan_where_unknown() -> None:
    store = MarketStore(series_interval=0.0)
    store.update_book("binance", "BTCUSDT", ((99.0, 2.0),), (), 1, 5.0)
    row = dict(zip(SERIES_COLUMNS, view(store).series[0]))
    assert (row["t"], row["best_bid"], row["imbalance_1"]) == (5.0, 99.0, 1.0)
    assert all(math.isnan(row[c]) for c in ("best_ask", "mid", "spread", "spread_bps"))


# -- resets -----------------------------------------------------------------------------------


def test_mark_unsynced_counts_resyncs_only_when_asked() -> None:
    store = MarketStore()
    bids, asks = book(3)
    store.update_book("binance", "BTCUSDT", bids, asks, 3, 3.0)
    store.mark_unsynced("binance", "BTCUSDT", "resyncing: gap")
    store.mark_unsynced("binance", "BTCUSDT", "reconnecting", resync=False)
    v = view(store)
    assert (v.synced, v.detail, v.resyncs) == (False, "reconnecting", 1)
    assert (v.bids, v.update_id) == (bids, 3)  # the last book stays, marked unsynced
    store.update_book("binance", "BTCUSDT", bids, asks, 4, 4.0)
    assert (view(store).synced, view(store).detail, view(store).resyncs) == (True, "", 1)


def test_reset_market_clears_and_relabels_the_source() -> None:
    store = MarketStore(series_interval=10.0)
    bids, asks = book(1)
    store.update_book("binance", "BTCUSDT", bids, asks, 7, 100.0)
    store.add_trades("binance", "BTCUSDT", [trade(1), trade(2)])
    assert view(store).source == "live"
    store.reset_market("binance", "BTCUSDT", "simulated", "blocked: simulated data")
    v = view(store)
    assert v.source == "simulated"
    assert (v.bids, v.asks, v.update_id, v.updated_at, v.synced) == ((), (), 0, None, False)
    assert (v.detail, v.series, v.trades, v.trades_seen, v.last_trade) == (
        "blocked: simulated data", (), (), 0, None
    )
    # the series throttle starts over: a point 1 s after the last one (< 10 s) is kept
    store.update_book("binance", "BTCUSDT", bids, asks, 8, 101.0)
    v = view(store)
    assert [row[0] for row in v.series] == [101.0]
    assert (v.source, v.synced, v.update_id) == ("simulated", True, 8)
    store.reset_market("binance", "BTCUSDT", "live", "connecting")
    assert (view(store).source, view(store).detail) == ("live", "connecting")


def test_remove_market() -> None:
    store = MarketStore()
    store.reset_market("binance", "BTCUSDT", "live", "waiting")
    store.reset_market("binance", "ETHUSDT", "live", "waiting")
    store.remove_market("binance", "BTCUSDT")
    store.remove_market("binance", "NOPE")  # absent: nothing happens
    assert list(store.snapshot().markets) == [("binance", "ETHUSDT")]


# -- clock ------------------------------------------------------------------------------------


def test_last_message_age_comes_from_the_injected_clock() -> None:
    clock = Clock(1_000.0)
    store = MarketStore(clock=clock)
    store.set_status(FeedStatus("binance", state="live", last_message_at=990.0))
    snap = store.snapshot()
    assert snap.taken_at == 1_000.0
    assert age(snap, "binance") == 10.0
    clock.now = 1_002.5
    assert age(store.snapshot(), "binance") == 12.5
    # a newer status without a message time keeps the last known one
    store.set_status(FeedStatus("binance", state="reconnecting"))
    assert age(store.snapshot(), "binance") == 12.5
    assert store.snapshot().statuses["binance"].state == "reconnecting"
    # a message time in the clock's future never gives a negative age
    store.set_status(FeedStatus("binance", last_message_at=1_010.0))
    assert age(store.snapshot(), "binance") == 0.0
    # a feed that never had a message keeps what it said
    store.set_status(FeedStatus("bybit", state="connecting"))
    assert age(store.snapshot(), "bybit") is None


def test_feed_status_ages_are_computed_as_of_now() -> None:
    s = FeedStatus("binance", "live", last_message_at=100.0, next_retry_at=110.0, stale_after_s=5.0)
    assert (s.last_message_age(103.0), s.next_retry_in(103.0)) == (3.0, 7.0)
    assert (s.last_message_age(90.0), s.next_retry_in(120.0)) == (0.0, 0.0)  # never negative
    assert not s.is_stale(105.0) and s.is_stale(105.5)
    assert not dataclasses.replace(s, state="reconnecting").is_stale(200.0)
    assert FeedStatus("x").last_message_age(1.0) is None and FeedStatus("x").next_retry_in(1.0) is None
    assert not FeedStatus("x", "live").is_stale(1e9)  # no message yet: not stale


def age(snap: StoreSnapshot, exchange: str) -> float | None:
    """An exchange's last-message age as of the snapshot (as the page and the CLI show it)."""
    return snap.statuses[exchange].last_message_age(snap.taken_at)



@settings(max_examples=300, deadline=None)
@given(
    bids=st.lists(st.floats(0.0, 5.0, allow_nan=False), max_size=25),
    asks=st.lists(st.floats(0.0, 5.0, allow_nan=False), max_size=25),
)
def test_series_row_equals_the_metrics_it_stands_for(bids: list[float], asks: list[float]) -> None:
    b: Levels = tuple((100.0 - i, q) for i, q in enumerate(bids))
    a: Levels = tuple((101.0 + i, q) for i, q in enumerate(asks))
    tob = top_of_book(b, a)
    expected = (
        7.0, tob.best_bid, tob.best_ask, tob.mid, tob.spread, tob.spread_bps,
        *imbalances(b, a, IMBALANCE_DEPTHS), depth_delta(b, a),
    )  # fmt: skip
    got = series_row(b, a, 7.0)
    assert len(got) == len(SERIES_COLUMNS) - 1  # the store appends the CVD
    for x, y in zip(got, expected, strict=True):
        assert (math.isnan(x) and y is None) or x == y, (got, expected)
