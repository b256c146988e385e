"""Book synchronisation: Binance's diff + snapshot procedure, and sequenced snapshot/delta feeds."""

from __future__ import annotations

import random

import pytest

from market.book import OrderBook
from market.errors import CrossedBook, SequenceGap
from market.events import BookDelta, BookSnapshot, Levels
from market.sync import SnapshotSync, SequencedSync

SYMBOL = "BTCUSDT"


def delta(
    first: int, last: int, bids: Levels = (), asks: Levels = (), prev: int | None = None
) -> BookDelta:
    return BookDelta("binance", SYMBOL, bids, asks, first_id=first, last_id=last, prev_id=prev)


def snapshot(update_id: int, bids: Levels, asks: Levels) -> BookSnapshot:
    return BookSnapshot("binance", SYMBOL, bids, asks, update_id=update_id)


SNAP_100 = snapshot(100, bids=((10.0, 1.0), (9.0, 2.0)), asks=((11.0, 3.0), (12.0, 4.0)))


def binance_sync() -> SnapshotSync:
    return SnapshotSync(OrderBook(SYMBOL))


# -- SnapshotSync ---------------------------------------------------------------------------------


def test_diffs_are_buffered_until_the_snapshot() -> None:
    sync = binance_sync()
    assert sync.on_delta(delta(90, 95, bids=((10.5, 1.0),))) is False
    assert sync.on_delta(delta(96, 99)) is False
    assert sync.buffered == 2
    assert not sync.synced
    assert sync.awaiting_snapshot
    assert sync.book.top(5) == ((), ())  # nothing applied before the snapshot


def test_snapshot_drops_old_diffs_and_applies_the_bracketing_one_then_the_rest() -> None:
    sync = binance_sync()
    sync.on_delta(delta(95, 98, bids=((10.0, 50.0),)))  # u <= 100: dropped
    sync.on_delta(delta(99, 100, asks=((11.0, 60.0),)))  # u == 100: dropped
    sync.on_delta(delta(101, 103, bids=((10.0, 5.0),), asks=((11.5, 7.0),)))  # brackets 101
    sync.on_delta(delta(104, 104, bids=((9.0, 0.0),)))
    assert sync.on_snapshot(SNAP_100) is True
    assert sync.synced
    assert not sync.awaiting_snapshot
    assert sync.buffered == 0
    assert sync.book.update_id == 104
    assert sync.book.top(10) == (
        ((10.0, 5.0),),
        ((11.0, 3.0), (11.5, 7.0), (12.0, 4.0)),
    )


def test_first_applied_diff_may_start_before_the_snapshot() -> None:
    # U <= lastUpdateId+1 <= u: the diff straddles the snapshot; its levels are absolute, so
    # applying the part the snapshot already holds is harmless
    sync = binance_sync()
    sync.on_delta(delta(98, 102, bids=((10.0, 8.0),)))
    assert sync.on_snapshot(SNAP_100)
    assert sync.book.update_id == 102
    assert sync.book.best_bid() == (10.0, 8.0)


def test_snapshot_with_an_empty_buffer_then_live_diffs() -> None:
    sync = binance_sync()
    assert sync.on_snapshot(SNAP_100)
    assert sync.book.update_id == 100
    assert sync.on_delta(delta(100, 100, bids=((10.0, 99.0),))) is False  # u <= bookId: ignored
    assert sync.on_delta(delta(100, 101, bids=((10.0, 6.0),))) is True  # brackets 101
    assert sync.on_delta(delta(102, 105, asks=((11.0, 0.0), (13.0, 1.0)))) is True
    assert sync.book.update_id == 105
    assert sync.book.top(5) == (((10.0, 6.0), (9.0, 2.0)), ((12.0, 4.0), (13.0, 1.0)))


def test_first_live_diff_after_lastupdateid_plus_one_is_a_gap() -> None:
    sync = binance_sync()
    sync.on_snapshot(SNAP_100)
    with pytest.raises(SequenceGap):
        sync.on_delta(delta(102, 103))  # 101 was never seen


def test_later_diffs_already_in_the_book_are_ignored() -> None:
    sync = binance_sync()
    sync.on_snapshot(SNAP_100)
    sync.on_delta(delta(101, 110, bids=((10.0, 1.5),)))
    before = sync.book.levels()
    assert sync.on_delta(delta(105, 108, bids=((10.0, 77.0),))) is False
    assert sync.on_delta(delta(110, 110, asks=((11.0, 0.0),))) is False
    assert sync.book.levels() == before
    assert sync.book.update_id == 110


