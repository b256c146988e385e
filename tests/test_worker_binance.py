"""The real Worker against FakeBinance on 127.0.0.1: exact books, healed failures, refusals.

Every test drives real sockets (a WebSocket combined stream and a REST snapshot endpoint) and
checks exact values: the local top 20 equals the fake's true book level for level, and the
fake counts every handshake and snapshot request. Delays are injected small through ``Timing``
and ``Settings(stale_after=…)``; every worker is stopped by the ``make_worker`` fixture.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.backoff import backoff
from market.errors import InvalidSymbol
from market.events import FeedStatus
from market.settings import Settings
from market.store import MarketStore
from market.views import MarketView
from market.venues.binance import BinanceSession
from market.worker import Timing, Worker
from tests.conftest import wait_for
from tests.fakes.binance import FakeBinance
from tests.helpers.timing import FAST

BTC, ETH = "BTCUSDT", "ETHUSDT"
SYMBOLS = (BTC, ETH)

BLOCKED_WINDOW = 1.0  # watched for handshakes after a refusal: shorter than FAST.blocked_retry


@dataclass(frozen=True, slots=True)
class Unsynced:
    symbol: str
    detail: str
    resync: bool
    at: float


class RecordingStore(MarketStore):
    """A real MarketStore that also keeps every published status and every unsync, in order,
    so that transient states (a detail shown for 50 ms before a reconnect) can be asserted."""

    def __init__(self) -> None:
        super().__init__()
        self._rec_lock = threading.Lock()
        self._statuses_seen: list[tuple[FeedStatus, float]] = []  # and when it was set
        self._unsynced_seen: list[Unsynced] = []

    def set_status(self, status: FeedStatus) -> None:
        with self._rec_lock:
            self._statuses_seen.append((status, time.time()))  # the worker's clock
        super().set_status(status)

    def mark_unsynced(
        self, exchange: str, symbol: str, detail: str, *, resync: bool = True
    ) -> None:
        with self._rec_lock:
            self._unsynced_seen.append(Unsynced(symbol, detail, resync, time.monotonic()))
        super().mark_unsynced(exchange, symbol, detail, resync=resync)

    def statuses_seen(self) -> list[FeedStatus]:
        with self._rec_lock:
            return [s for s, _ in self._statuses_seen]

    def unsynced_seen(self, symbol: str | None = None) -> list[Unsynced]:
        with self._rec_lock:
            return [u for u in self._unsynced_seen if symbol is None or u.symbol == symbol]

    def retry_delays(self) -> list[float]:
        """The delay announced with each reconnect, in order (the first status published after
        ``reconnects`` grew is due the full delay after it was published)."""
        delays: dict[int, float] = {}
        with self._rec_lock:
            seen = list(self._statuses_seen)
        for s, at in seen:
            retry_in = s.next_retry_in(at)
            if s.state == "reconnecting" and retry_in is not None and s.reconnects:
                delays.setdefault(s.reconnects, retry_in)
        return [delays[n] for n in sorted(delays)]

    def reconnect_details(self) -> list[str]:
        """The detail shown with each reconnect, in order."""
        details: dict[int, str] = {}
        for s in self.statuses_seen():
            if s.state == "reconnecting" and s.reconnects:
                details.setdefault(s.reconnects, s.detail)
        return [details[n] for n in sorted(details)]


# -- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance(SYMBOLS) as ex:
        yield ex


@pytest.fixture
def fake_btc() -> Iterator[FakeBinance]:
    with FakeBinance([BTC]) as ex:
        yield ex


WorkerFactory = Callable[..., Worker]


@pytest.fixture
def make_worker() -> Iterator[WorkerFactory]:
    """Start workers; every one is stopped (and its thread joined) at teardown."""
    workers: list[Worker] = []

    def make(
        ex: FakeBinance | None,
        symbols: tuple[str, ...] = SYMBOLS,
        *,
        timing: Timing = FAST,
        ws_url: str | None = None,
        **overrides: object,
    ) -> Worker:
        settings = Settings(
            exchanges=("binance",),
            symbols=symbols,
            **{"connection_timeout": 5.0, **overrides},  # type: ignore[arg-type]
        ).with_urls(
            BINANCE_WS_URL=ws_url or (ex.ws_url if ex else "ws://127.0.0.1:9"),
            BINANCE_REST_URL=ex.rest_url if ex else "http://127.0.0.1:9",
        )
        worker = Worker(settings, RecordingStore(), timing=timing)
        workers.append(worker)
        return worker.start()

    yield make
    for worker in workers:
        worker.stop()
    for worker in workers:
        assert worker._thread is None or not worker._thread.is_alive(), "worker thread left running"


def rec(worker: Worker) -> RecordingStore:
    assert isinstance(worker.store, RecordingStore)
    return worker.store


def view(worker: Worker, symbol: str) -> MarketView:
    return worker.store.snapshot(series=False).markets[("binance", symbol)]


def status(worker: Worker) -> FeedStatus:
    return worker.store.snapshot(series=False).statuses["binance"]


def matches_truth(ex: FakeBinance, worker: Worker, symbol: str) -> bool:
    bids, asks, update_id = ex.truth(symbol)
    v = view(worker, symbol)
    return v.synced and v.update_id == update_id and list(v.bids) == bids and list(v.asks) == asks


def assert_truth(ex: FakeBinance, worker: Worker, *symbols: str) -> None:
    """The published top 20 is the true top 20 exactly: prices, quantities, order, update id."""
    for symbol in symbols or SYMBOLS:
        bids, asks, update_id = ex.truth(symbol)
        v = view(worker, symbol)
        assert v.synced, (symbol, v.detail)
        assert (len(v.bids), len(v.asks)) == (20, 20)
        assert list(v.bids) == bids, symbol
        assert list(v.asks) == asks, symbol
        assert v.update_id == update_id, symbol


def wait_truth(ex: FakeBinance, worker: Worker, *symbols: str, timeout: float = 5.0) -> None:
    symbols = symbols or SYMBOLS
    wait_for(
        lambda: all(matches_truth(ex, worker, s) for s in symbols), timeout, what="books == truth"
    )
    assert_truth(ex, worker, *symbols)


def wait_connected(
    ex: FakeBinance, worker: Worker, opened: int, *symbols: str, snapshots: int = 1
) -> None:
    """Connection number ``opened`` is the only one, and every book is synced from its
    ``snapshots``-th snapshot: from here on a tick reaches the worker on that connection."""
    symbols = symbols or SYMBOLS

    def ready() -> bool:
        return (
            ex.opened == opened
            and ex.connections() == 1
            and all(ex.snapshot_requests[s] == snapshots for s in symbols)
            and all(matches_truth(ex, worker, s) for s in symbols)
        )

    wait_for(ready, 5.0, what=f"connection {opened} synced from snapshot {snapshots}")


def tick_until_truth(ex: FakeBinance, worker: Worker, *symbols: str, timeout: float = 5.0) -> None:
    """Keep the stream moving (so that no watchdog fires) until every book equals the truth."""
    symbols = symbols or SYMBOLS

    def step() -> bool:
        if ex.connections() == 1 and all(matches_truth(ex, worker, s) for s in symbols):
            return True
        ex.tick(1)
        return False

    wait_for(step, timeout, interval=0.05, what="books == truth while ticking")
    assert_truth(ex, worker, *symbols)


def wait_status(
    worker: Worker, predicate: Callable[[FeedStatus], bool], what: str, timeout: float = 5.0
) -> FeedStatus:
    def check() -> FeedStatus | None:
        s = worker.store.snapshot(series=False).statuses.get("binance")
        return s if s is not None and predicate(s) else None

    return wait_for(check, timeout, what=what)


def closed_port() -> socket.socket:
    """A bound, non-listening socket: connecting to its port is refused at the TCP level."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


