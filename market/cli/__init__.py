"""The headless CLI: ``python -m market watch …`` prints the store as JSON lines.

    python -m market watch --exchange E --symbols BTCUSDT --seconds 20 --interval 1 \
        [--depth 20]

One JSON object per symbol every ``--interval`` seconds and a last one on exit. Exit status 0
after ``--seconds``, 2 on bad arguments or settings (one line on stderr naming the problem).
Simulated data says ``"source": "simulated"`` on every line, replayed data ``"replay"``.

    python -m market record --exchange E --symbols BTCUSDT --out FILE.gz [--seconds 60]
    python -m market watch --replay FILE.gz --speed 1|10|max [--symbols …]
    python -m market bench FILE.gz [--json] [--repeat N]

    python -m market history --exchange E --symbol S --since 24h [--until …]
        [--kind candles|series|alerts|statuses] [--format csv|json]

    python -m market collect --exchange E --symbols S --bus redis://HOST:PORT/DB [--seconds N]
    python -m market watch --bus redis://HOST:PORT/DB [--symbols S]
    python -m market status [--bus redis://HOST:PORT/DB]

``record`` writes every raw frame as received (``<ns> <frame>`` gzip lines, the hftbacktest
collector's format, REST snapshots inline); ``watch --replay`` plays it through the same
pipeline and ends when the recording does; ``bench`` prints the pipeline's ingest rate.
``collect`` runs the feeds and publishes them to a Redis bus, ``watch --bus`` prints the same
lines from it, ``status`` shows its collectors and readers.

``main`` parses (``args``) and hands the arguments to the command's module: ``watch`` (and its
JSON lines, ``lines``), ``record``, ``bench``, ``history``, ``collect``, ``status``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from market.cli import bench, collect, history, record, status, watch
from market.cli.args import build_parser

__all__ = ["main"]

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "collect": collect.collect,
    "status": status.status,
    "record": record.record,
    "bench": bench.bench,
    "history": history.history,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command with ``argv`` (default: ``sys.argv[1:]``); its exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "watch":
        return watch.watch_bus(args) if args.bus is not None else watch.watch(args)
    return _COMMANDS[args.command](args)
