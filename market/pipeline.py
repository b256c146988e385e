"""The wiring from events to the store: sync each symbol's book, publish views and trades.

Pure of I/O: a ``Pipeline`` is fed lists of events (from a socket, a recording or the
simulator) and calls ``on_resync(symbol, reason)`` when a symbol's book must be rebuilt.

Symbols: events carry the venue's name (``BTC`` on a venue that names coins); the store is
keyed by the user's name (``BTCUSDT``). ``symbols`` maps one to the other (a plain iterable:
the same name); ``syncs``, ``symbols`` and ``on_resync`` speak the venue's names, the store
the user's.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping

import msgspec

from market.book import OrderBook
from market.errors import BookError
from market.events import BookDelta, BookSnapshot, Event, Source, Ticker, Trade
from market.store import MarketStore
from market.sync import Sync
from market.views import NO_ROW, series_row

log = logging.getLogger(__name__)

SyncFactory = Callable[[OrderBook], Sync]


# what a ticker says about its market (merged field by field): all but the market's name
_TICKER_FIELDS = tuple(f for f in Ticker.__struct_fields__ if f not in ("exchange", "symbol"))


class Pipeline:
    """Books for one connection's symbols, kept exact, published under ``exchange``."""

    def __init__(
        self,
        store: MarketStore,
        exchange: str,
        symbols: Iterable[str] | Mapping[str, str],
        sync_factory: SyncFactory,
        *,
        source: Source = "live",
        on_resync: Callable[[str, str], None] | None = None,
        publish_interval: float = 0.0,
    ) -> None:
        """``publish_interval`` > 0 coalesces: a book is published at most that often (by
        event time); the changes in between wait for the next event or ``flush()``, which the
        owner calls at least that often. 0 publishes every change at once."""
        self.store = store
        self.exchange = exchange
        self.source: Source = source
        self.sync_factory = sync_factory
        self.on_resync = on_resync or (lambda symbol, reason: None)
        self.depth = store.depth
        self.series_interval = store.series_interval
        self._last_point: dict[str, float] = {}  # venue symbol → time of its last series row
        self.publish_interval = publish_interval
        self._published_at: dict[str, float] = {}  # venue symbol → time of its last publication
        self._dirty: dict[str, float] = {}  # venue symbol → time of its unpublished change
        self._unpublished: dict[str, int] = {}  # venue symbol → updates applied, not published
        self.syncs: dict[str, Sync] = {}
        self.names: dict[str, str] = {}  # venue symbol → the user's (store) symbol
        self.tickers: dict[str, Ticker] = {}  # merged, by venue symbol
        self.resyncs = 0
        # the stage hook (``market bench``): ns spent in sync (apply included), metrics, store
        # (the books' top levels and series rows, and the trades with their session figures)
        self.stage_ns: dict[str, int] | None = None
        pairs = symbols.items() if isinstance(symbols, Mapping) else ((s, s) for s in symbols)
        for venue, name in pairs:
            self.add_symbol(venue, name)

    @property
    def symbols(self) -> tuple[str, ...]:
        """The venue's names of the symbols, in the order they were added."""
        return tuple(self.syncs)

    def add_symbol(
        self, symbol: str, name: str | None = None, detail: str = "waiting for the first book"
    ) -> None:
        """Watch ``symbol`` (venue name), published as ``name`` (default: the same)."""
        if symbol not in self.syncs:
            self.syncs[symbol] = self.sync_factory(OrderBook(symbol))
            self.names[symbol] = name or symbol
            self.store.reset_market(self.exchange, self.names[symbol], self.source, detail)

    def remove_symbol(self, symbol: str) -> None:
        if self.syncs.pop(symbol, None) is not None:
            self.tickers.pop(symbol, None)
            self._last_point.pop(symbol, None)
            self._dirty.pop(symbol, None)
            self._unpublished.pop(symbol, None)
            self.store.remove_market(self.exchange, self.names.pop(symbol))

    def mark(self, symbol: str, detail: str) -> None:
        """Say why ``symbol`` has no book (e.g. not listed on the venue); no resync."""
        if symbol in self.syncs:
            self.store.mark_unsynced(self.exchange, self.names[symbol], detail, resync=False)

    def reset_all(self, detail: str) -> None:
        """After a reconnect: every book is rebuilt from scratch."""
        for symbol, sync in self.syncs.items():
            sync.reset()
            self.store.mark_unsynced(self.exchange, self.names[symbol], detail, resync=False)

    def handle(self, events: Iterable[Event]) -> None:
        trades: dict[str, list[Trade]] = {}
        for event in events:
            if type(event) is BookDelta or type(event) is BookSnapshot:
                self._book(event)
            elif type(event) is Trade:
                if event.symbol in self.syncs:
                    trades.setdefault(event.symbol, []).append(event)
            elif type(event) is Ticker:
                self._ticker(event)
        if not trades:
            return
        stage_ns = self.stage_ns
        if stage_ns is not None:
            t0 = time.perf_counter_ns()
        for symbol, batch in trades.items():
            self.store.add_trades(self.exchange, self.names[symbol], batch)
        if stage_ns is not None:
            stage_ns["store"] += time.perf_counter_ns() - t0

    def _ticker(self, ticker: Ticker) -> None:
        """Merge: a field the exchange left out (None) keeps its last value."""
        symbol = ticker.symbol
        if symbol not in self.syncs:
            return
        old = self.tickers.get(symbol)
        if old is not None:
            changes = {
                f: getattr(ticker, f) for f in _TICKER_FIELDS if getattr(ticker, f) is not None
            }
            ticker = msgspec.structs.replace(old, **changes)
        self.tickers[symbol] = ticker
        self.store.update_ticker(self.exchange, self.names[symbol], ticker)

    def _book(self, event: BookDelta | BookSnapshot) -> None:
        symbol = event.symbol
        sync = self.syncs.get(symbol)
        if sync is None:
            return  # a symbol we do not watch (any more)
        stage_ns = self.stage_ns
        if stage_ns is not None:
            t0 = time.perf_counter_ns()
        try:
            if isinstance(event, BookDelta):
                changed = sync.on_delta(event)
            else:
                changed = sync.on_snapshot(event)
                if not changed:
                    self.on_resync(symbol, "snapshot older than the buffered updates")
                    return
        except BookError as exc:
            self.resync(symbol, str(exc))
            return
        finally:
            if stage_ns is not None:
                stage_ns["sync"] += time.perf_counter_ns() - t0
        if not changed:
            return
        at = event.received_at
        if isinstance(event, BookDelta):
            book = sync.book
            dirty = symbol in self._dirty
            if not dirty and book.outside_top(self.depth, event.bids, event.asks):
                # deeper than the published levels (most of a 1,000-level diff): nothing shown moved
                if stage_ns is not None:
                    t0 = time.perf_counter_ns()
                name = self.names[symbol]
                touched = self.store.touch_book(self.exchange, name, book.update_id, at)
                if stage_ns is not None:
                    stage_ns["store"] += time.perf_counter_ns() - t0
                if touched:
                    return
            if at - self._published_at.get(symbol, -math.inf) < self.publish_interval:
                self._dirty[symbol] = at  # published soon: by a later event or flush()
                self._unpublished[symbol] = self._unpublished.get(symbol, 0) + 1
                return
        self._publish(symbol, sync, at)

    def flush(self) -> None:
        """Publish every book changed since its last publication (coalescing, see above)."""
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, {}
        for symbol, at in dirty.items():
            sync = self.syncs.get(symbol)
            if sync is not None and sync.synced:
                self._publish(symbol, sync, at, fresh=0)
            else:
                self._unpublished.pop(symbol, None)

    def _publish(self, symbol: str, sync: Sync, at: float, fresh: int = 1) -> None:
        """Copy the top levels of ``symbol``'s book to the store, with a series row when due;
        ``fresh`` updates now plus those coalesced before count as the book's updates."""
        self._dirty.pop(symbol, None)
        updates = fresh + self._unpublished.pop(symbol, 0)
        self._published_at[symbol] = at
        book = sync.book
        name = self.names[symbol]
        stage_ns = self.stage_ns
        if stage_ns is not None:
            t0 = time.perf_counter_ns()
        bids, asks = book.top(self.depth)
        if at - self._last_point.get(symbol, -math.inf) >= self.series_interval:
            self._last_point[symbol] = at
            row = series_row(bids, asks, at)
        else:
            row = NO_ROW
        if stage_ns is not None:
            t1 = time.perf_counter_ns()
            stage_ns["metrics"] += t1 - t0
        self.store.update_book(self.exchange, name, bids, asks, book.update_id, at, row, updates)
        if stage_ns is not None:
            stage_ns["store"] += time.perf_counter_ns() - t1

    def resync(self, symbol: str, reason: str) -> None:
        """Mark one symbol unsynced (its book is discarded) and ask for it to be rebuilt."""
        sync = self.syncs.get(symbol)
        if sync is None:
            return
        if sync.synced:
            sync.reset()
        self.resyncs += 1
        log.info("%s %s: resync (%s)", self.exchange, symbol, reason)
        self.store.mark_unsynced(self.exchange, self.names[symbol], f"resyncing: {reason}")
        self.on_resync(symbol, reason)
