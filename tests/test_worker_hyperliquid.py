"""The real Worker against FakeHyperLiquid on 127.0.0.1: whole-image books, trade backfill
without double counting, pings under the idle limit, unknown coins, region blocks.

The user's ``BTCUSDT`` is HyperLiquid's ``BTC``: subscriptions name the coin, the store keeps
the user's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from market.events import FeedStatus
from market.settings import Settings
from market.views import MarketView
from market.worker import Timing, Worker
from tests.conftest import wait_for
from tests.fakes.hyperliquid import FakeHyperLiquid

FAST = Timing(
    backoff_initial=0.05, backoff_cap=0.4, backoff_jitter=0.0, blocked_retry=2.0,
    status_interval=0.05, resync_calm=1.0, mock_interval=0.05, close_timeout=0.5,
    ping=0.1,
)  # fmt: skip

WorkerFactory = Callable[..., Worker]


@pytest.fixture
def make_worker(start_worker: Callable[..., Worker]) -> WorkerFactory:
    def make(
        ex: FakeHyperLiquid, symbols: tuple[str, ...] = ("BTCUSDT",), timing: Timing = FAST
    ) -> Worker:
        settings = Settings(
            exchanges=("hyperliquid",),
            symbols=symbols,
            connection_timeout=5.0,
        ).with_urls(HYPERLIQUID_WS_URL=ex.ws_url)
        return start_worker(settings, timing)

    return make


def view(worker: Worker, symbol: str = "BTCUSDT") -> MarketView:
    return worker.store.snapshot(series=False).markets[("hyperliquid", symbol)]


def status(worker: Worker) -> FeedStatus:
    return worker.store.snapshot(series=False).statuses["hyperliquid"]


def matches_truth(
    ex: FakeHyperLiquid, worker: Worker, coin: str = "BTC", symbol: str = "BTCUSDT"
) -> bool:
    bids, asks, _ = ex.truth(coin, 20)
    v = worker.store.snapshot(series=False).markets.get(("hyperliquid", symbol))
    return v is not None and v.synced and list(v.bids) == list(bids) and list(v.asks) == list(asks)


def wait_truth(
    ex: FakeHyperLiquid, worker: Worker, coin: str = "BTC", symbol: str = "BTCUSDT"
) -> None:
    wait_for(
        lambda: matches_truth(ex, worker, coin, symbol), 5.0, what=f"{symbol} equals the image"
    )


def subscriptions_sent(ex: FakeHyperLiquid, method: str = "subscribe") -> list[dict[str, str]]:
    return [f["subscription"] for f in ex.received if f.get("method") == method]


def test_images_replace_the_book_and_an_empty_side_is_empty(make_worker: WorkerFactory) -> None:
    with FakeHyperLiquid(["BTC"]) as ex:
        w = make_worker(ex)
        wait_truth(ex, w)
        wait_for(lambda: len(subscriptions_sent(ex)) >= 4, 5.0, what="every subscription")
        assert subscriptions_sent(ex) == [
            {"type": "allMids"},
            {"type": "l2Book", "coin": "BTC"},
            {"type": "trades", "coin": "BTC"},
            {"type": "activeAssetCtx", "coin": "BTC"},
        ]
        for _ in range(5):
            ex.tick(1)
        wait_truth(ex, w)
        ex.empty_side("BTC", "asks")
        ex.tick(1)
        wait_for(
            lambda: view(w).synced and view(w).asks == () and view(w).bids != (),
            5.0,
            what="no asks",
        )
        wait_truth(ex, w)
        s = status(w)
        assert (s.bad_messages, s.resyncs, s.reconnects) == (0, 0, 0)  # the greeting is not bad
        assert list(w.store.snapshot(series=False).markets) == [("hyperliquid", "BTCUSDT")]


def test_backfill_is_marked_and_never_counted_twice(make_worker: WorkerFactory) -> None:
    with FakeHyperLiquid(["BTC"]) as ex:
        for i in range(3):  # history from before we connect
            ex.trade("BTC", f"{100 + i}.0", "0.5", "B")
        w = make_worker(ex)
        wait_for(lambda: view(w).trades_seen == 3, 5.0, what="the backfill")
        assert [t.backfill for t in view(w).trades] == [True, True, True]
        assert view(w).session.trades == 0  # history is shown, not counted in the session
        ex.trade("BTC", "104.0", "2.0", "A")
        wait_for(lambda: view(w).trades_seen == 4, 5.0, what="a live trade")
        last = view(w).trades[-1]
        assert (last.price, last.qty, last.side, last.backfill) == (104.0, 2.0, "sell", False)
        assert (view(w).session.trades, view(w).session.cvd) == (1, -2.0)
        ex.drop()  # the new connection's backfill replays the same 4 trades
        wait_for(lambda: ex.handshakes == 2 and matches_truth(ex, w), 5.0, what="reconnected")
        wait_for(lambda: len([f for f in ex.received if f.get("subscription", {}).get("type") == "trades"]) == 2,
                 5.0, what="trades resubscribed")  # fmt: skip
        ex.trade("BTC", "105.0", "1.0", "B")
        wait_for(lambda: view(w).trades_seen == 5, 5.0, what="one more live trade")
        assert [t.price for t in view(w).trades] == [100.0, 101.0, 102.0, 104.0, 105.0]
        assert view(w).session.trades == 2


def test_pings_keep_the_connection_under_the_idle_limit(make_worker: WorkerFactory) -> None:
    with FakeHyperLiquid(["BTC"], idle_timeout=0.6) as ex:
        w = make_worker(ex)
        wait_truth(ex, w)
        wait_for(
            lambda: len([f for f in ex.received if f.get("method") == "ping"]) >= 10,
            5.0,
            what="pings",
        )
        assert ex.handshakes == 1
    with FakeHyperLiquid(["BTC"], idle_timeout=0.3) as ex:
        w = make_worker(ex, timing=replace(FAST, ping=30.0))
        wait_truth(ex, w)
        wait_for(
            lambda: ex.handshakes >= 2 and status(w).reconnects >= 1,
            5.0,
            what="closed, reconnected",
        )
        ex.tick(1)
        wait_truth(ex, w)


def test_an_unknown_coin_is_named_and_the_others_stream(make_worker: WorkerFactory) -> None:
    with FakeHyperLiquid(["BTC"]) as ex:
        w = make_worker(ex, ("BTCUSDT", "NOPE"))
        wait_truth(ex, w)
        wait_for(lambda: "not listed" in view(w, "NOPE").detail, 5.0, what="NOPE detail")
        assert view(w, "NOPE").detail.startswith("NOPE: not listed on HyperLiquid")
        # an allMids of 3 coins is not trusted to name them all: NOPE was asked for, and refused
        assert ("l2Book", "NOPE") in {(s["type"], s.get("coin")) for s in subscriptions_sent(ex)}
        assert view(w, "NOPE").synced is False
        ex.tick(1)
        wait_truth(ex, w)
        wait_for(lambda: status(w).detail == "streaming", 5.0, what="streaming")


def test_an_unknown_coin_is_never_subscribed_where_that_closes_the_socket(
    make_worker: WorkerFactory,
) -> None:
    with FakeHyperLiquid(["BTC"], unknown_coin="close") as ex:
        ex.listed |= {f"C{i:03d}" for i in range(120)}  # allMids names every coin: trusted
        w = make_worker(ex, ("NOPE", "BTCUSDT"))
        wait_truth(ex, w)
        wait_for(
            lambda: view(w, "NOPE").detail == "NOPE: not listed on HyperLiquid", 5.0, what="NOPE"
        )
        ex.tick(2)
        wait_truth(ex, w)
        assert {s.get("coin") for s in subscriptions_sent(ex)} == {None, "BTC"}
        assert (ex.handshakes, status(w).reconnects) == (1, 0)


def test_a_coins_case_is_taken_from_the_venue(make_worker: WorkerFactory) -> None:
    with FakeHyperLiquid(["kPEPE"]) as ex:
        ex.listed |= {f"C{i:03d}" for i in range(120)}
        w = make_worker(ex, ("kpepe",))
        wait_truth(ex, w, "kPEPE", "KPEPE")
        assert ("l2Book", "kPEPE") in {(s["type"], s.get("coin")) for s in subscriptions_sent(ex)}


def test_mids_and_asset_context_fill_the_ticker(make_worker: WorkerFactory) -> None:
    with FakeHyperLiquid(["BTC"]) as ex:
        w = make_worker(ex)
        wait_for(lambda: view(w).ticker is not None and view(w).ticker.change_pct is not None, 5.0,
                 what="24 h figures")  # type: ignore[union-attr]  # fmt: skip
        t = view(w).ticker
        assert t is not None and t.last is not None and t.quote_volume is not None


def test_symbols_change_on_the_live_connection(make_worker: WorkerFactory) -> None:
    with FakeHyperLiquid(["BTC", "ETH"]) as ex:
        w = make_worker(ex)
        wait_truth(ex, w)
        w.reconfigure(symbols=("BTCUSDT", "ETH-USD"))
        wait_for(lambda: matches_truth(ex, w, "ETH", "ETHUSD"), 5.0, what="ETH subscribed")
        w.reconfigure(symbols=("ETHUSD",))
        wait_for(
            lambda: len(subscriptions_sent(ex, "unsubscribe")) == 3, 5.0, what="BTC unsubscribed"
        )
        assert {s["coin"] for s in subscriptions_sent(ex, "unsubscribe")} == {"BTC"}
        assert list(w.store.snapshot(series=False).markets) == [("hyperliquid", "ETHUSD")]
        assert ex.handshakes == 1


def test_403_is_a_block_with_simulated_data(make_worker: WorkerFactory) -> None:
    with FakeHyperLiquid(["BTC"]) as ex:
        ex.refuse(403)
        w = make_worker(ex)
        wait_for(lambda: status(w).state == "blocked", 5.0, what="blocked")
        assert status(w).detail == "HTTP 403: forbidden — showing SIMULATED data"
        wait_for(lambda: view(w).synced, 5.0, what="simulated book")
        assert view(w).source == "simulated"