# -- 1. the normal stream ---------------------------------------------------------------------


def test_stream_keeps_books_equal_to_truth_and_records_trades(
    fake: FakeBinance, make_worker: WorkerFactory
) -> None:
    w = make_worker(fake)
    wait_connected(fake, w, 1)
    assert fake.ws_paths == [
        "/stream?streams=btcusdt@depth@100ms/btcusdt@trade/btcusdt@ticker/"
        "ethusdt@depth@100ms/ethusdt@trade/ethusdt@ticker"
    ]
    for _ in range(10):
        fake.tick(5)
    wait_truth(fake, w)
    assert fake.snapshot_requests == {BTC: 1, ETH: 1}
    assert fake.handshakes == 1
    for symbol in SYMBOLS:
        v = view(w, symbol)
        assert v.source == "live"
        assert v.resyncs == 0
        assert v.book_updates == 1 + 50  # the snapshot, then every one of the 50 diffs

    fake.trade(BTC, "100.25", "0.5", buyer_is_maker=True)
    fake.trade(ETH, "109.99", "1.75", buyer_is_maker=False)
    fake.trade(ETH, "110.01", "0.01", buyer_is_maker=True)
    wait_for(lambda: view(w, BTC).trades_seen == 1 and view(w, ETH).trades_seen == 2, what="trades")
    btc, eth = view(w, BTC), view(w, ETH)
    assert [(t.price, t.qty, t.side) for t in btc.trades] == [(100.25, 0.5, "sell")]
    assert [(t.price, t.qty, t.side) for t in eth.trades] == [
        (109.99, 1.75, "buy"),
        (110.01, 0.01, "sell"),
    ]
    assert [t.trade_id for t in btc.trades + eth.trades] == ["1", "2", "3"]
    assert eth.last_trade == eth.trades[-1]

    s = wait_status(w, lambda s: s.messages == 100 + 3 and s.detail == "streaming", "status")
    assert (s.state, s.source, s.reconnects, s.resyncs, s.bad_messages) == ("live", "live", 0, 0, 0)
    assert s.symbols == SYMBOLS
    assert s.next_retry_at is None
    assert_truth(fake, w)


# -- 2. a gap resyncs that symbol only --------------------------------------------------------


