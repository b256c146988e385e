"""The simulated exchange: reproducible, plausible, and always a valid book stream."""

from __future__ import annotations

import itertools
import statistics
from decimal import Decimal

import pytest

from market.book import OrderBook
from market.events import BookDelta, BookSnapshot, Event, Trade
from market.feeds.mock import MockExchange
from market.sync import SequencedSync

T0 = 1_700_000_000.0
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "FOOBAR", "XYZ-USD", "QQQ")


def run(
    symbols: tuple[str, ...], seed: int | None, seconds: float = 100.0, dt: float = 0.1
) -> list[list[Event]]:
    """``start`` then ``seconds / dt`` steps of simulated time; one list of events per call."""
    ex = MockExchange(symbols, seed)
    out = [ex.start(T0)]
    for i in range(1, round(seconds / dt) + 1):
        out.append(ex.step(T0 + i * dt))
    return out


def test_start_gives_one_snapshot_per_symbol() -> None:
    ex = MockExchange(SYMBOLS, seed=1)
    assert ex.symbols == SYMBOLS
    events = ex.start(T0)
    assert [type(e) for e in events] == [BookSnapshot] * len(SYMBOLS)
    assert [e.symbol for e in events] == list(SYMBOLS)
    for snap in events:
        assert isinstance(snap, BookSnapshot)
        assert snap.exchange == "mock"
        assert snap.received_at == T0
        assert snap.ts_ms == int(T0 * 1000)


def test_same_seed_same_stream() -> None:
    assert run(SYMBOLS, seed=7, seconds=20) == run(SYMBOLS, seed=7, seconds=20)


def test_different_seeds_differ() -> None:
    a, b = run(SYMBOLS, seed=7, seconds=5), run(SYMBOLS, seed=8, seconds=5)
    assert a[0] != b[0]
    assert a[1:] != b[1:]
    assert run(("BTCUSDT",), seed=None, seconds=1) != run(("BTCUSDT",), seed=None, seconds=1)


def test_book_stream_is_valid_and_never_crossed() -> None:
    """Every delta chains on the previous id, applies through SequencedSync (which raises on a
    gap or a crossed book), and leaves ~50 levels a side on the tick grid."""
    batches = run(SYMBOLS, seed=3, seconds=100)
    syncs = {s: SequencedSync(OrderBook(s)) for s in SYMBOLS}
    last_id: dict[str, int] = {}
    ticks: dict[str, Decimal] = {}
    for snap in batches[0]:
        assert isinstance(snap, BookSnapshot)
        assert syncs[snap.symbol].on_snapshot(snap)
        last_id[snap.symbol] = snap.update_id
        ticks[snap.symbol] = tick_of(snap)
    assert ticks["BTCUSDT"] == Decimal("1")  # ~0.1-1 bp of the price, a power of ten
    assert ticks["ETHUSDT"] == Decimal("0.1")
    assert ticks["SOLUSDT"] == Decimal("0.01")
    for batch in batches[1:]:
        for event in batch:
            if not isinstance(event, BookDelta):
                continue
            sym = event.symbol
            assert event.prev_id == last_id[sym]
            assert event.first_id == event.last_id == last_id[sym] + 1
            last_id[sym] = event.last_id
            assert syncs[sym].on_delta(event) is True
            book = syncs[sym].book
            bids, asks = book.top(1000)
            assert 45 <= len(bids) <= 55 and 45 <= len(asks) <= 55
            assert bids[0][0] < asks[0][0]
            for price, qty in bids + asks:
                assert qty > 0
                assert on_grid(price, ticks[sym]), (sym, price)
    for sync in syncs.values():
        assert sync.synced
        assert sync.book.update_id == 1001  # the snapshot (1), then 1000 deltas


def tick_of(snap: BookSnapshot) -> Decimal:
    """The smallest gap between adjacent levels of a fresh (contiguous) book."""
    prices = sorted(Decimal(repr(p)) for p, _ in snap.bids + snap.asks)
    return min(b - a for a, b in itertools.pairwise(prices))


def on_grid(price: float, tick: Decimal) -> bool:
    return Decimal(repr(price)) % tick == 0


