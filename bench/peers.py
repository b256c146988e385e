"""Our pipeline and ccxt pro's Binance book handler on the same recording, in the same run.

    python3 -m venv /tmp/benchvenv
    /tmp/benchvenv/bin/pip install -r bench/requirements.txt -r requirements.txt
    /tmp/benchvenv/bin/python bench/peers.py [WS_FILE] [--repeat 30] [--json]

Default: ../shared/fixtures/cryptofeed_BINANCE.ws.1.0 with its .http. REST snapshots (dev
machines only). Dev-only: ccxt is never a dependency of the app.

Both sides get the same raw text of every frame of the streams the monitor subscribes to and
ccxt's ``handle_message`` handles too (``depthUpdate`` diffs and ``trade``s; a recording's
other streams, e.g. bookTicker, are left out for both), in order, with the recorded REST
snapshots in between, and each is timed from the raw frame to a book one can read:

- ours: ``BinanceSession.receive`` → ``Pipeline.handle`` (``SnapshotSync``, ``OrderBook``, the
  top 20 and the series row published in a ``MarketStore``; trades into the store's tape,
  session VWAP/CVD, candles and whale check), exactly what the worker runs;
- ours, book only: ``binance.parse`` → ``SnapshotSync.on_delta`` → ``OrderBook.top(5)``: the
  work ccxt does for a diff (no store, no metrics), to tell the book from what the page needs;
- ccxt: ``Client.handle_text_or_binary_message(raw)`` of a real (unconnected) ccxt pro client,
  i.e. ccxt's JSON decode and ``binance.handle_message`` → ``handle_order_book`` (then the
  top 5 a side read from ``exchange.orderbooks[symbol]``) or ``handle_trade``. Snapshots go
  in as ccxt does it:
  ``handle_order_book_subscription`` creates the books and the deltas are cached; when the
  recording's snapshot arrives, ccxt's own ``fetch_order_book_snapshot`` runs (its REST call
  answered with the recorded body: ``fetch_order_book`` parses it, the book is reset, the
  cached deltas unrolled with ccxt's U/u rules).

Snapshots are a one-off cost, untimed on both sides. At the end both books are compared
level by level (the comparison only means something if both were fed faithfully).
Figures are printed, never asserted: median of ``--repeat`` interleaved passes each.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from market.bench import files_of  # noqa: E402
from market.book import OrderBook  # noqa: E402
from market.events import BookDelta  # noqa: E402
from market.pipeline import Pipeline  # noqa: E402
from market.recording import Record, read  # noqa: E402
from market.settings import Settings  # noqa: E402
from market.store import MarketStore  # noqa: E402
from market.sync import SnapshotSync  # noqa: E402
from market.venues import binance  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "fixtures" / "cryptofeed_BINANCE.ws.1.0"
QUOTES = ("USDT", "BUSD", "USDC", "BTC", "ETH", "BNB", "EUR", "USD", "TRY")
CCXT_URL = "wss://stream.binance.com:9443/stream"  # a spot URL: ccxt picks the market type by it


def depth_records(paths: list[Path]) -> list[Record]:
    """The depth diffs, trades and REST snapshots of a Binance recording, in order."""
    out = []
    for record in read(paths):
        head = record.raw[:160]
        if record.snapshot_symbol is not None or '"depthUpdate"' in head or '"trade"' in head:
            out.append(record)
    return out


def is_depth(record: Record) -> bool:
    return record.snapshot_symbol is None and '"depthUpdate"' in record.raw[:160]


def symbol_of(raw: str) -> str:
    data = orjson.loads(raw)
    return str(data.get("data", data)["s"])


# -- ours ----------------------------------------------------------------------------------------


def run_ours(records: list[Record], symbols: list[str]) -> tuple[float, Pipeline]:
    pipeline = Pipeline(MarketStore(), "binance", symbols, SnapshotSync)
    session = binance.BinanceSession(Settings(), symbols)
    receive, handle = session.receive, pipeline.handle
    clock = time.perf_counter
    spent = 0.0
    for record in records:
        if record.snapshot_symbol is not None:
            handle(session.snapshot(record.snapshot_symbol, record.raw, record.received_at)[0])
            continue
        t0 = clock()
        handle(receive(record.raw, record.received_at)[0])
        spent += clock() - t0
    return spent, pipeline


def run_ours_book(records: list[Record], symbols: list[str]) -> float:
    syncs = {s: SnapshotSync(OrderBook(s)) for s in symbols}
    parse, parse_snapshot = binance.parse, binance.parse_snapshot
    clock = time.perf_counter
    spent = 0.0
    for record in records:
        if record.snapshot_symbol is not None:
            snap = parse_snapshot(record.raw, record.snapshot_symbol, record.received_at)
            syncs[snap.symbol].on_snapshot(snap)
            continue
        t0 = clock()
        for event in parse(record.raw, record.received_at):
            if type(event) is BookDelta:
                sync = syncs[event.symbol]
                sync.on_delta(event)
                sync.book.top(5)
        spent += clock() - t0
    return spent


# -- ccxt ------------------------------------------------------------------------------------------


def _market(venue: str) -> dict[str, Any]:
    quote = next((q for q in QUOTES if venue.endswith(q) and len(venue) > len(q)), venue[-4:])
    base = venue[: -len(quote)]
    return {
        "id": venue,
        "lowercaseId": venue.lower(),
        "symbol": f"{base}/{quote}",
        "base": base,
        "quote": quote,
        "baseId": base,
        "quoteId": quote,
        "type": "spot",
        "spot": True,
        "margin": False,
        "swap": False,
        "future": False,
        "option": False,
        "contract": False,
        "linear": None,
        "inverse": None,
        "active": True,
        "precision": {},
        "limits": {},
        "info": {},
    }


async def run_ccxt(records: list[Record], symbols: list[str]) -> tuple[float, Any]:
    import ccxt.pro as ccxtpro  # type: ignore[import-not-found]  # dev-only, bench/requirements.txt

    ex = ccxtpro.binance({"enableRateLimit": False})
    try:
        ex.set_markets([_market(s) for s in symbols])
        unified = {s: ex.markets_by_id[s][0]["symbol"] for s in symbols}
        client = ex.client(CCXT_URL)
        snapshots: dict[str, Any] = {}

        async def fetch(
            url: str, method: str = "GET", headers: Any = None, body: Any = None
        ) -> Any:
            venue = parse_qs(urlsplit(url).query)["symbol"][0]
            return snapshots.pop(venue)  # the recorded REST body, as ccxt's HTTP layer returns it

        ex.fetch = fetch
        spawned: dict[str, Any] = {}  # unified symbol → the subscription ccxt would fetch with
        ex.spawn = lambda method, client_, message, sub: spawned.setdefault(
            sub["symbol"], (message, sub)
        )
        subscription = {
            "id": "1",
            "name": "depth",
            "symbols": list(unified.values()),
            "limit": 1000,
            "type": "spot",
            "params": {},
        }
        ex.handle_order_book_subscription(client, {"id": "1", "result": None}, subscription)
        on_frame = client.handle_text_or_binary_message
        books = ex.orderbooks
        frame_symbols = [
            None if r.snapshot_symbol is not None else unified[symbol_of(r.raw)] for r in records
        ]
        depths = [is_depth(r) for r in records]
        clock = time.perf_counter
        spent = 0.0
        for record, symbol, depth in zip(records, frame_symbols, depths, strict=True):
            if symbol is None:
                venue = record.snapshot_symbol
                assert venue is not None
                snapshots[venue] = orjson.loads(record.raw)
                message, sub = spawned[unified[venue]]
                await ex.fetch_order_book_snapshot(client, message, sub)
                continue
            t0 = clock()
            on_frame(record.raw)
            if depth:
                book = books[symbol]
                book["bids"][:5]
                book["asks"][:5]
            spent += clock() - t0
        return spent, ex
    finally:
        await ex.close()


# -- the comparison --------------------------------------------------------------------------------


def compare(pipeline: Pipeline, ex: Any, symbols: list[str], depth: int = 20) -> list[str]:
    """Symbols whose top ``depth`` levels differ between the two (should be none)."""
    bad = []
    for venue in symbols:
        ours = pipeline.syncs[venue].book.top(depth)
        unified = ex.markets_by_id[venue][0]["symbol"]
        book = ex.orderbooks.get(unified)
        if book is None:
            bad.append(venue)
            continue
        theirs = (
            tuple((p, q) for p, q in book["bids"][:depth]),
            tuple((p, q) for p, q in book["asks"][:depth]),
        )
        if ours != theirs or pipeline.syncs[venue].book.update_id != book["nonce"]:
            bad.append(venue)
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.file.is_file():
        print(f"skipped: {args.file} not found", file=sys.stderr)
        return 0
    files = files_of([args.file])
    records = depth_records(files)
    symbols = list(dict.fromkeys(r.snapshot_symbol or symbol_of(r.raw) for r in records))
    n = sum(1 for r in records if is_depth(r))
    trades = sum(1 for r in records if r.snapshot_symbol is None and not is_depth(r))
    ours_s: list[float] = []
    book_s: list[float] = []
    ccxt_s: list[float] = []
    mismatched: list[str] = []
    for _ in range(args.repeat):  # interleaved: a busy machine slows both alike
        gc.collect()
        spent, pipeline = run_ours(records, symbols)
        ours_s.append(spent)
        gc.collect()
        book_s.append(run_ours_book(records, symbols))
        gc.collect()
        spent, ex = asyncio.run(run_ccxt(records, symbols))
        ccxt_s.append(spent)
        mismatched = compare(pipeline, ex, symbols)
    ours_rate = n / statistics.median(ours_s)
    ccxt_rate = n / statistics.median(ccxt_s)
    book_rate = n / statistics.median(book_s)
    result = {
        "file": str(args.file),
        "depth_events": n,
        "trade_frames": trades,
        "snapshots": sum(1 for r in records if r.snapshot_symbol is not None),
        "symbols": symbols,
        "repeat": args.repeat,
        "ours": {
            "events_per_s": round(ours_rate, 1),
            "us_per_event": round(1e6 / ours_rate, 3),
            "best_events_per_s": round(n / min(ours_s), 1),
        },
        "ours_book_only": {
            "events_per_s": round(book_rate, 1),
            "us_per_event": round(1e6 / book_rate, 3),
        },
        "ccxt": {
            "events_per_s": round(ccxt_rate, 1),
            "us_per_event": round(1e6 / ccxt_rate, 3),
            "best_events_per_s": round(n / min(ccxt_s), 1),
            "version": _ccxt_version(),
        },
        "ratio": round(ours_rate / ccxt_rate, 2),
        "ratio_book_only": round(book_rate / ccxt_rate, 2),
        "books_agree": not mismatched,
        "mismatched": mismatched,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{args.file.name} (+{len(files) - 1} file): {n} depth events, {trades} trades, "
            f"{sum(1 for r in records if r.snapshot_symbol is not None)} snapshots, "
            f"{len(symbols)} symbols, median of {args.repeat} interleaved passes"
        )
        print(
            f"ours : {ours_rate:>10,.0f} events/s  {1e6 / ours_rate:7.2f} µs/event  "
            "(parse → Pipeline → store: book, top 20, series row)"
        )
        print(
            f"ours : {book_rate:>10,.0f} events/s  {1e6 / book_rate:7.2f} µs/event  "
            "(book only: parse → SnapshotSync → top 5)"
        )
        print(
            f"ccxt : {ccxt_rate:>10,.0f} events/s  {1e6 / ccxt_rate:7.2f} µs/event  "
            f"(ccxt {_ccxt_version()} pro binance.handle_message + top 5)"
        )
        print(
            f"ratio: {ours_rate / ccxt_rate:.2f}× ccxt's rate (book only: "
            f"{book_rate / ccxt_rate:.2f}×); final books agree: "
            f"{'yes' if not mismatched else 'NO: ' + ', '.join(mismatched)}"
        )
    return 0


def _ccxt_version() -> str:
    import ccxt

    return str(ccxt.__version__)


if __name__ == "__main__":
    sys.exit(main())
