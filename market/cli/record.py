"""``record``: write one exchange's raw traffic to a gzip recording (``market.recording``: every
frame as received, ``<ns> <frame>`` lines, REST snapshots inline) for ``--seconds`` or until
SIGTERM / Ctrl-C, then print a JSON summary (frames, the feed's state, the books it held).

Exit 0, 1 when nothing was recorded (the reason on stderr), 2 on bad arguments or settings.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import orjson

from market.cli.args import PROG, stop_on_sigterm, symbols_argument
from market.errors import InvalidSymbol, SettingsError
from market.recording import Recorder
from market.settings import NO_FALLBACK, Settings
from market.store import MarketStore
from market.venues import RECORDABLE
from market.worker import Worker


def record(args: argparse.Namespace) -> int:
    """Record one exchange's raw traffic for ``--seconds`` (or until SIGTERM / Ctrl-C)."""
    try:
        settings = Settings.from_env()
        exchanges = args.exchange or settings.exchanges
        if len(exchanges) != 1 or exchanges[0] not in RECORDABLE:
            raise SettingsError(
                f"--exchange {','.join(exchanges)}: record takes one of {', '.join(RECORDABLE)}"
            )
        symbols = settings.symbols if args.symbols is None else symbols_argument(args.symbols)
        if not symbols:
            raise InvalidSymbol("--symbols: no symbols given")
        # fallback "none": record what the exchange sends, never simulated data
        recorded = replace(settings, exchanges=exchanges, symbols=symbols, fallback=NO_FALLBACK)
        worker = Worker(recorded, MarketStore(depth=max(args.depth, 20)))
        recorder = Recorder(args.out)
    except (SettingsError, InvalidSymbol) as exc:
        print(f"{PROG} record: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG} record: error: --out {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    exchange = exchanges[0]
    stop = stop_on_sigterm()
    worker.recorder = recorder
    started = time.monotonic()
    worker.start()
    try:
        stop.wait(args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        # the feed's state as the recording ends (after stop() it would say "stopped")
        status = worker.store.snapshot(series=False, max_trades=0).statuses.get(exchange)
        worker.stop()  # joins the thread: nothing writes to the recorder any more
        recorder.close()
    # the books the live client held as the recording ended (a stopped worker keeps them)
    final = worker.store.snapshot(series=False, max_trades=0)
    books = {
        symbol: {"bids": [list(level) for level in view.bids[: args.depth]],
                 "asks": [list(level) for level in view.asks[: args.depth]],
                 "update_id": view.update_id, "synced": view.synced}
        for (name, symbol), view in final.markets.items() if name == exchange
    }  # fmt: skip
    summary = {
        "out": str(args.out), "exchange": exchange, "symbols": list(worker.settings.symbols),
        "frames": recorder.frames, "snapshots": recorder.snapshots,
        "seconds": round(time.monotonic() - started, 3),
        "status": None if status is None else {
            "state": status.state, "detail": status.detail, "reconnects": status.reconnects,
            "messages": status.messages, "bad_messages": status.bad_messages,
            "resyncs": status.resyncs,
        },
        "books": books,
    }  # fmt: skip
    print(orjson.dumps(summary).decode(), flush=True)
    if recorder.frames == 0:
        reason = status.detail if status is not None and status.detail else "no data arrived"
        print(f"{PROG} record: nothing recorded: {reason}", file=sys.stderr)
        return 1
    return 0