def test_gap_resyncs_only_that_symbol(fake: FakeBinance, make_worker: WorkerFactory) -> None:
    w = make_worker(fake)
    wait_connected(fake, w, 1)
    fake.tick(5)
    wait_truth(fake, w)
    eth_updates = view(w, ETH).book_updates
    gap_from = fake.truth(BTC)[2]
    fake.skip(3, BTC)
    resume_at = fake.truth(BTC)[2] + 1
    fake.tick(1)  # BTC's diff starts after the skipped ones: a gap; ETH's is in sequence
    wait_for(lambda: fake.snapshot_requests[BTC] == 2, 5.0, what="a new BTC snapshot")
    for n in range(5):  # meanwhile ETH applies every diff, without a pause
        want = eth_updates + 1 + 2 * n
        wait_for(lambda: view(w, ETH).book_updates == want, 5.0, what=f"ETH update {want}")
        assert view(w, ETH).synced
        fake.tick(2)
    wait_truth(fake, w)

    assert fake.snapshot_requests == {BTC: 2, ETH: 1}
    assert view(w, BTC).resyncs == 1
    assert view(w, ETH).resyncs == 0
    # ETH was never unsynced after its first snapshot; BTC exactly once, for the gap
    eth_first_sync = [u for u in rec(w).unsynced_seen(ETH)]
    assert [u.detail for u in eth_first_sync] == ["syncing: waiting for the snapshot"]
    assert [u.detail for u in rec(w).unsynced_seen(BTC) if u.resync] == [
        f"resyncing: BTCUSDT: gap: expected update {gap_from + 1}, got {resume_at}"
    ]
    s = wait_status(w, lambda s: s.resyncs == 1, "status.resyncs == 1")
    assert (s.state, s.reconnects, s.bad_messages) == ("live", 0, 0)
    assert fake.handshakes == 1


def test_crossed_book_resyncs_only_that_symbol(
    fake: FakeBinance, make_worker: WorkerFactory
) -> None:
    w = make_worker(fake)
    wait_connected(fake, w, 1)
    fake.tick(3)
    wait_truth(fake, w)
    bids, asks, update_id = fake.truth(BTC)
    crossing = f"{asks[0][0] + 0.01:.8f}"  # a bid above the best ask, in sequence
    fake.send_raw({"stream": "btcusdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": 1, "s": BTC, "U": update_id + 1, "u": update_id + 1,
        "b": [[crossing, "1.00000000"]], "a": []}})
    wait_for(lambda: fake.snapshot_requests[BTC] == 2, 5.0, what="a new BTC snapshot")
    fake.tick(3)
    wait_truth(fake, w)  # never shown crossed: rebuilt from the truth
    assert fake.snapshot_requests == {BTC: 2, ETH: 1}
    assert [u.detail for u in rec(w).unsynced_seen(BTC) if u.resync] == [
        f"resyncing: BTCUSDT: crossed book: best bid {float(crossing)} >= best ask {asks[0][0]}"
    ]
    assert (view(w, BTC).resyncs, view(w, ETH).resyncs) == (1, 0)
    assert wait_status(w, lambda s: s.resyncs == 1, "resyncs 1").reconnects == 0


# -- 3. a dropped connection ------------------------------------------------------------------


def test_drop_reconnects_and_resyncs_every_symbol(
    fake: FakeBinance, make_worker: WorkerFactory
) -> None:
    w = make_worker(fake)
    wait_connected(fake, w, 1)
    fake.tick(5)
    wait_truth(fake, w)
    fake.drop()
    wait_connected(fake, w, 2, snapshots=2)
    for _ in range(5):
        fake.tick(3)
    wait_truth(fake, w)

    assert fake.handshakes == 2
    assert fake.snapshot_requests == {BTC: 2, ETH: 2}
    s = wait_status(w, lambda s: s.detail == "streaming", "streaming again")
    assert (s.state, s.reconnects, s.resyncs, s.bad_messages) == ("live", 1, 0, 0)
    assert rec(w).reconnect_details() == [
        "connection dropped (no close frame); reconnecting in 0.1 s"  # 0.05 s, shown to 0.1 s
    ]
    assert rec(w).retry_delays() == [pytest.approx(0.05, abs=0.01)]
    for symbol in SYMBOLS:  # the reconnect itself is not a gap: per-market resyncs stay 0
        assert view(w, symbol).resyncs == 0
        assert [u.detail for u in rec(w).unsynced_seen(symbol)] == [
            "syncing: waiting for the snapshot",
            "reconnecting: connection dropped (no close frame)",
            "syncing: waiting for the snapshot",
        ]


# -- 4. a silent connection -------------------------------------------------------------------


def test_watchdog_reconnects_a_silent_connection(
    fake: FakeBinance, make_worker: WorkerFactory
) -> None:
    w = make_worker(fake, stale_after=1.0)
    wait_connected(fake, w, 1)
    before_last_data = time.monotonic()
    fake.tick(3)
    wait_truth(fake, w)
    fake.stall(True)  # open, answering pings, but no data
    wait_for(lambda: fake.handshakes >= 2, timeout=4.0, what="watchdog reconnect")
    elapsed = time.monotonic() - before_last_data
    assert 1.0 <= elapsed < 2.5, elapsed  # stale_after, plus a watchdog period and a backoff
    first = rec(w).reconnect_details()[0]
    assert first.startswith("no data for 1.")
    assert first.endswith(" s (watchdog); reconnecting in 0.1 s")

    fake.stall(False)
    tick_until_truth(fake, w)
    s = status(w)
    assert s.state == "live"
    assert s.reconnects == fake.handshakes - 1


