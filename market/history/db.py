"""The database seam: one small class over the DB-API for SQLite and PostgreSQL, and the schema.

Why not SQLAlchemy: the two dialects we need differ only in three places (placeholders ``?`` vs
``%s``, the DDL column types, and how a server is reached), and both accept the same
``INSERT … ON CONFLICT (…) DO UPDATE SET x = excluded.x`` upsert. A forty-line seam covers
that with no dependency beyond the standard library's ``sqlite3`` and ``psycopg`` 3 (imported
only when a ``postgresql://`` URL is used), and keeps every statement visible in one place.

``MARKET_DB`` takes three forms::

    sqlite:///data/market.db     a file, relative to the working directory (the default)
    sqlite:////var/lib/m.db      an absolute path (four slashes)
    postgresql://user:pw@host:5432/db   a PostgreSQL server (psycopg 3)
    none                         history off

The schema is versioned from its first table: ``schema_version`` holds the versions applied and
``MIGRATIONS`` lists each version's statements; opening a database applies the missing ones in
one transaction each, and refuses a database newer than this program.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from market.errors import MarketError
from market.urls import DbUrl, parse_db_url
from market.views import SERIES_COLUMNS

SOURCES = ("live", "simulated", "replay", "venue")  # venue: backfilled from the venue's REST


class HistoryError(MarketError):
    """The history database cannot be opened, migrated or written (the message says why)."""


# -- the schema ---------------------------------------------------------------------------------

# DDL with {int} and {real}, filled per dialect; every table carries `source`. A candle's
# notional, trades and buy/sell volumes are NULL where a venue's backfill does not report them.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE candles (
                exchange TEXT NOT NULL, symbol TEXT NOT NULL, source TEXT NOT NULL,
                open_ms {int} NOT NULL,
                open {real} NOT NULL, high {real} NOT NULL, low {real} NOT NULL,
                close {real} NOT NULL, volume {real} NOT NULL,
                notional {real}, trades {int}, buy_volume {real}, sell_volume {real},
                PRIMARY KEY (exchange, symbol, source, open_ms))""",
            """CREATE TABLE series (
                exchange TEXT NOT NULL, symbol TEXT NOT NULL, source TEXT NOT NULL,
                t_ms {int} NOT NULL,
                best_bid {real}, best_ask {real}, mid {real}, spread {real},
                imbalance_1 {real}, imbalance_3 {real}, imbalance_5 {real},
                imbalance_10 {real}, imbalance_20 {real}, depth_delta {real},
                PRIMARY KEY (exchange, symbol, source, t_ms))""",
            """CREATE TABLE alerts (
                exchange TEXT NOT NULL, symbol TEXT NOT NULL, source TEXT NOT NULL,
                ts_ms {int} NOT NULL, side TEXT NOT NULL,
                price {real} NOT NULL, qty {real} NOT NULL, notional {real} NOT NULL,
                PRIMARY KEY (exchange, symbol, source, ts_ms, side, price, qty))""",
            """CREATE TABLE statuses (
                exchange TEXT NOT NULL, source TEXT NOT NULL, t_ms {int} NOT NULL,
                state TEXT NOT NULL, detail TEXT NOT NULL,
                PRIMARY KEY (exchange, t_ms, state))""",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]
MIGRATION_LOCK_ID = 0x6D61726B6574  # PostgreSQL advisory lock held while migrating ("market")

CANDLE_COLUMNS = (
    "exchange", "symbol", "source", "open_ms", "open", "high", "low", "close", "volume",
    "notional", "trades", "buy_volume", "sell_volume",
)  # fmt: skip
# The store's series columns (``market.store.SERIES_COLUMNS``, in its order) but the time in
# ms and those not kept: the spread in bps (derived) and the session's CVD (of one run). A
# column the store adds needs a migration that adds it to ``series``, or a place here.
SERIES_NOT_STORED = ("t", "spread_bps", "cvd")
SERIES_TABLE_COLUMNS = (
    "exchange", "symbol", "source", "t_ms",
    *(c for c in SERIES_COLUMNS if c not in SERIES_NOT_STORED),
)  # fmt: skip
ALERT_COLUMNS = ("exchange", "symbol", "source", "ts_ms", "side", "price", "qty", "notional")
STATUS_COLUMNS = ("exchange", "source", "t_ms", "state", "detail")


def _insert(table: str, columns: Sequence[str], key: Sequence[str], update: bool) -> str:
    marks = ", ".join("?" for _ in columns)
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
    conflict = f" ON CONFLICT ({', '.join(key)}) DO "
    if not update:
        return head + conflict + "NOTHING"
    sets = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return head + conflict + "UPDATE SET " + sets


UPSERT_CANDLE = _insert("candles", CANDLE_COLUMNS, CANDLE_COLUMNS[:4], update=True)
INSERT_SERIES = _insert("series", SERIES_TABLE_COLUMNS, SERIES_TABLE_COLUMNS[:4], update=False)
INSERT_ALERT = _insert("alerts", ALERT_COLUMNS, ALERT_COLUMNS[:7], update=False)
INSERT_STATUS = _insert("statuses", STATUS_COLUMNS, ("exchange", "t_ms", "state"), update=False)


def row_of(columns: Sequence[str], value: object, **given: Any) -> tuple[Any, ...]:
    """A row of ``columns`` from ``value``'s attributes of the same names (``given`` first):
    built by name, so a field added to a struct cannot shift a column. Pure."""
    return tuple(given[c] if c in given else getattr(value, c) for c in columns)


