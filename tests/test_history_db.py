"""The database seam: MARKET_DB parsing, the versioned schema, and the same statements on SQLite
and on a real PostgreSQL started by the ``postgres`` fixture (skipped without the binaries).

The fixture lives here; other history tests import it (``from tests.test_history_db import
postgres``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
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


def _pg_bin() -> Path:
    """$PG_BIN, else the newest Debian PostgreSQL (/usr/lib/postgresql/<version>/bin)."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()


# -- a real PostgreSQL on loopback --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PgServer:
    """A PostgreSQL cluster in a temporary directory, on 127.0.0.1:``port``."""

    base: Path
    port: int
    as_user: list[str]  # ["runuser", "-u", "postgres", "--"] when running as root

    @property
    def url(self) -> str:
        return f"postgresql://market@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        cmd = [*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.base / "data"), *args]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-k {self.base} -p {self.port} -h 127.0.0.1 -c fsync=off"
        self._pg_ctl("-l", str(self.base / "log"), "-o", options, "-w", "-t", "30", "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "-t", "30", "stop")


def _start_postgres() -> Iterator[PgServer]:
    if not (PG_BIN / "initdb").is_file():
        pytest.skip(
            f"PostgreSQL not installed ({PG_BIN}/initdb absent: apt-get install postgresql)"
        )
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as non-root")
        import pwd

        for name in ("postgres", "nobody"):
            try:
                owner = pwd.getpwnam(name)
                break
            except KeyError:
                continue
        if owner is None:
            pytest.skip("running as root and no postgres/nobody user to run PostgreSQL as")
        as_user = ["runuser", "-u", owner.pw_name, "--"]
    base = Path(tempfile.mkdtemp(prefix="market-pg-"))
    base.chmod(0o755)
    if owner is not None:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    server = PgServer(base, _free_port(), as_user)
    try:
        cmd = [*as_user, str(PG_BIN / "initdb"), "-D", str(base / "data"), "-U", "market"]
        subprocess.run(
            [*cmd, "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        server.start()
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            server.stop()  # fails when not running (a test stopped it, or it never started)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgServer]:
    """A real PostgreSQL for this module's tests; each test gets a clean schema via ``pg_url``."""
    yield from _start_postgres()


@pytest.fixture
def pg_url(postgres: PgServer) -> Iterator[str]:
    """The server's URL, with every table of a previous test dropped."""
    db = Database(postgres.url, migrate=False)
    db.transaction(
        [
            (f"DROP TABLE IF EXISTS {t}", None)
            for t in ("candles", "series", "alerts", "statuses", "schema_version")
        ]
    )
    db.close()
    yield postgres.url


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
    url = f"postgresql://market@127.0.0.1:{_free_port()}/postgres"
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
