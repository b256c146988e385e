"""Pipeline: venue names mapped to the user's, tickers merged, symbols added and removed."""

from __future__ import annotations

import pytest

from market.errors import InvalidSymbol
from market.events import BookDelta, BookSnapshot, Ticker, Trade
from market.pipeline import Pipeline
from market.settings import Settings
from market.store import MarketStore
from market.sync import SequencedSync
from market.venues.bybit import bad_symbols as _bybit_bad_symbols
from market.worker import check_symbols


def hl_pipeline(store: MarketStore) -> Pipeline:
    return Pipeline(store, "hyperliquid", {"BTC": "BTCUSDT", "ETH": "ETHUSDC"}, SequencedSync)


def test_venue_symbols_are_published_under_the_users_names() -> None:
    store = MarketStore()
    p = hl_pipeline(store)
    assert p.symbols == ("BTC", "ETH")
    p.handle(
        [
            BookSnapshot(
                "hyperliquid", "BTC", ((100.0, 1.0),), ((101.0, 2.0),), 5, received_at=1.0
            ),
            Trade("hyperliquid", "BTC", 100.5, 0.25, "buy", 1000, "7", received_at=1.0),
            BookSnapshot("hyperliquid", "SOL", ((1.0, 1.0),), ((2.0, 1.0),), 5),  # not watched
        ]
    )
    markets = store.snapshot().markets
    assert sorted(markets) == [("hyperliquid", "BTCUSDT"), ("hyperliquid", "ETHUSDC")]
    btc = markets[("hyperliquid", "BTCUSDT")]
    assert (btc.bids, btc.asks, btc.synced, btc.trades_seen) == (
        ((100.0, 1.0),),
        ((101.0, 2.0),),
        True,
        1,
    )
    assert btc.trades[0].symbol == "BTC"  # the event keeps the venue's name
    p.mark("ETH", "ETH: not listed")
    assert store.snapshot().markets[("hyperliquid", "ETHUSDC")].detail == "ETH: not listed"
    p.remove_symbol("ETH")
    assert list(store.snapshot().markets) == [("hyperliquid", "BTCUSDT")]
    assert p.names == {"BTC": "BTCUSDT"}


def test_ticker_fields_left_out_keep_their_last_value() -> None:
    store = MarketStore()
    p = Pipeline(store, "bybit", ["BTCUSDT"], SequencedSync)
    p.handle(
        [Ticker("bybit", "BTCUSDT", last=100.0, change_pct=1.5, volume=10.0, high=105.0, low=95.0)]
    )
    p.handle([Ticker("bybit", "BTCUSDT", last=101.0, bid=100.9)])  # a linear delta
    p.handle([Ticker("bybit", "ETHUSDT", last=5.0)])  # not watched: ignored
    t = store.snapshot().markets[("bybit", "BTCUSDT")].ticker
    assert t is not None
    assert (t.last, t.change_pct, t.volume, t.high, t.low, t.bid, t.ask) == (
        101.0,
        1.5,
        10.0,
        105.0,
        95.0,
        100.9,
        None,
    )
    assert list(store.snapshot().markets) == [("bybit", "BTCUSDT")]


def test_symbols_are_checked_for_every_chosen_exchange() -> None:
    s = check_symbols(
        Settings(exchanges=("hyperliquid", "bybit"), symbols=("btc-usdt", "eth", "BTCUSDT"))
    )
    assert (s.exchanges, s.symbols) == (("hyperliquid", "bybit"), ("BTCUSDT", "ETH"))
    with pytest.raises(InvalidSymbol, match="not a HyperLiquid coin"):
        check_symbols(
            Settings(exchanges=("binance", "hyperliquid"), symbols=("ABCDEFGHIJKLMNOPQRST",))
        )
    with pytest.raises(InvalidSymbol, match="no letters or digits"):
        check_symbols(Settings(exchanges=("mock",), symbols=("--",)))


def test_bybit_refusal_names_the_symbols() -> None:
    assert _bybit_bad_symbols("Invalid symbol :[orderbook.50.XYZUSDT]") == {"XYZUSDT"}
    assert _bybit_bad_symbols("Invalid symbol :[tickers.AUSDT, publicTrade.BUSDT]") == {
        "AUSDT",
        "BUSDT",
    }
    assert _bybit_bad_symbols("error:handler not found,topic:orderbook.50.XYZUSDT") == {"XYZUSDT"}
    assert _bybit_bad_symbols("args size >10") == set()


