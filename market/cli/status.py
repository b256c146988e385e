"""``status``: the bus's operations view (its collectors and readers; ``market.bus.ops``) as
one JSON object. Exit 0 when Redis answers, 1 when it is unreachable, 2 on bad arguments or
settings (no bus given: one line on stderr)."""

from __future__ import annotations

import argparse
import sys
import time

import orjson

from market.bus.link import down_after
from market.bus.ops import bus_status
from market.cli.args import PROG
from market.errors import SettingsError
from market.settings import Settings
from market.urls import check_redis_url


def status(args: argparse.Namespace) -> int:
    """The bus's operations view as one JSON object (exit 1 when Redis is unreachable)."""
    try:
        settings = Settings.from_env()
        url = args.bus or settings.bus
        if url is None:
            raise SettingsError(
                "no bus: pass --bus redis://HOST:PORT/DB or set MARKET_BUS (a single-process "
                "dashboard shows this on its Feeds page)"
            )
        url = check_redis_url("--bus" if args.bus else "MARKET_BUS", url)
    except SettingsError as exc:
        print(f"{PROG} status: error: {exc}", file=sys.stderr)
        return 2
    result = bus_status(url, time.time(), down_after(settings.stale_after))
    print(orjson.dumps(result).decode(), flush=True)
    return 0 if result["state"] == "connected" else 1
