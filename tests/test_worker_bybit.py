"""The real Worker against FakeBybit on 127.0.0.1: snapshot/delta books, resubscribe on a gap,
heartbeats, subscription refusals, live (un)subscribe, region blocks.

Books are compared level for level with the fake's truth (top 20); every frame the worker sent
is recorded by the fake (``received``), so subscriptions are asserted exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from market.events import FeedStatus
from market.settings import Settings
from market.views import MarketView
from market.worker import Timing, Worker
from tests.conftest import wait_for
from tests.fakes.bybit import FakeBybit

BTC, ETH = "BTCUSDT", "ETHUSDT"
FAST = Timing(
    backoff_initial=0.05, backoff_cap=0.4, backoff_jitter=0.0, blocked_retry=2.0,
    status_interval=0.05, snapshot_retry_initial=0.05, snapshot_retry_cap=0.4, resync_calm=1.0,
    mock_interval=0.05, close_timeout=0.5, ping=0.1,
)  # fmt: skip

WorkerFactory = Callable[..., Worker]


@pytest.fixture
def make_worker(start_worker: Callable[..., Worker]) -> WorkerFactory:
    def make(ex: FakeBybit, symbols: tuple[str, ...] = (BTC, ETH), timing: Timing = FAST) -> Worker:
        settings = Settings(
            exchanges=("bybit",), symbols=symbols, connection_timeout=5.0
        ).with_urls(BYBIT_WS_URL=ex.ws_url)
        return start_worker(settings, timing)

    return make


def view(worker: Worker, symbol: str) -> MarketView:
    return worker.store.snapshot(series=False).markets[("bybit", symbol)]


def status(worker: Worker) -> FeedStatus:
    return worker.store.snapshot(series=False).statuses["bybit"]


def matches_truth(ex: FakeBybit, worker: Worker, symbol: str) -> bool:
    bids, asks, _ = ex.truth(symbol, 20)
    v = worker.store.snapshot(series=False).markets.get(("bybit", symbol))
    return (
        v is not None
        and v.synced
        and list(v.bids[:20]) == list(bids)
        and list(v.asks[:20]) == list(asks)
    )


def wait_truth(ex: FakeBybit, worker: Worker, *symbols: str) -> None:
    for symbol in symbols or (BTC, ETH):
        wait_for(
            lambda s=symbol: matches_truth(ex, worker, s), 5.0, what=f"{symbol} equals the truth"
        )


def sent(ex: FakeBybit, op: str) -> list[list[str]]:
    """The args of every request with ``op`` the worker sent, in order."""
    return [f["args"] for f in ex.received if f.get("op") == op]


def topics(symbol: str) -> list[str]:
    return [f"orderbook.50.{symbol}", f"publicTrade.{symbol}", f"tickers.{symbol}"]


@pytest.fixture
def fake() -> Iterator[FakeBybit]:
    with FakeBybit([BTC, ETH]) as ex:
        yield ex


def test_books_trades_and_tickers_are_exact(fake: FakeBybit, make_worker: WorkerFactory) -> None:
    w = make_worker(fake)
    wait_truth(fake, w)
    assert sent(fake, "subscribe") == [topics(BTC) + topics(ETH)]
    for _ in range(20):
        fake.tick(1)
    wait_truth(fake, w)
    fake.trade(BTC, "100.50", "0.25", "Buy")
    fake.trade(BTC, "100.40", "1.5", "Sell")
    wait_for(lambda: view(w, BTC).trades_seen == 2, 5.0, what="two trades")
    t1, t2 = view(w, BTC).trades
    assert (t1.price, t1.qty, t1.side, t2.price, t2.qty, t2.side) == (
        100.5,
        0.25,
        "buy",
        100.4,
        1.5,
        "sell",
    )
    fake.ticker(BTC, lastPrice="101.25", price24hPcnt="0.0125", highPrice24h="103", lowPrice24h="99.5",
                volume24h="1234.5", turnover24h="124000")  # fmt: skip
    wait_for(
        lambda: view(w, BTC).ticker is not None and view(w, BTC).ticker.last == 101.25,
        5.0,
        what="ticker",
    )
    t = view(w, BTC).ticker
    assert t is not None
    assert (t.change_pct, t.high, t.low, t.volume, t.quote_volume) == (
        1.25,
        103.0,
        99.5,
        1234.5,
        124000.0,
    )
    s = status(w)
    assert (s.state, s.source, s.bad_messages, s.resyncs, s.reconnects) == ("live", "live", 0, 0, 0)


def test_a_gap_in_u_resubscribes_that_topic_only(
    fake: FakeBybit, make_worker: WorkerFactory
) -> None:
    w = make_worker(fake)
    wait_truth(fake, w)
    fake.skip(2, BTC)
    fake.tick(1)
    wait_for(lambda: status(w).resyncs == 1, 5.0, what="a resync")
    wait_truth(fake, w)
    assert sent(fake, "unsubscribe") == [[f"orderbook.50.{BTC}"]]
    assert sent(fake, "subscribe")[1:] == [[f"orderbook.50.{BTC}"]]
    assert view(w, ETH).resyncs == 0 and view(w, BTC).resyncs == 1
    fake.tick(3)
    wait_truth(fake, w)
    assert (fake.handshakes, status(w).reconnects) == (1, 0)


def test_u_1_and_a_new_snapshot_replace_the_book(
    fake: FakeBybit, make_worker: WorkerFactory
) -> None:
    w = make_worker(fake)
    wait_truth(fake, w)
    fake.restart(BTC)  # a delta with u == 1: Bybit restarted its service
    wait_truth(fake, w, BTC)
    assert view(w, BTC).update_id == 1
    fake.tick(2)
    fake.resnapshot(ETH)
    fake.tick(1)
    wait_truth(fake, w)
    assert status(w).resyncs == 0 and sent(fake, "unsubscribe") == []


def test_pings_keep_the_connection_and_missing_them_gets_it_closed(
    make_worker: WorkerFactory,
) -> None:
    with FakeBybit([BTC], ping_timeout=0.6) as ex:
        w = make_worker(ex, (BTC,))
        wait_truth(ex, w, BTC)
        wait_for(
            lambda: len([f for f in ex.received if f.get("op") == "ping"]) >= 10, 5.0, what="pings"
        )
        assert ex.handshakes == 1  # 1 s of pings every 0.1 s: never closed
    with FakeBybit([BTC], ping_timeout=0.3) as ex:
        w = make_worker(ex, (BTC,), replace(FAST, ping=30.0))
        wait_truth(ex, w, BTC)
        wait_for(lambda: ex.handshakes >= 2, 5.0, what="closed for missing pings, then reconnected")
        wait_for(lambda: status(w).reconnects >= 1, 5.0, what="reconnect counted")
        ex.tick(2)
        wait_truth(ex, w, BTC)


def test_unknown_symbol_is_named_and_the_others_stream(make_worker: WorkerFactory) -> None:
    with FakeBybit([BTC]) as ex:
        w = make_worker(ex, (BTC, "NOPEUSDT"))
        wait_truth(ex, w, BTC)
        wait_for(lambda: "not listed" in view(w, "NOPEUSDT").detail, 5.0, what="NOPE detail")
        nope = view(w, "NOPEUSDT")
        assert nope.detail.startswith("NOPEUSDT: not listed on Bybit spot (")
        assert (nope.synced, nope.bids) == (False, ())
        # Bybit refuses a whole request: the worker asks again without the unknown symbol
        assert sent(ex, "subscribe") == [topics(BTC) + topics("NOPEUSDT"), topics(BTC)]
        ex.tick(3)
        wait_truth(ex, w, BTC)
        wait_for(
            lambda: status(w).detail == "streaming", 5.0, what="streaming (the unknown one aside)"
        )


def test_subscriptions_hold_at_most_ten_args(make_worker: WorkerFactory) -> None:
    symbols = ("AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT")
    with FakeBybit(list(symbols)) as ex:
        w = make_worker(ex, symbols)
        wait_truth(ex, w, *symbols)
        args = sent(ex, "subscribe")
        assert [len(a) for a in args] == [10, 2]
        assert sum(args, []) == [t for s in symbols for t in topics(s)]


def test_symbols_change_on_the_live_connection(fake: FakeBybit, make_worker: WorkerFactory) -> None:
    w = make_worker(fake, (BTC,))
    wait_truth(fake, w, BTC)
    w.reconfigure(symbols=(BTC, ETH))
    wait_truth(fake, w, BTC, ETH)
    w.reconfigure(symbols=(ETH,))
    wait_for(lambda: sent(fake, "unsubscribe") == [topics(BTC)], 5.0, what="BTC unsubscribed")
    fake.tick(2)
    wait_truth(fake, w, ETH)
    assert sent(fake, "subscribe") == [topics(BTC), topics(ETH)]
    assert list(w.store.snapshot(series=False).markets) == [("bybit", ETH)]
    assert (fake.handshakes, status(w).reconnects) == (1, 0)


def test_garbage_is_counted_and_the_book_stays_exact(
    fake: FakeBybit, make_worker: WorkerFactory
) -> None:
    w = make_worker(fake)
    wait_truth(fake, w)
    fake.garbage(
        "not json",
        "[1,2]",
        '{"topic":"orderbook.50.BTCUSDT","type":"delta","data":{"s":"BTCUSDT"}}',
    )
    fake.tick(2)
    wait_for(lambda: status(w).bad_messages == 3, 5.0, what="3 bad frames")
    wait_truth(fake, w)
    assert status(w).resyncs == 0


def test_403_at_the_handshake_is_a_block_with_simulated_data(make_worker: WorkerFactory) -> None:
    with FakeBybit([BTC]) as ex:
        ex.refuse(403)
        w = make_worker(ex, (BTC,))
        s = wait_for(
            lambda: status(w) if status(w).state == "blocked" else None, 5.0, what="blocked"
        )
        assert s.detail == "HTTP 403: forbidden — showing SIMULATED data"
        assert s.source == "simulated"
        wait_for(lambda: view(w, BTC).synced, 5.0, what="simulated book")
        assert view(w, BTC).source == "simulated"
        assert ex.handshakes == 1  # no retry before blocked_retry (2 s)
        ex.refuse(None)
        wait_truth(ex, w, BTC)  # the retry gets through: live again
        assert view(w, BTC).source == "live"


def test_linear_ticker_deltas_merge_into_the_snapshot(make_worker: WorkerFactory) -> None:
    with FakeBybit([BTC], kind="linear") as ex:
        w = make_worker(ex, (BTC,))
        wait_truth(ex, w, BTC)
        wait_for(lambda: view(w, BTC).ticker is not None, 5.0, what="the ticker snapshot")
        first = view(w, BTC).ticker
        assert first is not None and first.high is not None
        ex.ticker(BTC, lastPrice="12345.5")  # a delta: only the changed field
        wait_for(lambda: view(w, BTC).ticker.last == 12345.5, 5.0, what="merged delta")  # type: ignore[union-attr]
        merged = view(w, BTC).ticker
        assert merged is not None
        assert (merged.high, merged.low, merged.volume, merged.bid) == (
            first.high,
            first.low,
            first.volume,
            first.bid,
        )
