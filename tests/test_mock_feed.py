"""The simulated exchange: reproducible, plausible, and always a valid book stream."""

from __future__ import annotations

import itertools
import statistics
from decimal import Decimal

import pytest

from market.book import OrderBook
from market.events import BookDelta, BookSnapshot, Event, Ticker, Trade
from market.sync import SequencedSync
from market.venues.mock import KNOWN_PRICES, MockExchange, base_asset, start_price

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


def test_start_gives_one_snapshot_then_one_ticker_per_symbol() -> None:
    ex = MockExchange(SYMBOLS, seed=1)
    assert ex.symbols == SYMBOLS
    events = ex.start(T0)
    n = len(SYMBOLS)
    assert [type(e) for e in events] == [BookSnapshot] * n + [Ticker] * n
    assert [e.symbol for e in events] == list(SYMBOLS) * 2
    for event in events:
        assert isinstance(event, (BookSnapshot, Ticker))
        assert event.exchange == "mock"
        assert event.received_at == T0
        assert event.ts_ms == int(T0 * 1000)
    for snap, ticker in zip(events[:n], events[n:], strict=True):
        assert isinstance(snap, BookSnapshot) and isinstance(ticker, Ticker)
        assert (ticker.bid, ticker.ask) == (snap.bids[0][0], snap.asks[0][0])
        assert ticker.bid < ticker.last < ticker.ask  # no trade yet: the last is the mid


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
    for snap in batches[0][: len(SYMBOLS)]:
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
        if isinstance(snap, BookSnapshot):
            books[snap.symbol] = OrderBook(snap.symbol)
            books[snap.symbol].replace(snap.bids, snap.asks)
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
    symbols = tuple(f"SYM{i:03d}USDT" for i in range(100))
    batches = run(symbols, seed=9, seconds=2)
    assert {e.symbol for e in batches[0]} == set(symbols)
    for batch in batches[1:]:
        assert [e.symbol for e in batch if isinstance(e, BookDelta)] == list(symbols)


def test_one_hundred_made_up_symbols_get_distinct_plausible_prices() -> None:
    prices = [start_price(f"SYM{i:03d}USDT") for i in range(100)]
    assert len(set(prices)) == 100
    assert all(0.1 <= p <= 1000 for p in prices)
    assert start_price("SYM007USDT") == start_price("SYM007-USDC")  # by base asset, stable
    # the well-known ones stay at their realistic price, whatever the quote
    assert start_price("BTCUSDT") == start_price("BTC-USD") == KNOWN_PRICES["BTC"] == 65_000.0
    assert start_price("ETHUSDC") == 3_200.0
    assert start_price("PEPEUSDT") == 0.00001
    assert base_asset("sol-usdt") == "SOL"


# -- 24 h tickers -------------------------------------------------------------------------------


def test_tickers_come_about_once_a_second_per_market() -> None:
    symbols = tuple(f"SYM{i:03d}USDT" for i in range(20))
    batches = run(symbols, seed=2, seconds=30)
    times: dict[str, list[float]] = {s: [] for s in symbols}
    for batch in batches:
        for event in batch:
            if isinstance(event, Ticker):
                times[event.symbol].append(event.received_at)
    for symbol, seen in times.items():
        assert seen[0] == T0  # one in start()
        assert 30 <= len(seen) <= 32, (symbol, len(seen))
        gaps = [b - a for a, b in itertools.pairwise(seen[1:])]
        assert all(0.99 < g < 1.11 for g in gaps), (symbol, gaps)  # 1 s, rounded up to a step
    # staggered: the markets do not all tick in the same step
    assert len({seen[1] for seen in times.values()}) > 5


def test_ticker_figures_follow_the_book_and_the_trades() -> None:
    """last = the last trade; bid/ask = the book's best; high/low cover the 24 h open and every
    trade; each volume grows by exactly the trades in between; change from the fixed open."""
    symbols = ("BTCUSDT", "ETHUSDT", "FOOBAR", "SYM042USDT")
    batches = run(symbols, seed=6, seconds=60)
    books = {s: OrderBook(s) for s in symbols}
    last: dict[str, Ticker] = {}
    traded: dict[str, list[Trade]] = {s: [] for s in symbols}
    opens: dict[str, float] = {}
    seen: dict[str, list[float]] = {s: [] for s in symbols}
    checked = 0
    for batch in batches:
        for event in batch:
            if isinstance(event, BookSnapshot):
                books[event.symbol].replace(event.bids, event.asks)
            elif isinstance(event, BookDelta):
                books[event.symbol].apply(event.bids, event.asks)
            elif isinstance(event, Trade):
                traded[event.symbol].append(event)
                seen[event.symbol].append(event.price)
            elif isinstance(event, Ticker):
                sym = event.symbol
                t = event
                assert None not in (t.last, t.change_pct, t.volume, t.quote_volume, t.high,
                                    t.low, t.bid, t.ask)  # fmt: skip
                assert (t.bid, t.ask) == (books[sym].best_bid()[0], books[sym].best_ask()[0])  # type: ignore[index]
                trades = traded[sym]
                prev = last.get(sym)
                if trades:
                    assert t.last == trades[-1].price
                elif prev is not None:
                    assert t.last == prev.last
                open_24h = t.last / (1 + t.change_pct / 100)  # type: ignore[operator]
                if sym in opens:
                    assert open_24h == pytest.approx(opens[sym], rel=1e-5)  # a fixed open
                else:
                    opens[sym] = open_24h
                    assert 0.97 * 0.92 <= open_24h / start_price(sym) <= 1.03 * 1.08
                assert t.low <= min([open_24h, t.last, *seen[sym]]) + 1e-9  # type: ignore[operator]
                assert t.high >= max([open_24h, t.last, *seen[sym]]) - 1e-9  # type: ignore[operator]
                if prev is not None:
                    assert t.volume == pytest.approx(prev.volume + sum(x.qty for x in trades))
                    assert t.quote_volume == pytest.approx(
                        prev.quote_volume + sum(x.price * x.qty for x in trades)
                    )
                    assert t.high >= prev.high and t.low <= prev.low  # type: ignore[operator]
                    checked += 1
                last[sym] = t
                traded[sym] = []
    assert checked >= 4 * 55
    # every market its own figures
    assert len({t.change_pct for t in last.values()}) == len(symbols)
    assert len({round(t.quote_volume or 0) for t in last.values()}) == len(symbols)


def test_ticker_figures_are_plausible_for_100_markets() -> None:
    symbols = (*(f"SYM{i:03d}USDT" for i in range(100)), "BTCUSDT", "ETHUSDT")
    start = MockExchange(symbols, seed=12).start(T0)
    tickers = [e for e in start if isinstance(e, Ticker)]
    assert len(tickers) == len(symbols)
    for t in tickers:
        assert t.change_pct is not None and -8.5 <= t.change_pct <= 8.5
        assert t.low is not None and t.high is not None and t.last is not None
        assert 0 < t.low < t.last < t.high
        assert t.quote_volume is not None and t.volume is not None
        assert 1e6 <= t.quote_volume <= 2e9
        # base volume x a price between the 24 h low and high gives the quote volume
        assert t.low <= t.quote_volume / t.volume <= t.high
    changes = [t.change_pct for t in tickers]
    assert min(changes) < -4 and max(changes) > 4  # spread over the range: gainers and losers
    btc = next(t for t in tickers if t.symbol == "BTCUSDT")
    assert btc.quote_volume >= 1e8  # type: ignore[operator]  # a major trades hundreds of millions