def test_gap_raises_discards_the_book_and_keeps_the_gap_diff_as_the_new_buffer() -> None:
    sync = binance_sync()
    sync.on_snapshot(SNAP_100)
    sync.on_delta(delta(101, 104))
    gap = delta(106, 107, bids=((9.5, 4.0),))  # 105 is missing
    with pytest.raises(SequenceGap) as info:
        sync.on_delta(gap)
    assert info.value.symbol == SYMBOL
    assert "105" in str(info.value) and "106" in str(info.value)
    assert not sync.synced
    assert sync.awaiting_snapshot
    assert sync.book.top(5) == ((), ())
    assert sync.buffered == 1
    # the next diffs are buffered behind the gap diff, and a fresh snapshot uses all of them
    assert sync.on_delta(delta(108, 108, asks=((11.0, 2.5),))) is False
    assert sync.on_snapshot(snapshot(105, bids=((10.0, 1.0),), asks=((11.0, 3.0),)))
    assert sync.book.update_id == 108
    assert sync.book.top(5) == (((10.0, 1.0), (9.5, 4.0)), ((11.0, 2.5),))


def test_snapshot_older_than_the_buffer_is_refused_and_the_buffer_kept() -> None:
    sync = binance_sync()
    sync.on_delta(delta(110, 112, bids=((10.0, 9.0),)))
    sync.on_delta(delta(113, 113, asks=((12.0, 0.0),)))
    assert sync.on_snapshot(SNAP_100) is False  # 101 < 110: updates 101..109 are unknown
    assert not sync.synced
    assert sync.awaiting_snapshot
    assert sync.buffered == 2
    assert sync.book.top(5) == ((), ())
    newer = snapshot(111, bids=((10.0, 1.0),), asks=((11.0, 3.0), (12.0, 4.0)))
    assert sync.on_snapshot(newer) is True  # 110 <= 112 <= 112: the first diff brackets it
    assert sync.book.update_id == 113
    assert sync.book.top(5) == (((10.0, 9.0),), ((11.0, 3.0),))


def test_snapshot_exactly_one_before_the_buffer_is_accepted() -> None:
    sync = binance_sync()
    sync.on_delta(delta(101, 101, bids=((10.0, 3.0),)))
    assert sync.on_snapshot(SNAP_100) is True
    assert sync.book.update_id == 101
    assert sync.book.best_bid() == (10.0, 3.0)


def test_a_hole_inside_the_buffer_keeps_the_diffs_after_it() -> None:
    # buffered: 101-102, then 105-106 (103-104 lost), then 107
    sync = binance_sync()
    sync.on_delta(delta(101, 102, bids=((10.0, 1.25),)))
    sync.on_delta(delta(105, 106, bids=((9.5, 2.0),)))
    sync.on_delta(delta(107, 107, asks=((11.5, 3.0),)))
    with pytest.raises(SequenceGap):
        sync.on_snapshot(SNAP_100)
    assert not sync.synced
    assert sync.book.top(5) == ((), ())
    # a snapshot taken at 106 must still get 107 applied from what was buffered
    assert sync.on_snapshot(snapshot(106, bids=((10.0, 1.0),), asks=((11.0, 1.0),)))
    assert sync.book.update_id == 107
    assert sync.book.top(5) == (((10.0, 1.0),), ((11.0, 1.0), (11.5, 3.0)))


def test_crossed_diff_raises() -> None:
    sync = binance_sync()
    sync.on_snapshot(SNAP_100)
    with pytest.raises(CrossedBook) as info:
        sync.on_delta(delta(101, 101, bids=((11.0, 1.0),)))  # bid == best ask
    assert info.value.symbol == SYMBOL


def test_crossed_snapshot_raises() -> None:
    sync = binance_sync()
    with pytest.raises(CrossedBook):
        sync.on_snapshot(snapshot(100, bids=((12.0, 1.0),), asks=((11.0, 1.0),)))


def test_crossed_after_replaying_the_buffer_raises() -> None:
    sync = binance_sync()
    sync.on_delta(delta(101, 101, asks=((9.0, 1.0),)))
    with pytest.raises(CrossedBook):
        sync.on_snapshot(SNAP_100)


