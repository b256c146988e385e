"""``bench``: the pipeline's ingest rate on one or more recordings (``market.bench``), as text
or, with ``--json``, one JSON object; figures, never a pass/fail. Exit 2 on a bad recording."""

from __future__ import annotations

import argparse
import sys

import orjson

from market.bench import bench as run_bench
from market.bench import describe as describe_bench
from market.cli.args import PROG
from market.errors import SettingsError


def bench(args: argparse.Namespace) -> int:
    """Print the pipeline's ingest rate on a recording (figures, never a pass/fail)."""
    try:
        result = run_bench(args.files, args.repeat)
    except SettingsError as exc:
        print(f"{PROG} bench: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(orjson.dumps(result).decode())
    else:
        print(describe_bench(result))
    return 0