def test_trades_hit_the_touch() -> None:
    """A buy lifts the best ask, a sell hits the best bid, of the book as of that step."""
    batches = run(("BTCUSDT", "FOOBAR"), seed=5, seconds=30)
    books = {}
    for snap in batches[0]:
        books[snap.symbol] = OrderBook(snap.symbol)
        books[snap.symbol].replace(snap.bids, snap.asks)  # type: ignore[union-attr]
    seen = 0
    for batch in batches[1:]:
        for event in batch:
            if isinstance(event, BookDelta):
                books[event.symbol].apply(event.bids, event.asks, event.last_id)
            elif isinstance(event, Trade):
                book = books[event.symbol]
                best_bid, best_ask = book.best_bid(), book.best_ask()
                assert best_bid is not None and best_ask is not None
                expected = best_ask[0] if event.side == "buy" else best_bid[0]
                assert event.price == expected
                assert event.qty > 0
                assert event.exchange == "mock"
                seen += 1
    assert seen > 100


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("dt", [0.1, 0.5])
def test_trade_rates_per_symbol(seed: int, dt: float) -> None:
    """5-20 trades a second per market over simulated time, whatever the step. Each market's
    rate is drawn in [5, 20]; over 100 s a Poisson count at rate 5 has a st.dev. of about
    0.22 /s, so 1 /s of slack either side is over 4 st.dev."""
    batches = run(SYMBOLS, seed=seed, seconds=100, dt=dt)
    counts = dict.fromkeys(SYMBOLS, 0)
    for batch in batches:
        for event in batch:
            if isinstance(event, Trade):
                counts[event.symbol] += 1
    for symbol, n in counts.items():
        assert 4.0 <= n / 100 <= 21.0, (symbol, n / 100)


def test_trade_ids_and_times() -> None:
    batches = run(("ETHUSDT",), seed=2, seconds=10)
    trades = [e for batch in batches for e in batch if isinstance(e, Trade)]
    assert [int(t.trade_id) for t in trades] == list(range(1, len(trades) + 1))
    times = [t.ts_ms for t in trades]
    assert times == sorted(times)
    assert T0 * 1000 < times[0] <= times[-1] <= (T0 + 10) * 1000


def test_occasional_large_trades() -> None:
    """Whales of 20-60x the usual size exist but are rare. Without them, sizes are lognormal
    (sigma 1) and a trade above 20x the median has probability P(Z > ln 20) ≈ 0.13 %; with
    ~2 % whales the share is about 1.3 %."""
    batches = run(SYMBOLS, seed=11, seconds=100)
    large = total = 0
    for symbol in SYMBOLS:
        sizes = [
            e.qty for batch in batches for e in batch if isinstance(e, Trade) and e.symbol == symbol
        ]
        median = statistics.median(sizes)
        large += sum(q >= 20 * median for q in sizes)
        total += len(sizes)
    assert total > 3000
    assert 0.005 <= large / total <= 0.05, (large, total)


def mids(symbols: tuple[str, ...], seed: int, seconds: float = 100.0) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {s: [] for s in symbols}
    books = {s: OrderBook(s) for s in symbols}
    for batch in run(symbols, seed=seed, seconds=seconds):
        for event in batch:
            if isinstance(event, (BookSnapshot, BookDelta)):
                book = books[event.symbol]
                if isinstance(event, BookSnapshot):
                    book.replace(event.bids, event.asks)
                else:
                    book.apply(event.bids, event.asks)
                bid, ask = book.best_bid(), book.best_ask()
                assert bid is not None and ask is not None
                out[event.symbol].append((bid[0] + ask[0]) / 2)
    return out


def test_well_known_symbols_have_plausible_prices() -> None:
    path = mids(("BTCUSDT", "ETHUSDT", "DOGEUSDT", "SOL-USDC"), seed=4)
    assert all(10_000 <= m < 100_000 for m in path["BTCUSDT"])  # tens of thousands
    assert all(1_000 <= m < 10_000 for m in path["ETHUSDT"])
    assert all(0.01 <= m < 1 for m in path["DOGEUSDT"])
    assert all(50 <= m < 500 for m in path["SOL-USDC"])


def test_unknown_symbols_are_positive_stable_and_distinct() -> None:
    unknown = ("FOOBAR", "XYZ-USD", "QQQ", "ZZTOP", "A1B2C3", "NOPE-EUR")
    starts: dict[str, list[float]] = {s: [] for s in unknown}
    for seed in (1, 2, 3):
        path = mids(unknown, seed=seed)
        for symbol, series in path.items():
            assert all(m > 0 for m in series)
            # a random walk, not a runaway: within ±10 % of where it started over 100 s
            assert max(series) <= 1.1 * series[0] and min(series) >= 0.9 * series[0], symbol
            starts[symbol].append(series[0])
    for symbol, values in starts.items():
        # a stable price per symbol: seeds move it by a few percent at most
        assert max(values) / min(values) < 1.07, (symbol, values)
    typical = {s: statistics.median(v) for s, v in starts.items()}
    assert len({round(v, 6) for v in typical.values()}) == len(unknown)  # different markets


def test_many_symbols() -> None:
    symbols = tuple(f"SYM{i}USDT" for i in range(40))
    batches = run(symbols, seed=9, seconds=2)
    assert {e.symbol for e in batches[0]} == set(symbols)
    for batch in batches[1:]:
        assert [e.symbol for e in batch if isinstance(e, BookDelta)] == list(symbols)