def clean(value: Any) -> Any:
    """NaN and infinities become NULL (SQLite would store NULL, PostgreSQL NaN: one rule)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- the seam -----------------------------------------------------------------------------------


class Database:
    """One connection to SQLite (WAL) or PostgreSQL, the schema migrated on open.

    SQL is written with ``?`` placeholders; PostgreSQL gets them as ``%s``. Not thread-safe:
    one thread owns a ``Database`` (the writer its own, each reader its own).
    """

    def __init__(self, url: DbUrl | str, *, timeout: float = 5.0, migrate: bool = True) -> None:
        """``timeout``: SQLite's wait for a lock, PostgreSQL's connect timeout (seconds)."""
        self.url = parse_db_url(url) if isinstance(url, str) else url
        if not self.url.enabled:
            raise HistoryError("history is off (MARKET_DB=none)")
        self.kind = self.url.kind
        self._conn: Any = self._connect(timeout)
        try:
            if migrate:
                self._migrate()
        except BaseException:
            self.close()
            raise

    def _connect(self, timeout: float) -> Any:
        where = self.url.shown
        if self.kind == "sqlite":
            path = self.url.target
            try:
                if path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
                _wal(conn, timeout)  # readers never wait for the writer
                conn.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint in WAL
            except (sqlite3.Error, OSError) as exc:
                raise HistoryError(f"cannot open {where}: {exc}") from exc
            return conn
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - pinned in requirements.txt
            raise HistoryError(
                "postgresql:// needs psycopg 3 (pip install psycopg[binary])"
            ) from exc
        try:
            return psycopg.connect(self.url.target, connect_timeout=max(1, round(timeout)))
        except psycopg.Error as exc:
            raise HistoryError(f"cannot connect to {where}: {_first_line(exc)}") from exc

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.kind == "postgresql" else sql

    def _errors(self) -> tuple[type[BaseException], ...]:
        if self.kind == "postgresql":
            import psycopg

            return (psycopg.Error, OSError)
        return (sqlite3.Error, OSError)

    def transaction(self, work: Iterable[tuple[str, Sequence[Sequence[Any]] | None]]) -> None:
        """Run ``(sql, rows)`` pairs in one transaction: ``executemany`` over ``rows``, or the
        statement once when ``rows`` is None; any failure rolls back and raises
        ``HistoryError``."""
        cur = self._conn.cursor()
        try:
            if self.kind == "sqlite":
                cur.execute("BEGIN IMMEDIATE")
            for sql, rows in work:
                if rows is None:
                    cur.execute(self._sql(sql))
                elif rows:
                    cur.executemany(self._sql(sql), rows)
            self._conn.commit()
        except self._errors() as exc:
            try:
                self._conn.rollback()
            except self._errors():
                pass
            raise HistoryError(f"writing {self.url.shown} failed: {_first_line(exc)}") from exc
        finally:
            cur.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._conn.cursor()
        try:
            cur.execute(self._sql(sql), tuple(params))
            rows = [tuple(r) for r in cur.fetchall()]
            if self.kind == "postgresql":
                self._conn.commit()  # end the read's transaction: no idle-in-transaction
            return rows
        except self._errors() as exc:
            try:
                self._conn.rollback()
            except self._errors():
                pass
            raise HistoryError(f"reading {self.url.shown} failed: {_first_line(exc)}") from exc
        finally:
            cur.close()

    def schema_version(self) -> int:
        rows = self.query("SELECT MAX(version) FROM schema_version")
        return int(rows[0][0] or 0) if rows else 0

    def close(self) -> None:
        try:
            self._conn.close()
        except self._errors():
            pass

    def _migrate(self) -> None:
        """Apply the missing migrations, all in one transaction that holds a lock (SQLite's
        write lock, a PostgreSQL advisory lock): processes starting together migrate once."""
        types = (
            {"int": "BIGINT", "real": "DOUBLE PRECISION"}
            if self.kind == "postgresql"
            else {"int": "INTEGER", "real": "REAL"}
        )
        cur = self._conn.cursor()
        try:
            if self.kind == "sqlite":
                cur.execute("BEGIN IMMEDIATE")
            else:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                f"(version {types['int']} PRIMARY KEY, applied_ms {types['int']} NOT NULL)"
            )
            cur.execute("SELECT MAX(version) FROM schema_version")
            current = int(cur.fetchone()[0] or 0)
            if current > SCHEMA_VERSION:
                self._conn.rollback()
                raise HistoryError(
                    f"{self.url.shown} has schema version {current}, newer than this "
                    f"program's {SCHEMA_VERSION}: upgrade the program"
                )
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    cur.execute(statement.format(**types))
                cur.execute(
                    self._sql("INSERT INTO schema_version VALUES (?, ?)"),
                    (version, int(time.time() * 1000)),
                )
            self._conn.commit()
        except self._errors() as exc:
            try:
                self._conn.rollback()
            except self._errors():
                pass
            raise HistoryError(f"migrating {self.url.shown} failed: {_first_line(exc)}") from exc
        finally:
            cur.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Put a SQLite database in WAL mode. Switching a fresh file's mode takes a lock that
    SQLite's busy timeout does not wait for, so connections opening it together retry (until
    ``timeout``), and one that finds it switched by another is done."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.02)
            with contextlib.suppress(sqlite3.OperationalError):
                if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                    return