def _delta(first: int, bids: tuple[tuple[float, float], ...], at: float) -> BookDelta:
    return BookDelta("bybit", "BTCUSDT", bids, (), first, first, prev_id=first - 1, received_at=at)


def test_busy_books_are_coalesced_and_every_update_counted() -> None:
    store = MarketStore(depth=20, series_interval=0.0)
    p = Pipeline(store, "bybit", ["BTCUSDT"], SequencedSync, publish_interval=0.1)
    p.handle(
        [BookSnapshot("bybit", "BTCUSDT", ((100.0, 1.0),), ((101.0, 1.0),), 1, received_at=0.0)]
    )
    p.handle([_delta(2, ((100.0, 2.0),), 0.03), _delta(3, ((100.5, 1.0),), 0.06)])
    v = store.snapshot().markets[("bybit", "BTCUSDT")]
    assert (v.bids, v.update_id, v.book_updates) == (((100.0, 1.0),), 1, 1)  # not yet
    p.flush()
    v = store.snapshot().markets[("bybit", "BTCUSDT")]
    assert (v.bids, v.update_id, v.book_updates) == (((100.5, 1.0), (100.0, 2.0)), 3, 3)
    assert [row[0] for row in v.series] == [0.0, 0.06]
    p.handle([_delta(4, ((99.0, 1.0),), 0.2)])  # 140 ms after the last publication: at once
    v = store.snapshot().markets[("bybit", "BTCUSDT")]
    assert (v.bids[-1], v.update_id, v.book_updates) == ((99.0, 1.0), 4, 4)
    p.flush()  # nothing left: nothing changes
    assert store.snapshot().markets[("bybit", "BTCUSDT")].book_updates == 4


def test_a_change_below_the_published_levels_moves_only_the_id() -> None:
    store = MarketStore(depth=20, series_interval=0.0)
    p = Pipeline(store, "bybit", ["BTCUSDT"], SequencedSync)
    bids = tuple((100.0 - i, 1.0) for i in range(25))
    p.handle([BookSnapshot("bybit", "BTCUSDT", bids, ((101.0, 1.0),), 1, received_at=0.0)])
    before = store.snapshot().markets[("bybit", "BTCUSDT")]
    p.handle([_delta(2, ((77.0, 5.0),), 1.0)])  # the 24th level: not among the 20 shown
    v = store.snapshot().markets[("bybit", "BTCUSDT")]
    assert (v.bids, v.series) == (before.bids, before.series)
    assert (v.update_id, v.updated_at, v.book_updates) == (2, 1.0, 2)
    assert p.syncs["BTCUSDT"].book.levels()[0][77.0] == 5.0


def test_an_exchange_removed_and_added_again_comes_back_clean() -> None:
    from market.worker import Timing, Worker
    from tests.conftest import wait_for

    settings = Settings(
        exchanges=("mock",),
        symbols=("BTCUSDT",),
        mock_seed=1,
    ).with_urls(BINANCE_WS_URL="ws://127.0.0.1:9", BINANCE_REST_URL="http://127.0.0.1:9")
    worker = Worker(settings, timing=Timing(mock_interval=0.02, status_interval=0.05)).start()
    try:
        wait_for(
            lambda: worker.store.snapshot().statuses.get("mock") is not None, 5.0, what="status"
        )
        worker.reconfigure(exchanges=("binance",))  # nothing listens on port 9: never connects
        worker.reconfigure(exchanges=("mock",))

        def back() -> bool:
            snap = worker.store.snapshot(series=False)
            status = snap.statuses.get("mock")
            view = snap.markets.get(("mock", "BTCUSDT"))
            return (
                status is not None
                and status.state == "simulated"
                and view is not None
                and view.synced
            )

        wait_for(back, 5.0, what="mock simulated again")
        snap = worker.store.snapshot(series=False)
        assert set(snap.statuses) == {"mock"} and list(snap.markets) == [("mock", "BTCUSDT")]
    finally:
        worker.stop()