# -- 5. garbage never kills the feed ----------------------------------------------------------


def test_bad_frames_are_counted_and_skipped(fake: FakeBinance, make_worker: WorkerFactory) -> None:
    w = make_worker(fake)
    wait_connected(fake, w, 1)
    fake.tick(5)
    wait_truth(fake, w)
    wait_status(w, lambda s: s.messages == 10, "10 messages")
    bad = [
        "not json at all",
        b"\x00\x01\xfe\xff binary junk",
        "[1, 2, 3]",
        # a depthUpdate with fields missing
        '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","s":"BTCUSDT"}}',
        '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","s":"BTCUSDT","U":1,"u":2,'
        '"b":[["abc","1"]],"a":[]}}',  # a price that is not a number
        '{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","p":"1","q":"1"}}',
        '{"stream":"btcusdt@depth@100ms","data":[1]}',  # data not an object
        '{"hello":"world"}',  # neither an event nor a reply
    ]
    harmless = [
        '{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1,"s":"BTCUSDT"}}',  # unused type
        '{"result":null,"id":1}',  # a reply to a request
    ]
    fake.garbage(*bad[:4])
    fake.tick(2)
    fake.garbage(*bad[4:], *harmless)
    fake.tick(2)
    wait_truth(fake, w)
    total = 10 + len(bad) + len(harmless) + 8
    s = wait_status(w, lambda s: s.messages == total, "every frame counted")
    assert s.bad_messages == len(bad) == 8
    assert (s.state, s.reconnects, s.resyncs) == ("live", 0, 0)
    assert fake.handshakes == 1
    assert fake.snapshot_requests == {BTC: 1, ETH: 1}
    assert [view(w, x).resyncs for x in SYMBOLS] == [0, 0]


def test_non_finite_price_is_a_bad_message(fake: FakeBinance, make_worker: WorkerFactory) -> None:
    w = make_worker(fake)
    wait_connected(fake, w, 1)
    fake.tick(2)
    wait_truth(fake, w)
    update_id = fake.truth(BTC)[2]
    fake.send_raw({"stream": "btcusdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": 1, "s": BTC, "U": update_id + 1, "u": update_id + 1,
        "b": [], "a": [["NaN", "1.00000000"]]}})
    fake.tick(2)
    wait_status(w, lambda s: s.messages == 4 + 1 + 4, "every frame counted")
    assert status(w).bad_messages == 1  # not a level: never in the book, never shown
    wait_truth(fake, w)  # published within the coalescing interval
    assert fake.snapshot_requests == {BTC: 1, ETH: 1}


# -- 6, 7. refusals ---------------------------------------------------------------------------


def assert_simulated(worker: Worker) -> None:
    for symbol in SYMBOLS:
        v = view(worker, symbol)
        assert v.source == "simulated"
        assert v.synced
        assert v.bids and v.asks
        assert v.bids[0][0] < v.asks[0][0]
        assert [p for p, _ in v.bids] == sorted((p for p, _ in v.bids), reverse=True)
        assert [p for p, _ in v.asks] == sorted(p for p, _ in v.asks)


@pytest.mark.parametrize(("code", "reason"), [(451, "restricted location"), (403, "forbidden")])
def test_refused_handshake_blocks_and_falls_back_to_simulated(
    fake: FakeBinance, make_worker: WorkerFactory, code: int, reason: str
) -> None:
    fake.refuse(code)
    w = make_worker(fake)
    s = wait_status(w, lambda s: s.state == "blocked", "blocked")
    blocked_at = time.monotonic()
    assert s.detail == f"HTTP {code}: {reason} — showing SIMULATED data"
    retry_in = s.next_retry_in(time.time())
    assert retry_in is not None and 1.0 < retry_in <= FAST.blocked_retry
    wait_for(
        lambda: all(view(w, x).source == "simulated" and view(w, x).synced for x in SYMBOLS),
        timeout=5.0,
        what="simulated books",
    )
    assert_simulated(w)
    assert status(w).source == "simulated"
    # no hammering: nothing more until blocked_retry has passed
    time.sleep(max(0.0, BLOCKED_WINDOW - (time.monotonic() - blocked_at)))
    assert (fake.handshakes, fake.refused_handshakes) == (1, 1)
    assert fake.snapshot_requests == {BTC: 0, ETH: 0}
    assert_simulated(w)

    fake.refuse(None)
    wait_for(lambda: fake.opened == 1 and fake.connections() == 1, timeout=5.0, what="retry")
    retried_after = time.monotonic() - blocked_at
    assert retried_after >= FAST.blocked_retry - 0.3, retried_after
    wait_connected(fake, w, 1)
    fake.tick(4)
    wait_truth(fake, w)
    assert fake.handshakes == 2
    for symbol in SYMBOLS:
        assert view(w, symbol).source == "live"
    s = status(w)
    assert (s.state, s.source) == ("live", "live")


