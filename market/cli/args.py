"""The CLI's parser (``build_parser``), its argument types, and what every command shares.

Each argument type turns a bad value into one ``argparse`` error line (exit 2, no usage dump);
the venue names in the help and the checks come from the registry (``market.venues``) and
``market.settings``, never from here.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import threading
from collections.abc import Callable
from typing import NoReturn

from market.errors import InvalidSymbol, SettingsError
from market.history.reader import FORMATS as HISTORY_FORMATS
from market.history.reader import KINDS as HISTORY_KINDS
from market.settings import Settings, exchange_names, parse_exchanges, parse_speed
from market.symbols import parse_symbols
from market.venues import RECORDABLE, VENUES

PROG = "python -m market"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")  # one line, no usage dump


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command: watch, record, bench, history, collect, status."""
    parser = _Parser(prog=PROG, description="Live market monitor, headless.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    watch = commands.add_parser("watch", help="print the store as JSON lines")
    watch.add_argument(
        "--exchange",
        type=_exchanges,
        help=f"one of {', '.join(exchange_names())}, or several comma-separated (one line per "
        f"exchange and symbol); default: MARKET_EXCHANGE or {Settings().exchange}",
    )
    watch.add_argument(
        "--symbols", help="comma-separated, e.g. BTCUSDT,ETHUSDT (default: MARKET_SYMBOLS)"
    )
    watch.add_argument("--seconds", type=_positive(float, "--seconds", 7 * 86_400), default=20.0)
    watch.add_argument("--interval", type=_positive(float, "--interval", 3_600), default=1.0)
    watch.add_argument("--depth", type=_positive(int, "--depth", 1000), default=20)
    watch.add_argument("--verbose", action="store_true", help="log connection events to stderr")
    watch.add_argument(
        "--replay", type=_recording, metavar="FILE",
        help="play a recording (python -m market record) instead of an exchange; ends with it",
    )  # fmt: skip
    watch.add_argument(
        "--speed", type=_speed, help="replay speed: 1 (as recorded, the default), 10, … or max"
    )
    watch.add_argument(
        "--bus", metavar="URL",
        help="read a collector's bus (redis://HOST:PORT/DB) instead of connecting to exchanges",
    )  # fmt: skip
    record = commands.add_parser("record", help="write every raw frame as received (gzip)")
    record.add_argument("--exchange", type=_exchanges, help=f"one of {', '.join(RECORDABLE)}")
    record.add_argument("--symbols", help="comma-separated (default: MARKET_SYMBOLS)")
    record.add_argument("--out", required=True, metavar="FILE.gz", help="the recording to write")
    record.add_argument("--seconds", type=_positive(float, "--seconds", 7 * 86_400), default=60.0)
    record.add_argument(
        "--depth", type=_positive(int, "--depth", 1000), default=20,
        help="levels a side of each book in the closing summary (what the live client held)",
    )  # fmt: skip
    record.add_argument("--verbose", action="store_true", help="log connection events to stderr")
    bench = commands.add_parser("bench", help="pipeline ingest rate on a recording")
    bench.add_argument("files", nargs="+", type=_recording, metavar="FILE")
    bench.add_argument("--repeat", type=_positive(int, "--repeat", 10_000), default=20)
    bench.add_argument("--json", action="store_true", help="one JSON object (DESIGN.md)")
    bench.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)
    history = commands.add_parser("history", help="export stored history (MARKET_DB)")
    history.add_argument("--exchange", required=True, help=", ".join(v.name for v in VENUES))
    history.add_argument("--symbol", help="e.g. BTCUSDT (not needed for --kind statuses)")
    history.add_argument("--since", default="24h", help="24h, 90m, 7d, an ISO time or epoch ms")
    history.add_argument("--until", help="the same forms (default: now)")
    history.add_argument("--kind", choices=tuple(HISTORY_KINDS), default="candles")
    history.add_argument("--format", choices=HISTORY_FORMATS, default="csv")
    history.add_argument("--db", help="a MARKET_DB URL (default: MARKET_DB)")
    history.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)
    collect = commands.add_parser("collect", help="run the feeds and publish them to the bus")
    collect.add_argument("--exchange", type=_exchanges, help="as for watch")
    collect.add_argument("--symbols", help="comma-separated (default: MARKET_SYMBOLS)")
    collect.add_argument("--bus", required=True, metavar="URL", help="redis://HOST:PORT/DB")
    collect.add_argument(
        "--seconds", type=_positive(float, "--seconds", 366 * 86_400),
        help="stop after this long (default: until SIGTERM or Ctrl-C)",
    )  # fmt: skip
    collect.add_argument("--verbose", action="store_true", help="log connection events")
    status = commands.add_parser("status", help="the bus's collectors and readers as JSON")
    status.add_argument("--bus", metavar="URL", help="redis://HOST:PORT/DB (default: MARKET_BUS)")
    status.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)
    return parser


def _positive(kind: type[float] | type[int], name: str, upper: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not (0 < value <= upper) or (isinstance(value, float) and math.isnan(value)):
            raise argparse.ArgumentTypeError(f"{name} must be > 0 and <= {upper:g}, got {text!r}")
        return value

    return parse


def _exchanges(text: str) -> tuple[str, ...]:
    try:
        return parse_exchanges("--exchange", text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("--exchange=", "", 1)) from None


def _recording(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return text


def _speed(text: str) -> str:
    try:
        parse_speed("--speed", text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("--speed=", "", 1)) from None
    return text


def symbols_argument(text: str) -> tuple[str, ...]:
    """``--symbols``/``--symbol`` checked; ``InvalidSymbol`` names the option."""
    try:
        return parse_symbols(text)
    except InvalidSymbol as exc:
        raise InvalidSymbol(f"--symbols: {exc}") from exc


def stop_on_sigterm() -> threading.Event:
    """An event that SIGTERM sets: a command runs until it is set (or its time is up)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop
