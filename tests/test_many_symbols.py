"""100 symbols on the simulated feed, for a bounded time: every market streams, none resyncs,
every container stays at its bound, prices are plausible and different."""

from __future__ import annotations

import threading

from market.settings import Settings
from market.store import MarketStore
from market.worker import Timing, Worker
from tests.conftest import wait_for

SYMBOLS = tuple(f"S{i:03d}USDT" for i in range(98)) + ("BTCUSDT", "ETHUSDT")


def test_a_hundred_simulated_symbols_stream_with_bounded_memory() -> None:
    store = MarketStore(series_points=30, trades_kept=25, series_interval=0.0)
    settings = Settings(exchanges=("mock",), symbols=SYMBOLS, mock_seed=3)
    threads_before = threading.active_count()
    worker = Worker(
        settings, store, timing=Timing(mock_interval=0.02, status_interval=0.05)
    ).start()
    try:

        def full() -> bool:
            markets = store.snapshot().markets
            return len(markets) == 100 and all(
                v.synced and v.trades_seen > 50 and v.book_updates > 40 for v in markets.values()
            )

        wait_for(full, 60.0, what="100 markets past their bounds")
        snap = store.snapshot()
        assert threading.active_count() <= threads_before + 1  # one worker thread, not one a symbol
    finally:
        worker.stop()
    assert sorted(symbol for _, symbol in snap.markets) == sorted(SYMBOLS)
    for view in snap.markets.values():
        assert (view.source, view.resyncs) == ("simulated", 0)
        assert (len(view.series), len(view.trades)) == (30, 25)  # at their maxlen, no further
        assert view.bids[0][0] < view.asks[0][0]
    status = snap.statuses["mock"]
    assert (status.state, status.bad_messages, status.resyncs) == ("simulated", 0, 0)
    mids = {v.symbol: (v.bids[0][0] + v.asks[0][0]) / 2 for v in snap.markets.values()}
    assert 40_000 < mids["BTCUSDT"] < 100_000 and 1_000 < mids["ETHUSDT"] < 6_000
    assert len({round(m, 6) for m in mids.values()}) == 100  # different prices everywhere
    assert all(0.05 < m < 2_000 for s, m in mids.items() if s.startswith("S"))