def test_refused_handshake_without_fallback_shows_no_data(
    fake: FakeBinance, make_worker: WorkerFactory
) -> None:
    fake.refuse(451)
    w = make_worker(fake, fallback="none")
    s = wait_status(w, lambda s: s.state == "blocked", "blocked")
    assert s.detail == "HTTP 451: restricted location — no data (MARKET_FALLBACK=none)"
    assert s.source == "live"
    time.sleep(0.5)  # long enough for simulated books to appear if they were (wrongly) started
    for symbol in SYMBOLS:
        v = view(w, symbol)
        assert (v.source, v.synced, v.detail) == ("live", False, "HTTP 451: restricted location")
        assert (v.bids, v.asks, v.book_updates, v.trades_seen) == ((), (), 0, 0)
    s = status(w)
    assert (s.state, s.source, s.messages) == ("blocked", "live", 0)
    assert (fake.handshakes, fake.snapshot_requests) == (1, {BTC: 0, ETH: 0})


def test_refused_snapshot_blocks_too(fake_btc: FakeBinance, make_worker: WorkerFactory) -> None:
    fake_btc.rest_refuse_status = 451  # the stream is accepted, the REST snapshot is not
    w = make_worker(fake_btc, (BTC,))
    s = wait_status(w, lambda s: s.state == "blocked", "blocked")
    blocked_at = time.monotonic()
    assert s.detail == "HTTP 451: restricted location — showing SIMULATED data"
    wait_for(
        lambda: view(w, BTC).source == "simulated" and view(w, BTC).synced, 5.0, what="simulated"
    )
    wait_for(lambda: fake_btc.connections() == 0, 5.0, what="the stream closed while blocked")
    time.sleep(max(0.0, BLOCKED_WINDOW - (time.monotonic() - blocked_at)))
    assert (fake_btc.handshakes, fake_btc.snapshot_requests) == (1, {BTC: 1})
    assert view(w, BTC).source == "simulated"

    fake_btc.rest_refuse_status = None
    wait_connected(fake_btc, w, 2, BTC, snapshots=2)
    fake_btc.tick(4)
    wait_truth(fake_btc, w, BTC)
    assert view(w, BTC).source == "live"
    assert fake_btc.handshakes == 2
    assert status(w).state == "live"


def test_no_snapshot_retries_while_blocked(fake: FakeBinance, make_worker: WorkerFactory) -> None:
    """A refusal on one symbol's snapshot stops the other symbols' snapshot retries too."""
    fake.rest_status.update({BTC: 451, ETH: 500})
    timing = replace(FAST, snapshot_retry_initial=0.2)
    w = make_worker(fake, timing=timing)
    wait_status(w, lambda s: s.state == "blocked", "blocked")
    blocked_at = time.monotonic()
    wait_for(lambda: fake.connections() == 0, 5.0, what="the stream closed while blocked")
    time.sleep(max(0.0, BLOCKED_WINDOW - (time.monotonic() - blocked_at)))
    assert fake.snapshot_requests == {BTC: 1, ETH: 1}  # ETH's 500 is not retried while blocked
    assert fake.handshakes == 1
    assert_simulated(w)


# -- 8. backoff -------------------------------------------------------------------------------


def test_backoff_values_are_exact() -> None:
    def take(gen: Iterator[float], n: int) -> list[float]:
        return [next(gen) for _ in range(n)]

    assert take(backoff(rng=lambda: 0.0), 8) == [1, 2, 4, 8, 16, 30, 30, 30]
    assert take(backoff(rng=lambda: 1.0), 7) == pytest.approx([0.8, 1.6, 3.2, 6.4, 12.8, 24, 24])
    assert take(backoff(0.05, 2.0, 0.4, 0.0), 6) == [0.05, 0.1, 0.2, 0.4, 0.4, 0.4]
    assert take(backoff(0.5, 3.0, 10.0, 0.5, rng=lambda: 0.5), 5) == [0.375, 1.125, 3.375, 7.5, 7.5]


@given(
    initial=st.floats(0.001, 100.0),
    factor=st.floats(1.0, 4.0),
    cap=st.floats(0.001, 100.0),
    jitter=st.floats(0.0, 1.0),
    draws=st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=30),
)
def test_backoff_never_exceeds_the_cap(
    initial: float, factor: float, cap: float, jitter: float, draws: list[float]
) -> None:
    it = iter(draws)
    gen = backoff(initial, factor, cap, jitter, rng=lambda: next(it))
    delays = [next(gen) for _ in draws]
    assert all(0.0 <= d <= cap for d in delays), delays
    assert all(d >= (1 - jitter) * min(initial, cap) * (1 - 1e-9) for d in delays), delays


