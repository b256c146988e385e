"""``watch``: print the store as JSON lines (``market.cli.lines``) every ``--interval`` seconds
for ``--seconds``, and a last line set on exit.

``watch`` runs the feeds itself (the same ``Worker`` as the dashboard; ``--replay FILE`` plays a
recording instead and ends with it); ``watch --bus URL`` (``watch_bus``) reads a collector's bus
and connects to no exchange. Exit 0 when the time is up or on SIGTERM / Ctrl-C, 2 on bad
arguments or settings (one line on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from market.bus.reader import BusReader
from market.cli.args import PROG, stop_on_sigterm, symbols_argument
from market.cli.lines import print_until, snapshot_lines, write_lines
from market.errors import InvalidSymbol, SettingsError
from market.history.writer import HistoryWriter, start_history
from market.settings import REPLAY, Settings
from market.store import MarketStore
from market.urls import check_redis_url
from market.worker import Worker


def watch(args: argparse.Namespace) -> int:
    """Run the feeds (or a replay) and print their lines until ``--seconds`` are up."""
    try:
        settings = Settings.from_env(_replay_environ(args))
        exchanges = args.exchange or settings.exchanges
        if args.speed is not None and exchanges != (REPLAY,):
            raise SettingsError("--speed applies to a replay only (--replay FILE)")
        symbols = settings.symbols if args.symbols is None else symbols_argument(args.symbols)
        worker = Worker(
            replace(settings, exchanges=exchanges, symbols=symbols),
            MarketStore(depth=max(args.depth, 20)),
        )
    except (SettingsError, InvalidSymbol) as exc:
        print(f"{PROG} watch: error: {exc}", file=sys.stderr)
        return 2
    exchanges, symbols = worker.settings.exchanges, worker.settings.symbols
    over = _replay_over(worker) if exchanges == (REPLAY,) else None
    stop = stop_on_sigterm()
    out = sys.stdout.buffer
    deadline = time.monotonic() + args.seconds
    worker.start()
    history = start_history(worker.store, worker.settings)
    report = _HistoryReport(history)

    def emit() -> None:
        snap = worker.store.snapshot(series=False, max_trades=1)
        write_lines(out, snapshot_lines(snap, exchanges, symbols, args.depth, history))

    try:
        print_until(
            deadline, args.interval, lambda seconds: _wait(stop, seconds, over), emit, report.check
        )
    finally:
        worker.stop()
        if history is not None:
            history.stop()  # after the worker: flushes the last trades
    return 0


def watch_bus(args: argparse.Namespace) -> int:
    """``watch --bus URL``: the same JSON lines, from a collector's bus (no exchange)."""
    try:
        if args.replay is not None or args.speed is not None:
            raise SettingsError("--bus cannot be combined with --replay or --speed")
        settings = Settings.from_env()
        url = check_redis_url("--bus", args.bus)
        symbols = settings.symbols if args.symbols is None else symbols_argument(args.symbols)
    except (SettingsError, InvalidSymbol) as exc:
        print(f"{PROG} watch: error: {exc}", file=sys.stderr)
        return 2
    store = MarketStore(depth=max(args.depth, 20))
    reader = BusReader(url, store, symbols, stale_after=settings.stale_after, role="watch")
    stop = stop_on_sigterm()
    out = sys.stdout.buffer

    def emit() -> None:
        snap = store.snapshot(series=False, max_trades=1)
        exchanges = args.exchange or reader.exchanges() or sorted({x for x, _ in snap.markets})
        write_lines(out, snapshot_lines(snap, exchanges, symbols, args.depth))

    deadline = time.monotonic() + args.seconds
    reader.start()
    try:
        print_until(deadline, args.interval, stop.wait, emit)
    finally:
        reader.stop()
    return 0


class _HistoryReport:
    """One stderr line when the history database starts failing and when it recovers (the JSON
    lines on stdout keep their schema and keep coming either way)."""

    def __init__(self, history: HistoryWriter | None) -> None:
        self.history = history
        self.failing = False

    def check(self) -> None:
        if self.history is None:
            return
        s = self.history.status()
        if s.state == "failing" and not self.failing:
            print(
                f"{PROG} watch: history failing ({s.pending_rows} rows pending, "
                f"{s.dropped_rows} dropped): {s.detail}",
                file=sys.stderr,
                flush=True,
            )
        elif s.state == "ok" and self.failing:
            print(f"{PROG} watch: history ok again: {s.detail}", file=sys.stderr, flush=True)
        self.failing = s.state == "failing"


def _replay_environ(args: argparse.Namespace) -> dict[str, str] | None:
    """``--replay FILE`` / ``--speed`` as the environment variables they stand for."""
    if args.replay is None and args.speed is None:
        return None
    if args.replay is not None and args.exchange not in (None, (REPLAY,)):
        named = ",".join(args.exchange)
        raise SettingsError(f"--replay cannot be combined with --exchange {named}")
    replaying = args.replay is not None or args.exchange == (REPLAY,)
    overlay = {"MARKET_EXCHANGE": REPLAY} if replaying else {}
    if args.replay is not None:
        overlay["MARKET_REPLAY_FILE"] = args.replay
    if args.speed is not None:
        overlay["MARKET_REPLAY_SPEED"] = args.speed
    return {**os.environ, **overlay}


def _replay_over(worker: Worker) -> Callable[[], bool]:
    def over() -> bool:
        status = worker.store.snapshot(series=False, max_trades=0).statuses.get(REPLAY)
        return status is not None and status.state == "stopped"

    return over


def _wait(stop: threading.Event, seconds: float, over: Callable[[], bool] | None) -> bool:
    """Wait ``seconds``; True when told to stop (or, ``over`` given, when the replay is over)."""
    if over is None:
        return stop.wait(seconds)
    deadline = time.monotonic() + seconds
    while not over():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if stop.wait(min(0.05, remaining)):
            return True
    return True
