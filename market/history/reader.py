"""Reading history back: rows by market and time range, exports, and the chart's candles.

    python -m market history --exchange E --symbol BTCUSDT --since 24h \\
        [--until 2024-05-01T12:00] [--kind candles|series|alerts|statuses] [--format csv|json]

Times are ``24h`` / ``90m`` / ``7d`` / ``30s`` ago, an ISO date or date-time (UTC unless it
says otherwise), or epoch milliseconds. Every row carries its ``source`` (live, simulated,
replay, venue): nothing simulated or replayed is ever presented as live.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from market.analytics import Candle
from market.history.candles import candle_of
from market.history.db import (
    ALERT_COLUMNS,
    CANDLE_COLUMNS,
    SERIES_TABLE_COLUMNS,
    STATUS_COLUMNS,
    Database,
)

# kind → (table, columns, time column, has a symbol)
KINDS: dict[str, tuple[str, tuple[str, ...], str, bool]] = {
    "candles": ("candles", CANDLE_COLUMNS, "open_ms", True),
    "series": ("series", SERIES_TABLE_COLUMNS, "t_ms", True),
    "alerts": ("alerts", ALERT_COLUMNS, "ts_ms", True),
    "statuses": ("statuses", STATUS_COLUMNS, "t_ms", False),
}
_SOURCE, _OPEN_MS = CANDLE_COLUMNS.index("source"), CANDLE_COLUMNS.index("open_ms")
FORMATS = ("csv", "json", "parquet")
MAX_ROWS = 2_000_000  # one export at most (bounded memory: ~1 year of one market's minutes × 4)
_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_when(text: str, now_ms: int) -> int:
    """``24h`` (ago), an ISO date / date-time (UTC unless given), or epoch ms → epoch ms.
    Raises ``ValueError`` with a short reason."""
    value = text.strip()
    match = _AGO.match(value.lower())
    if match:
        return now_ms - int(float(match.group(1)) * _UNIT_MS[match.group(2)])
    if value.isdigit() and len(value) >= 10:
        return int(value)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{value[:40]!r}: expected e.g. 24h, 90m, 7d, 2024-05-01T12:00 or epoch ms"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def read_rows(
    db: Database,
    kind: str,
    exchange: str,
    symbol: str | None,
    since_ms: int,
    until_ms: int,
    sources: Sequence[str] | None = None,
    limit: int = MAX_ROWS,
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """The ``kind`` rows of one market (statuses: of the exchange) with the time column in
    ``[since_ms, until_ms)``, oldest first; ``sources`` limits the sources."""
    table, columns, at, by_symbol = KINDS[kind]
    where = [f"{at} >= ?", f"{at} < ?", "exchange = ?"]
    params: list[Any] = [since_ms, until_ms, exchange]
    if by_symbol and symbol is not None:
        where.append("symbol = ?")
        params.append(symbol)
    if sources:
        where.append(f"source IN ({', '.join('?' for _ in sources)})")
        params.extend(sources)
    sql = (
        f"SELECT {', '.join(columns)} FROM {table} WHERE {' AND '.join(where)} "
        f"ORDER BY {at}, source LIMIT ?"
    )
    return columns, db.query(sql, [*params, limit])


def chart_candles(
    rows: Iterable[Sequence[Any]], prefer: str = "live"
) -> tuple[list[Candle], set[str]]:
    """One candle per minute from ``read_rows(…, "candles", …)`` rows: the ``prefer`` source's
    where there is one, else the venue's (backfilled); returns them and the sources used."""
    chosen: dict[int, tuple[Sequence[Any], int]] = {}
    for row in rows:
        source = row[_SOURCE]
        rank = 2 if source == prefer else 1 if source == "venue" else 0
        open_ms = int(row[_OPEN_MS])
        if rank and rank > chosen.get(open_ms, ((), 0))[1]:  # other sources are never mixed in
            chosen[open_ms] = (row, rank)
    candles = []
    used = set()
    for open_ms in sorted(chosen):
        r = chosen[open_ms][0]
        used.add(str(r[_SOURCE]))
        candles.append(candle_of(r, CANDLE_COLUMNS))
    return candles, used


def export(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str) -> bytes:
    """CSV with a header line, or JSON: one object per row (NaN and infinities as null)."""
    if fmt == "json":
        objects = [
            {
                c: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for c, v in zip(columns, r, strict=True)
            }
            for r in rows
        ]
        return orjson.dumps(objects) + b"\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)
        return buf.getvalue().encode()
    raise ValueError(f"unknown format {fmt!r}")
