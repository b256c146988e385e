"""``collect``: run the feeds (the same ``Worker`` as ``watch``) and publish the store to the
bus (``market.bus``) until ``--seconds`` are up or SIGTERM / Ctrl-C, keeping history when
``MARKET_DB`` says so; then print a JSON summary (published, refused markets, the link).

Exit 0, 2 on bad arguments or settings (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import orjson

from market.bus.ops import WantsServer
from market.bus.publisher import BusPublisher
from market.cli.args import PROG, stop_on_sigterm, symbols_argument
from market.errors import InvalidSymbol, SettingsError
from market.history.writer import start_history
from market.settings import REPLAY, Settings
from market.store import MarketStore
from market.urls import check_redis_url
from market.worker import Worker


def collect(args: argparse.Namespace) -> int:
    """Run the feeds (the same ``Worker``) and publish the store to the bus until stopped."""
    try:
        settings = Settings.from_env()
        url = check_redis_url("--bus", args.bus)
        exchanges = args.exchange or settings.exchanges
        symbols = settings.symbols if args.symbols is None else symbols_argument(args.symbols)
        if exchanges == (REPLAY,) and settings.replay_file is None:
            raise SettingsError("collect --exchange replay needs MARKET_REPLAY_FILE")
        worker = Worker(replace(settings, exchanges=exchanges, symbols=symbols), MarketStore())
    except (SettingsError, InvalidSymbol) as exc:
        print(f"{PROG} collect: error: {exc}", file=sys.stderr)
        return 2
    served = worker.settings
    wants = WantsServer(worker.reconfigure, served.exchanges, served.symbols)
    publisher = BusPublisher(worker.store, url, on_wants=wants)
    stop = stop_on_sigterm()
    worker.start()
    history = start_history(worker.store, worker.settings)  # MARKET_DB: the collector keeps it
    publisher.start()
    try:
        stop.wait(args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        publisher.stop()  # hands its markets over at once (ownership keys deleted)
        worker.stop()
        if history is not None:
            history.stop()  # after the worker: the last trades are flushed too
    link = publisher.link
    summary = {
        "collector": publisher.id, "bus": link.detail, "state": link.state,
        "exchanges": list(worker.settings.exchanges), "symbols": list(worker.settings.symbols),
        "published": publisher.published, "bus_reconnects": link.reconnects,
        "refused": [{"exchange": x, "symbol": s, "owner": o}
                    for (x, s), o in sorted(publisher.refused.items())],
    }  # fmt: skip
    print(orjson.dumps(summary).decode(), flush=True)
    return 0