def test_refused_tcp_connections_back_off_exponentially(
    fake: FakeBinance, make_worker: WorkerFactory
) -> None:
    sock = closed_port()
    try:
        port = sock.getsockname()[1]
        w = make_worker(fake, ws_url=f"ws://127.0.0.1:{port}")
        wait_for(lambda: len(rec(w).retry_delays()) >= 6, 5.0, what="6 retries")
        assert rec(w).retry_delays()[:6] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.4, 0.4], abs=0.01)
        s = status(w)
        assert s.state == "reconnecting"
        assert s.detail.startswith("network error: ")
        assert s.detail.endswith("; reconnecting in 0.4 s")
        assert (fake.handshakes, fake.snapshot_requests) == (0, {BTC: 0, ETH: 0})
    finally:
        sock.close()


def test_handshake_errors_back_off_and_a_healthy_connection_resets_the_delay(
    fake: FakeBinance, make_worker: WorkerFactory
) -> None:
    fake.refuse(500)
    w = make_worker(fake)
    wait_for(lambda: len(rec(w).retry_delays()) >= 5, 5.0, what="5 retries")
    assert rec(w).retry_delays()[:5] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.4], abs=0.01)
    s = status(w)
    assert s.state == "reconnecting"
    assert s.detail == "HTTP 500 at the handshake; reconnecting in 0.4 s"

    fake.refuse(None)
    wait_connected(fake, w, 1)
    fake.tick(2)  # data on this connection: it was healthy
    wait_truth(fake, w)
    failures = len(rec(w).retry_delays())
    assert failures == fake.refused_handshakes
    fake.refuse(500)
    fake.drop()
    wait_for(lambda: len(rec(w).retry_delays()) >= failures + 3, 5.0, what="3 more retries")
    # the healthy connection restarted the schedule: 0.05 again, then doubling again
    assert rec(w).retry_delays()[failures:failures + 3] == pytest.approx([0.05, 0.1, 0.2], abs=0.01)
    fake.refuse(None)
    wait_connected(fake, w, 2, snapshots=2)
    fake.tick(2)
    wait_truth(fake, w)


def test_handshake_timeout_is_retried(fake: FakeBinance, make_worker: WorkerFactory) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts; nobody ever answers the upgrade request
        port = silent.getsockname()[1]
        w = make_worker(fake, ws_url=f"ws://127.0.0.1:{port}", connection_timeout=0.2)
        wait_for(lambda: len(rec(w).retry_delays()) >= 2, 5.0, what="2 timed-out handshakes")
        first = [x for x in rec(w).statuses_seen() if x.reconnects == 1][0]
        assert (first.state, first.detail) == ("reconnecting", "timed out; reconnecting in 0.1 s")
        assert rec(w).retry_delays()[:2] == pytest.approx([0.05, 0.1], abs=0.01)
    finally:
        silent.close()


# -- 9. reconnects the exchange asks for ------------------------------------------------------


def test_server_shutdown_event_reconnects_and_resyncs(
    fake: FakeBinance, make_worker: WorkerFactory
) -> None:
    w = make_worker(fake)
    wait_connected(fake, w, 1)
    fake.tick(3)
    wait_truth(fake, w)
    fake.send_raw(
        {"stream": "btcusdt@depth@100ms", "data": {"e": "serverShutdown", "E": 1_700_000_000_000}}
    )
    wait_connected(fake, w, 2, snapshots=2)
    fake.tick(3)
    wait_truth(fake, w)
    assert fake.handshakes == 2
    assert fake.snapshot_requests == {BTC: 2, ETH: 2}
    s = wait_status(w, lambda s: s.detail == "streaming", "streaming")
    assert (s.reconnects, s.resyncs, s.bad_messages) == (1, 0, 0)
    assert rec(w).reconnect_details() == [
        "the server announced a shutdown (serverShutdown); reconnecting in 0.1 s"
    ]


def test_max_connection_age_reconnects_proactively(
    fake: FakeBinance, make_worker: WorkerFactory
) -> None:
    timing = replace(FAST, max_connection_age=1.0)
    before_open = time.monotonic()
    w = make_worker(fake, timing=timing, stale_after=2.0)  # watchdog every 0.5 s, never silent
    wait_connected(fake, w, 1)
    wait_for(
        lambda: (fake.tick(1), fake.handshakes >= 2)[1], 4.0, interval=0.05, what="age reconnect"
    )
    age = time.monotonic() - before_open
    assert 1.0 <= age < 2.5, age
    aged = [x for x in rec(w).statuses_seen() if x.state == "reconnecting" and x.reconnects]
    assert aged[0].detail == (
        "connection reached its maximum age (Binance closes at 24 h); reconnecting in 0.1 s"
    )
    assert not any("watchdog" in x.detail for x in rec(w).statuses_seen())
    tick_until_truth(fake, w)
    assert status(w).bad_messages == 0


# -- 10. symbols ------------------------------------------------------------------------------


