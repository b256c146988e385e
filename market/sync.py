"""Keeping one symbol's local book exactly equal to the exchange's.

Two disciplines, both pure (no I/O, no clock): the caller feeds events and asks what to do.

``SnapshotSync`` (diff stream + REST snapshot; the venue's module names it as its rule):
buffer diffs until a snapshot arrives; drop buffered events with ``u <= lastUpdateId``; then
every event with ``u <= bookId`` is ignored and one with ``U > bookId + 1`` is a gap (the first
applied event therefore brackets ``lastUpdateId + 1``). A snapshot older than the buffer is
refused (fetch another); a gap mid-stream discards the book and starts buffering again.

``SequencedSync`` (snapshots on the stream, deltas chained by id; the simulated feed too):
a snapshot replaces the book; a delta must continue from the book's id, else it is a gap.

Both raise ``SequenceGap`` / ``CrossedBook``; the caller marks the symbol unsynced and
resyncs that symbol only.
"""

from __future__ import annotations

from collections import deque

from market.book import OrderBook
from market.errors import SequenceGap
from market.events import BookDelta, BookSnapshot

MAX_BUFFERED = 5_000  # diffs kept per symbol while waiting for a snapshot


class SnapshotSync:
    __slots__ = ("_buffer", "awaiting_snapshot", "book", "synced")

    def __init__(self, book: OrderBook) -> None:
        self.book = book
        self.synced = False
        self.awaiting_snapshot = True
        self._buffer: deque[BookDelta] = deque(maxlen=MAX_BUFFERED)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def reset(self) -> None:
        """Forget the book and the buffer (after a reconnect): wait for diffs and a snapshot."""
        self.book.clear()
        self.synced = False
        self.awaiting_snapshot = True
        self._buffer.clear()

    def on_delta(self, delta: BookDelta) -> bool:
        """Buffer or apply one diff. True when the book changed.

        Raises ``SequenceGap`` (book discarded, this diff kept as the start of a new buffer:
        fetch a new snapshot) or ``CrossedBook`` (caller resets and resyncs).
        """
        if not self.synced:
            self._buffer.append(delta)
            return False
        book = self.book
        if delta.last_id <= book.update_id:
            return False  # already in the book
        if delta.first_id > book.update_id + 1:
            expected = book.update_id + 1
            self.book.clear()
            self.synced = False
            self.awaiting_snapshot = True
            self._buffer.clear()
            self._buffer.append(delta)
            raise SequenceGap(book.symbol, f"gap: expected update {expected}, got {delta.first_id}")
        book.apply(delta.bids, delta.asks, delta.last_id)
        book.check_crossed()
        return True

    def on_snapshot(self, snap: BookSnapshot) -> bool:
        """Build the book from a REST snapshot and the buffered diffs. True when synced.

        False when the snapshot is older than the buffered diffs (``lastUpdateId + 1`` is
        before the first buffered ``U``): keep buffering and fetch another snapshot.
        """
        buffer = self._buffer
        while buffer and buffer[0].last_id <= snap.update_id:
            buffer.popleft()
        if buffer and buffer[0].first_id > snap.update_id + 1:
            return False  # snapshot too old for what we hold: try again
        self.book.replace(snap.bids, snap.asks, snap.update_id)
        self.synced = True
        self.awaiting_snapshot = False
        pending = list(buffer)
        buffer.clear()
        for i, delta in enumerate(pending):
            try:
                self.on_delta(delta)
            except SequenceGap:
                # the buffer itself has a hole: on_delta kept the diff after it as the start
                # of the new buffer; the diffs buffered behind that one belong there too
                buffer.extend(pending[i + 1 :])
                raise
        self.book.check_crossed()
        return True


class SequencedSync:
    __slots__ = ("book", "depth", "synced")

    def __init__(self, book: OrderBook, depth: int | None = None) -> None:
        self.book = book
        self.synced = False
        self.depth = depth  # the venue's window (levels a side), where it has one

    def reset(self) -> None:
        self.book.clear()
        self.synced = False

    def on_snapshot(self, snap: BookSnapshot) -> bool:
        self.book.replace(snap.bids, snap.asks, snap.update_id)
        self.synced = True
        self.book.check_crossed()
        return True

    def on_delta(self, delta: BookDelta) -> bool:
        if not self.synced:
            return False  # waiting for a snapshot: deltas before it mean nothing
        book = self.book
        expected = book.update_id if delta.prev_id is not None else book.update_id + 1
        got = delta.prev_id if delta.prev_id is not None else delta.first_id
        if got != expected:
            if delta.last_id <= book.update_id:
                return False  # a duplicate of something already applied
            self.reset()
            raise SequenceGap(book.symbol, f"gap: book at {expected}, delta continues from {got}")
        book.apply(delta.bids, delta.asks, delta.last_id)
        if self.depth is not None:
            book.trim(self.depth)
        book.check_crossed()
        return True


Sync = SnapshotSync | SequencedSync
