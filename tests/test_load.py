"""Load through the loopback fake Binance into the real worker: diffs of 1,000+ level changes
each, and ten times the normal rate (100 diffs a second a symbol instead of 10). The local
book stays exactly the exchange's: the published top 20 and every level of the whole book.

Bounded: a fixed number of diffs, sent over at most ~3 s; the exchange stops by itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from market.settings import Settings
from market.worker import Timing, Worker
from tests.conftest import wait_for
from tests.fakes.binance import FakeBinance, books_exact

SYMBOLS = ("BTCUSDT", "ETHUSDT")
TIMING = Timing(status_interval=0.05, backoff_jitter=0.0, close_timeout=0.5)


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance(SYMBOLS, seed=31) as ex:
        yield ex


@pytest.fixture
def worker(fake: FakeBinance) -> Iterator[Worker]:
    settings = Settings(
        exchanges=("binance",), symbols=SYMBOLS, fallback="none", connection_timeout=5.0,
    ).with_urls(BINANCE_WS_URL=fake.ws_url, BINANCE_REST_URL=fake.rest_url)
    w = Worker(settings, timing=TIMING).start()
    try:
        wait_for(
            lambda: all(fake.snapshot_requests[s] == 1 for s in SYMBOLS) and exact(fake, w),
            what="synced",
        )
        yield w
    finally:
        w.stop()


def exact(ex: FakeBinance, worker: Worker) -> bool:
    return books_exact(ex, worker.store, SYMBOLS)


def assert_whole_books_equal(ex: FakeBinance, worker: Worker) -> None:
    """Every level, once the stream is quiet (nothing writes either book any more)."""
    pipeline = worker._feeds["binance"].pipeline  # type: ignore[attr-defined]
    for symbol in SYMBOLS:
        truth = ex.books[symbol]
        local_bids, local_asks = pipeline.syncs[symbol].book.levels()
        assert local_bids == {float(p): float(q) for p, q in truth.bids.items()}, symbol
        assert local_asks == {float(p): float(q) for p, q in truth.asks.items()}, symbol


def counted(worker: Worker, messages: int) -> object:
    return wait_for(
        lambda: (
            (s := worker.store.snapshot(series=False).statuses["binance"]).messages == messages
            and s
        ),
        what=f"{messages} frames counted",
    )


def test_diffs_of_a_thousand_levels_each(fake: FakeBinance, worker: Worker) -> None:
    for levels in (1000, 1200, 1500, 1000, 1000):
        fake.burst(2, levels=levels)  # two diffs a symbol of that many level changes each
    wait_for(lambda: exact(fake, worker), 10.0, what="books == truth after the bursts")
    status = counted(worker, 5 * 2 * len(SYMBOLS))
    assert (status.bad_messages, status.resyncs, status.reconnects) == (0, 0, 0)  # type: ignore[attr-defined]
    assert_whole_books_equal(fake, worker)
    depth = {s: (len(fake.books[s].bids), len(fake.books[s].asks)) for s in SYMBOLS}
    assert all(400 < n < 1000 for pair in depth.values() for n in pair), (
        depth
    )  # deep, < the snapshot


def test_ten_times_the_normal_rate_with_bursts(fake: FakeBinance, worker: Worker) -> None:
    rounds = 30  # 3 s at 100 ms a round
    pause = threading.Event()
    started = time.monotonic()
    sent = 0
    for i in range(rounds):
        fake.tick(10)  # ten diffs a symbol each 100 ms: ten times Binance's depth@100ms
        sent += 10 * len(SYMBOLS)
        if i % 5 == 4:
            fake.burst(1, levels=1000)
            sent += len(SYMBOLS)
        pause.wait(max(0.0, started + (i + 1) * 0.1 - time.monotonic()))  # pacing the exchange
    wait_for(lambda: exact(fake, worker), 10.0, what="books == truth at ten times the rate")
    status = counted(worker, sent)
    assert sent == 30 * 20 + 6 * 2
    assert (status.bad_messages, status.resyncs, status.reconnects) == (0, 0, 0)  # type: ignore[attr-defined]
    assert fake.snapshot_requests == {s: 1 for s in SYMBOLS}
    assert_whole_books_equal(fake, worker)
    views = worker.store.snapshot(series=False).markets
    for symbol in SYMBOLS:
        assert views[("binance", symbol)].book_updates == 1 + sent // len(SYMBOLS)