def test_unknown_symbol_on_rest_does_not_stop_the_others(
    fake_btc: FakeBinance, make_worker: WorkerFactory
) -> None:
    w = make_worker(fake_btc, (BTC, "NOPEUSDT"))
    wait_connected(fake_btc, w, 1, BTC)
    wait_for(lambda: fake_btc.invalid_requests == {"NOPEUSDT": 1}, 5.0, what="NOPEUSDT asked")
    wait_for(lambda: "not listed" in view(w, "NOPEUSDT").detail, 5.0, what="NOPEUSDT detail")
    nope = view(w, "NOPEUSDT")
    assert nope.detail == "NOPEUSDT: not listed on Binance (Invalid symbol.)"
    assert (nope.synced, nope.bids, nope.asks) == (False, (), ())
    for _ in range(3):
        fake_btc.tick(2)
    wait_truth(fake_btc, w, BTC)
    time.sleep(0.3)  # an invalid symbol is not retried
    assert fake_btc.invalid_requests == {"NOPEUSDT": 1}
    assert fake_btc.snapshot_requests == {BTC: 1}
    assert status(w).state == "live"


@pytest.mark.parametrize("bad", ["BTC$", "BTC USDT", "", "ü", "A" * 21, "X"])
def test_invalid_symbols_are_refused_before_anything_is_sent(
    fake_btc: FakeBinance, make_worker: WorkerFactory, bad: str
) -> None:
    settings = Settings(symbols=(BTC, bad)).with_urls(
        BINANCE_WS_URL=fake_btc.ws_url, BINANCE_REST_URL=fake_btc.rest_url
    )
    with pytest.raises(InvalidSymbol):
        Worker(settings)
    w = make_worker(fake_btc, (BTC,))
    wait_connected(fake_btc, w, 1, BTC)
    with pytest.raises(InvalidSymbol):
        w.reconfigure(symbols=(BTC, bad))
    assert w.settings.symbols == (BTC,)
    time.sleep(0.2)  # nothing was sent for the refused configuration
    assert fake_btc.handshakes == 1
    assert (fake_btc.snapshot_requests, fake_btc.invalid_requests) == ({BTC: 1}, {})


def test_reconfigure_subscribes_and_unsubscribes_on_the_live_connection(
    fake: FakeBinance, make_worker: WorkerFactory
) -> None:
    w = make_worker(fake, (BTC,))
    wait_connected(fake, w, 1, BTC)
    assert w.reconfigure(symbols=("eth-usdt", "BTCUSDT")).symbols == (ETH, BTC)
    wait_for(lambda: fake.snapshot_requests == {BTC: 1, ETH: 1}, 5.0, what="ETH snapshot")
    wait_for(lambda: matches_truth(fake, w, ETH), 5.0, what="ETH synced")
    fake.tick(3)
    wait_truth(fake, w)
    assert fake.received == [
        {"method": "SUBSCRIBE", "params": ["ethusdt@depth@100ms", "ethusdt@trade", "ethusdt@ticker"], "id": 1}
    ]
    assert w.reconfigure(symbols=(ETH,)).symbols == (ETH,)
    wait_for(lambda: len(fake.received) == 2, 5.0, what="UNSUBSCRIBE")
    assert fake.received[1] == {
        "method": "UNSUBSCRIBE", "params": ["btcusdt@depth@100ms", "btcusdt@trade", "btcusdt@ticker"], "id": 2
    }
    fake.tick(2)
    wait_truth(fake, w, ETH)
    assert list(w.store.snapshot(series=False).markets) == [("binance", ETH)]
    s = wait_status(w, lambda s: s.symbols == (ETH,) and s.state == "live", "live on ETH only")
    assert (s.reconnects, s.bad_messages) == (0, 0)
    assert (fake.handshakes, fake.connections()) == (1, 1)  # no reconnect: the same connection


@pytest.mark.parametrize("exchange", ["mock", "bybit", "hyperliquid"])
def test_invalid_symbols_are_refused_on_every_exchange(
    fake_btc: FakeBinance, make_worker: WorkerFactory, exchange: str
) -> None:
    for bad in (("BTC$",), ("BTC USDT",), ()):
        with pytest.raises(InvalidSymbol):
            Worker(Settings(exchanges=(exchange,), symbols=bad))
    w = make_worker(fake_btc, (BTC,))
    wait_connected(fake_btc, w, 1, BTC)
    with pytest.raises(InvalidSymbol, match="only letters, digits and '-'"):
        w.reconfigure(exchange=exchange, symbols=("BTC$",))
    assert (w.settings.exchange, w.settings.symbols) == ("binance", (BTC,))
    time.sleep(0.2)  # the running feed was left alone
    assert (fake_btc.handshakes, fake_btc.connections()) == (1, 1)
    assert list(w.store.snapshot(series=False).markets) == [("binance", BTC)]


# -- 11. snapshot failures --------------------------------------------------------------------


