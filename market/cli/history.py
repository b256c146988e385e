"""``history``: export the stored rows of one market (``--kind statuses``: of one exchange)
from ``MARKET_DB`` or ``--db`` to stdout, as CSV or JSON (``market.history.reader``).

Exit 0, 1 when the database fails, 2 on bad arguments or settings (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
import time

from market.cli.args import PROG, symbols_argument
from market.errors import InvalidSymbol, SettingsError
from market.history.db import Database, HistoryError
from market.history.reader import KINDS, export, parse_when, read_rows
from market.settings import Settings
from market.urls import parse_db_url


def history(args: argparse.Namespace) -> int:
    """Export stored rows of one market (statuses: of one exchange) to stdout."""
    err = f"{PROG} history: error:"
    if args.format == "parquet":
        print(f"{err} parquet needs pyarrow, not installed (use csv or json)", file=sys.stderr)
        return 2
    now_ms = int(time.time() * 1000)
    try:
        url = parse_db_url(args.db, "--db") if args.db else parse_db_url(Settings.from_env().db)
        since = parse_when(args.since, now_ms)
        until = now_ms + 1 if args.until is None else parse_when(args.until, now_ms)
        symbol = None if args.symbol is None else symbols_argument(args.symbol)[0]
    except (SettingsError, InvalidSymbol) as exc:
        print(f"{err} {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"{err} --since/--until: {exc}", file=sys.stderr)
        return 2
    if symbol is None and KINDS[args.kind][3]:
        print(f"{err} --symbol is required for --kind {args.kind}", file=sys.stderr)
        return 2
    if not url.enabled:
        print(f"{err} history is off (MARKET_DB=none)", file=sys.stderr)
        return 2
    try:
        db = Database(url)
        try:
            columns, rows = read_rows(db, args.kind, args.exchange, symbol, since, until)
        finally:
            db.close()
    except HistoryError as exc:
        print(f"{err} {exc}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(export(columns, rows, args.format))
    sys.stdout.flush()
    return 0