def test_reset_forgets_book_and_buffer() -> None:
    sync = binance_sync()
    sync.on_snapshot(SNAP_100)
    sync.on_delta(delta(101, 101))
    sync.reset()
    assert not sync.synced
    assert sync.awaiting_snapshot
    assert sync.book.top(5) == ((), ())
    assert sync.book.update_id == 0
    sync.on_delta(delta(200, 201))
    sync.reset()
    assert sync.buffered == 0


# -- the same stream, whole or in pieces ----------------------------------------------------------


def scripted_stream(seed: int, n: int = 120) -> tuple[list[BookSnapshot], list[BookDelta]]:
    """A truth on a 0.5 grid, and its diffs (1-3 ids each). ``images[k]`` is the exchange's
    book after the first k diffs (what a snapshot at that moment returns)."""
    rng = random.Random(seed)
    bids = {90.0 + 0.5 * i: float(rng.randint(1, 9)) for i in range(10)}  # 90.0 .. 94.5
    asks = {95.5 + 0.5 * i: float(rng.randint(1, 9)) for i in range(10)}  # 95.5 .. 100.0
    update_id = 1000
    images = [snapshot(update_id, tuple(bids.items()), tuple(asks.items()))]
    deltas = []
    for _ in range(n):
        changes: dict[str, list[tuple[float, float]]] = {"b": [], "a": []}
        for _ in range(rng.randint(1, 4)):
            side = rng.choice("ba")
            book = bids if side == "b" else asks
            price = (
                90.0 + 0.5 * rng.randint(0, 9) if side == "b" else 95.5 + 0.5 * rng.randint(0, 9)
            )
            qty = rng.choice([0.0, 0.0, float(rng.randint(1, 20))])
            if qty:
                book[price] = qty
            else:
                book.pop(price, None)
            changes[side].append((price, qty))
        first = update_id + 1
        update_id += rng.randint(1, 3)
        deltas.append(delta(first, update_id, tuple(changes["b"]), tuple(changes["a"])))
        images.append(snapshot(update_id, tuple(bids.items()), tuple(asks.items())))
    return images, deltas


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_whole_stream_or_in_pieces_gives_the_same_book(seed: int) -> None:
    images, deltas = scripted_stream(seed)
    final = images[-1]
    truth = (dict(final.bids), dict(final.asks))

    # 1. everything buffered, then the oldest snapshot
    whole = binance_sync()
    for d in deltas:
        whole.on_delta(d)
    assert whole.on_snapshot(images[0])
    assert whole.book.levels() == truth
    assert whole.book.update_id == final.update_id

    # 2. a snapshot taken after k diffs, arriving after j diffs were buffered (j <= or >= k)
    for k in (0, 1, 17, 60, len(deltas) - 1, len(deltas)):
        for j in (0, k // 2, k, min(len(deltas), k + 5)):
            sync = binance_sync()
            for d in deltas[:j]:
                assert sync.on_delta(d) is False
            assert sync.on_snapshot(images[k])
            for d in deltas[j:]:
                sync.on_delta(d)
            assert sync.book.levels() == truth, (k, j)
            assert sync.book.update_id == final.update_id

    # 3. the same diffs in uneven chunks, interleaved with an ignored replay of old ones
    rng = random.Random(seed)
    pieces = binance_sync()
    pieces.on_snapshot(images[0])
    i = 0
    while i < len(deltas):
        step = rng.randint(1, 9)
        for d in deltas[i : i + step]:
            pieces.on_delta(d)
        for d in deltas[max(0, i - 3) : i + step]:
            assert pieces.on_delta(d) is False  # already in the book
        i += step
    assert pieces.book.levels() == truth


# -- SequencedSync -------------------------------------------------------------------------------


def sequenced() -> SequencedSync:
    return SequencedSync(OrderBook(SYMBOL))


def test_sequenced_ignores_deltas_before_a_snapshot() -> None:
    sync = sequenced()
    assert sync.on_delta(delta(5, 5, bids=((10.0, 1.0),), prev=4)) is False
    assert sync.book.top(5) == ((), ())
    assert not sync.synced


def test_sequenced_snapshot_replaces_the_book() -> None:
    sync = sequenced()
    assert sync.on_snapshot(SNAP_100)
    assert sync.synced
    assert sync.book.update_id == 100
    sync.on_delta(delta(101, 101, bids=((8.0, 1.0),), prev=100))
    assert sync.on_snapshot(snapshot(1, bids=((50.0, 1.0),), asks=((51.0, 2.0),)))
    assert sync.book.levels() == ({50.0: 1.0}, {51.0: 2.0})
    assert sync.book.update_id == 1  # a new image may restart the ids (Bybit's u == 1)


def test_sequenced_deltas_chain_by_prev_id() -> None:
    sync = sequenced()
    sync.on_snapshot(SNAP_100)
    assert sync.on_delta(delta(101, 101, bids=((10.0, 0.0),), prev=100)) is True
    assert (
        sync.on_delta(delta(105, 105, asks=((11.0, 2.0), (11.5, 1.0)), prev=101)) is True
    )  # ids may jump
    assert sync.book.update_id == 105
    assert sync.book.top(5) == (((9.0, 2.0),), ((11.0, 2.0), (11.5, 1.0), (12.0, 4.0)))


def test_sequenced_gap_raises_and_resets() -> None:
    sync = sequenced()
    sync.on_snapshot(SNAP_100)
    sync.on_delta(delta(101, 101, prev=100))
    with pytest.raises(SequenceGap) as info:
        sync.on_delta(delta(103, 103, prev=102))
    assert info.value.symbol == SYMBOL
    assert not sync.synced
    assert sync.book.top(5) == ((), ())
    assert sync.book.update_id == 0
    # nothing applies until the next snapshot
    assert sync.on_delta(delta(104, 104, bids=((1.0, 1.0),), prev=103)) is False
    assert sync.book.top(5) == ((), ())


def test_sequenced_duplicates_are_ignored() -> None:
    sync = sequenced()
    sync.on_snapshot(SNAP_100)
    sync.on_delta(delta(101, 101, bids=((10.0, 5.0),), prev=100))
    sync.on_delta(delta(102, 102, bids=((10.0, 6.0),), prev=101))
    assert sync.on_delta(delta(101, 101, bids=((10.0, 5.0),), prev=100)) is False
    assert sync.on_delta(delta(102, 102, bids=((10.0, 6.0),), prev=101)) is False
    assert sync.synced
    assert sync.book.best_bid() == (10.0, 6.0)
    assert sync.book.update_id == 102


def test_sequenced_without_prev_id_chains_by_first_id() -> None:
    sync = sequenced()
    sync.on_snapshot(SNAP_100)
    assert sync.on_delta(delta(101, 102, asks=((11.0, 9.0),))) is True
    assert sync.on_delta(delta(101, 102, asks=((11.0, 1.0),))) is False  # duplicate
    assert sync.book.best_ask() == (11.0, 9.0)
    with pytest.raises(SequenceGap):
        sync.on_delta(delta(104, 104))
    assert not sync.synced


def test_sequenced_crossed_raises() -> None:
    sync = sequenced()
    sync.on_snapshot(SNAP_100)
    with pytest.raises(CrossedBook):
        sync.on_delta(delta(101, 101, asks=((10.0, 1.0),), prev=100))
    with pytest.raises(CrossedBook):
        sequenced().on_snapshot(snapshot(1, bids=((5.0, 1.0),), asks=((5.0, 1.0),)))


def test_sequenced_sync_with_a_window_drops_levels_pushed_out_of_it() -> None:
    sync = SequencedSync(OrderBook("BTCUSDT"), depth=2)
    sync.on_snapshot(BookSnapshot("bybit", "BTCUSDT", ((99.0, 1.0), (98.0, 1.0)), ((101.0, 1.0), (102.0, 1.0)), 5))
    # a better bid enters the 2-level window; Bybit does not always delete the one it pushes out
    sync.on_delta(BookDelta("bybit", "BTCUSDT", ((99.5, 3.0),), (), 6, 6, prev_id=5))
    assert sync.book.top(5) == (((99.5, 3.0), (99.0, 1.0)), ((101.0, 1.0), (102.0, 1.0)))
    # then the best bid goes: the level outside the window must not come back
    sync.on_delta(BookDelta("bybit", "BTCUSDT", ((99.5, 0.0),), (), 7, 7, prev_id=6))
    assert sync.book.top(5) == (((99.0, 1.0),), ((101.0, 1.0), (102.0, 1.0)))
