"""The database seam: MARKET_DB parsing, the versioned schema, and the same statements on SQLite
and on a real PostgreSQL started by the ``postgres`` fixture (skipped without the binaries).

The ``postgres`` fixture (one server a module) and ``pg_url`` (a clean schema a test) are in
``tests/conftest.py`` for every history test; the server itself is ``tests/helpers/pg_server.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from market.errors import SettingsError
from market.history.db import (
    ALERT_COLUMNS,
    CANDLE_COLUMNS,
    INSERT_SERIES,
    MIGRATIONS,
    SCHEMA_VERSION,
    SERIES_TABLE_COLUMNS,
    STATUS_COLUMNS,
    UPSERT_CANDLE,
    Database,
    HistoryError,
    clean,
)
from market.redact import redact_url
from market.settings import Settings
from market.urls import parse_db_url
from tests.helpers.net import closed_port


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/h.db"
    url: str = request.getfixturevalue("pg_url")
    return url


# -- MARKET_DB ----------------------------------------------------------------------------------


def test_market_db_forms() -> None:
    assert Settings.from_env({}, env_file=None).db == "sqlite:///data/market.db"
    assert parse_db_url("sqlite:///data/market.db").target == "data/market.db"
    assert parse_db_url("sqlite:////var/lib/m.db").target == "/var/lib/m.db"
    pg = parse_db_url("postgresql://u:secret@db.example:5432/market")
    assert (pg.kind, pg.target) == ("postgresql", "postgresql://u:secret@db.example:5432/market")
    assert pg.shown == "postgresql://u:***@db.example:5432/market"
    assert parse_db_url("NONE").enabled is False
    assert Settings.from_env({"MARKET_DB": "none"}, env_file=None).db == "none"
    assert redact_url("postgresql://u@h/db", keep_user=True) == "postgresql://u@h/db"


@pytest.mark.parametrize(
    "value",
    ["mysql://h/db", "sqlite://", "sqlite:///", "sqlite://host/x.db", "postgresql://", "data.db"],
)
def test_a_bad_market_db_names_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^MARKET_DB="):
        Settings.from_env({"MARKET_DB": value}, env_file=None)


def test_a_bad_url_never_shows_the_password() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"MARKET_DB": "postgresql://u:hunter2@h:99x/db"}, env_file=None)
    assert "hunter2" not in str(info.value)
    assert str(info.value) == "MARKET_DB='postgresql://u:***@h:99x/db': the port must be a number"


@pytest.mark.parametrize(
    ("name", "value"), [("MARKET_DB_SERIES_DAYS", "-1"), ("MARKET_DB_CANDLE_DAYS", "week")]
)
def test_bad_retention_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}="):
        Settings.from_env({name: value}, env_file=None)


def test_retention_defaults() -> None:
    s = Settings.from_env({"MARKET_DB_SERIES_DAYS": "2"}, env_file=None)
    assert (s.db_series_days, s.db_candle_days) == (2.0, 0.0)


# -- the schema, both dialects ------------------------------------------------------------------


def test_schema_is_versioned_and_migrations_apply_once(db_url: str) -> None:
    db = Database(db_url)
    assert db.schema_version() == SCHEMA_VERSION == MIGRATIONS[-1][0] == 1
    assert db.query("SELECT COUNT(*) FROM schema_version") == [(1,)]
    db.close()
    db = Database(db_url)  # opened again: nothing applied twice
    assert db.query("SELECT version FROM schema_version") == [(1,)]
    db.close()


def test_a_newer_database_is_refused(db_url: str) -> None:
    db = Database(db_url)
    db.transaction([("INSERT INTO schema_version VALUES (?, ?)", [(99, 0)])])
    db.close()
    with pytest.raises(HistoryError, match="schema version 99, newer than this program's 1"):
        Database(db_url)


def test_upsert_rewrites_a_candle_and_nan_is_null(db_url: str) -> None:
    db = Database(db_url)
    key = ("binance", "BTCUSDT", "live", 60_000)
    db.transaction([(UPSERT_CANDLE, [(*key, 1.0, 2.0, 0.5, 1.5, 3.0, 4.5, 2, 1.0, 2.0)])])
    db.transaction([(UPSERT_CANDLE, [(*key, 1.0, 2.5, 0.5, 2.5, 4.0, 7.0, 3, 2.0, 2.0)])])
    nan = float("nan")
    series = ("binance", "BTCUSDT", "live", 1000, 1.0, 2.0, 1.5, 1.0, clean(nan), *[0.1] * 4, 3.0)
    db.transaction([(INSERT_SERIES, [series, series])])  # a repeated row is ignored
    assert db.query("SELECT * FROM candles") == [(*key, 1.0, 2.5, 0.5, 2.5, 4.0, 7.0, 3, 2.0, 2.0)]
    assert db.query("SELECT t_ms, imbalance_1, depth_delta FROM series") == [(1000, None, 3.0)]
    db.close()


def test_the_column_lists_are_the_tables_columns(tmp_path: Path) -> None:
    """The series columns derive from the store's: they must still be the migrated table's,
    in order (and so every table's)."""
    db = Database(f"sqlite:///{tmp_path}/h.db")
    for table, columns in [
        ("candles", CANDLE_COLUMNS),
        ("series", SERIES_TABLE_COLUMNS),
        ("alerts", ALERT_COLUMNS),
        ("statuses", STATUS_COLUMNS),
    ]:
        assert tuple(r[1] for r in db.query(f"PRAGMA table_info({table})")) == columns
    db.close()


def test_unopenable_sqlite_is_a_history_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(HistoryError, match="cannot open sqlite:///"):
        Database(f"sqlite:///{blocker}/sub/h.db")  # a directory under a plain file


def test_unreachable_postgres_is_a_history_error() -> None:
    url = f"postgresql://market@127.0.0.1:{closed_port()}/postgres"
    with pytest.raises(HistoryError, match=r"^cannot connect to postgresql://market@127\.0\.0\.1"):
        Database(url, timeout=2)


def test_processes_starting_together_migrate_once(db_url: str) -> None:
    """Eight connections open a fresh database at once: each succeeds, version 1 applied once."""
    import threading

    errors: list[BaseException] = []
    go = threading.Barrier(8)

    def open_it() -> None:
        go.wait()
        try:
            Database(db_url, timeout=10).close()
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    db = Database(db_url)
    assert db.query("SELECT version FROM schema_version") == [(1,)]
    db.close()
