"""Pipeline: venue names mapped to the user's, tickers merged, symbols added and removed."""

from __future__ import annotations

import pytest

from market.errors import InvalidSymbol
from market.events import BookSnapshot, Ticker, Trade
from market.pipeline import Pipeline
from market.settings import Settings
from market.store import MarketStore
from market.sync import SequencedSync
from market.worker import _bybit_bad_symbols, check_symbols


def hl_pipeline(store: MarketStore) -> Pipeline:
    return Pipeline(store, "hyperliquid", {"BTC": "BTCUSDT", "ETH": "ETHUSDC"}, SequencedSync)


def test_venue_symbols_are_published_under_the_users_names() -> None:
    store = MarketStore()
    p = hl_pipeline(store)
    assert p.symbols == ("BTC", "ETH")
    p.handle([
        BookSnapshot("hyperliquid", "BTC", ((100.0, 1.0),), ((101.0, 2.0),), 5, received_at=1.0),
        Trade("hyperliquid", "BTC", 100.5, 0.25, "buy", 1000, "7", received_at=1.0),
        BookSnapshot("hyperliquid", "SOL", ((1.0, 1.0),), ((2.0, 1.0),), 5),  # not watched
    ])
    markets = store.snapshot().markets
    assert sorted(markets) == [("hyperliquid", "BTCUSDT"), ("hyperliquid", "ETHUSDC")]
    btc = markets[("hyperliquid", "BTCUSDT")]
    assert (btc.bids, btc.asks, btc.synced, btc.trades_seen) == (((100.0, 1.0),), ((101.0, 2.0),), True, 1)
    assert btc.trades[0].symbol == "BTC"  # the event keeps the venue's name
    p.mark("ETH", "ETH: not listed")
    assert store.snapshot().markets[("hyperliquid", "ETHUSDC")].detail == "ETH: not listed"
    p.remove_symbol("ETH")
    assert list(store.snapshot().markets) == [("hyperliquid", "BTCUSDT")]
    assert p.names == {"BTC": "BTCUSDT"}


def test_ticker_fields_left_out_keep_their_last_value() -> None:
    store = MarketStore()
    p = Pipeline(store, "bybit", ["BTCUSDT"], SequencedSync)
    p.handle([Ticker("bybit", "BTCUSDT", last=100.0, change_pct=1.5, volume=10.0, high=105.0, low=95.0)])
    p.handle([Ticker("bybit", "BTCUSDT", last=101.0, bid=100.9)])  # a linear delta
    p.handle([Ticker("bybit", "ETHUSDT", last=5.0)])  # not watched: ignored
    t = store.snapshot().markets[("bybit", "BTCUSDT")].ticker
    assert t is not None
    assert (t.last, t.change_pct, t.volume, t.high, t.low, t.bid, t.ask) == (
        101.0, 1.5, 10.0, 105.0, 95.0, 100.9, None,
    )
    assert list(store.snapshot().markets) == [("bybit", "BTCUSDT")]


def test_symbols_are_checked_for_every_chosen_exchange() -> None:
    s = check_symbols(Settings(exchanges=("hyperliquid", "bybit"), symbols=("btc-usdt", "eth", "BTCUSDT")))
    assert (s.exchanges, s.symbols) == (("hyperliquid", "bybit"), ("BTCUSDT", "ETH"))
    with pytest.raises(InvalidSymbol, match="not a HyperLiquid coin"):
        check_symbols(Settings(exchanges=("binance", "hyperliquid"), symbols=("ABCDEFGHIJKLMNOPQRST",)))
    with pytest.raises(InvalidSymbol, match="no letters or digits"):
        check_symbols(Settings(exchanges=("mock",), symbols=("--",)))


def test_bybit_refusal_names_the_symbols() -> None:
    assert _bybit_bad_symbols("Invalid symbol :[orderbook.50.XYZUSDT]") == {"XYZUSDT"}
    assert _bybit_bad_symbols("Invalid symbol :[tickers.AUSDT, publicTrade.BUSDT]") == {"AUSDT", "BUSDT"}
    assert _bybit_bad_symbols("error:handler not found,topic:orderbook.50.XYZUSDT") == {"XYZUSDT"}
    assert _bybit_bad_symbols("args size >10") == set()