def test_failed_snapshots_are_retried_with_backoff_one_at_a_time(
    fake_btc: FakeBinance, make_worker: WorkerFactory
) -> None:
    fake_btc.snapshot_failures = 3
    fake_btc.snapshot_delay = 0.05
    w = make_worker(fake_btc, (BTC,))
    wait_for(lambda: fake_btc.opened == 1, 5.0, what="connected")
    for _ in range(5):  # buffered while the snapshot keeps failing, applied after it
        fake_btc.tick(1)
    wait_for(lambda: fake_btc.snapshot_requests[BTC] == 4, 5.0, what="4 snapshot requests")
    wait_truth(fake_btc, w, BTC)
    fake_btc.tick(3)
    wait_truth(fake_btc, w, BTC)
    assert fake_btc.snapshot_requests == {BTC: 4}
    assert fake_btc.max_in_flight == {BTC: 1}
    times = fake_btc.snapshot_times[BTC]
    gaps = [b - a for a, b in zip(times, times[1:])]
    for gap, wait in zip(gaps, [0.05, 0.1, 0.2]):
        assert gap >= 0.05 + wait - 0.01, gaps  # the reply's delay, then the retry delay
    assert gaps[2] > gaps[0] + 0.1, gaps  # growing: 0.05 + 0.2 against 0.05 + 0.05
    assert [u.detail for u in rec(w).unsynced_seen(BTC)][1:] == [
        f"snapshot failed (HTTP 500: internal error); retrying in {d:.1f} s"
        for d in (0.05, 0.1, 0.2)
    ]
    assert view(w, BTC).resyncs == 0


def test_one_snapshot_request_in_flight_per_symbol_across_a_reconnect(
    fake_btc: FakeBinance, make_worker: WorkerFactory
) -> None:
    fake_btc.snapshot_delay = 0.6
    w = make_worker(fake_btc, (BTC,))
    wait_for(lambda: fake_btc.in_flight[BTC] == 1, 5.0, what="a slow snapshot request")
    fake_btc.drop()  # reconnect while the first request is still being answered
    wait_for(lambda: fake_btc.opened == 2, 5.0, what="reconnected")
    fake_btc.snapshot_delay = 0.0
    wait_connected(fake_btc, w, 2, BTC, snapshots=2)
    fake_btc.tick(3)
    wait_truth(fake_btc, w, BTC)
    assert fake_btc.max_in_flight == {BTC: 1}
    assert fake_btc.snapshot_requests == {BTC: 2}


# -- 12. stop ---------------------------------------------------------------------------------


def test_stop_is_idempotent_and_joins_the_thread(
    fake: FakeBinance, make_worker: WorkerFactory
) -> None:
    w = make_worker(fake)
    wait_connected(fake, w, 1)
    thread = w._thread
    assert thread is not None and thread.is_alive() and w.running
    w.stop()
    assert not thread.is_alive()
    assert not w.running
    assert status(w).state == "stopped"
    assert status(w).next_retry_at is None
    w.stop()  # again: nothing happens, nothing raises
    assert not thread.is_alive()
    wait_for(lambda: fake.connections() == 0, 5.0, what="the connection closed")
    assert fake.handshakes == 1
    Worker(Settings(symbols=(BTC,))).stop()  # never started: nothing to do


def test_stop_does_not_wait_for_a_hanging_snapshot(
    fake_btc: FakeBinance, make_worker: WorkerFactory
) -> None:
    fake_btc.snapshot_delay = 4.0
    w = make_worker(fake_btc, (BTC,))
    wait_for(lambda: fake_btc.in_flight[BTC] == 1, 5.0, what="a hanging snapshot request")
    t0 = time.monotonic()
    w.stop(timeout=2.0)
    assert time.monotonic() - t0 < 1.0
    assert w._thread is not None and not w._thread.is_alive()
    assert status(w).state == "stopped"


# -- a hostile endpoint cannot make us buffer more than a venue's largest real message -----------


def test_a_frame_over_the_venues_cap_closes_that_connection_only(
    fake: FakeBinance, make_worker: WorkerFactory
) -> None:
    w = make_worker(fake)
    wait_connected(fake, w, 1)
    fake.tick(2)
    wait_truth(fake, w)
    oversized = '{"stream":"btcusdt@depth@100ms","data":"' + "x" * BinanceSession.max_frame_bytes
    fake.garbage(oversized + '"}')  # 1 MiB and a bit: refused by the socket, never buffered
    wait_connected(fake, w, 2, snapshots=2)  # dropped (1009, message too big), connected again
    s = next(x for x in rec(w).statuses_seen() if x.state == "reconnecting" and x.reconnects)
    assert s.detail.startswith("refused an oversized frame (code 1009: "), s.detail
    fake.tick(3)
    wait_truth(fake, w)  # the books are rebuilt from fresh snapshots
    assert fake.snapshot_requests == {BTC: 2, ETH: 2}


def test_a_rest_body_over_the_venues_cap_is_refused_and_retried(
    fake_btc: FakeBinance, make_worker: WorkerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(BinanceSession, "max_rest_bytes", 200)  # the snapshot is ~2 KB
    w = make_worker(fake_btc, (BTC,))
    wait_for(lambda: fake_btc.snapshot_requests[BTC] >= 2, 5.0, what="a retried snapshot")
    details = [u.detail for u in rec(w).unsynced_seen(BTC)]
    assert any(
        d.startswith("snapshot failed (REST response over 200 bytes: refused); retrying in")
        for d in details
    ), details
    assert not view(w, BTC).synced
