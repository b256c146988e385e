"""A real PostgreSQL on loopback (Debian's binaries, $PG_BIN to choose others): a throw-away
cluster in a temporary directory, stopped and removed afterwards. ``start_postgres`` skips the
test with the reason when the binaries are absent or cannot run; the ``postgres`` and ``pg_url``
fixtures built on it are in ``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.net import free_port


def _pg_bin() -> Path:
    """$PG_BIN, else the newest Debian PostgreSQL (/usr/lib/postgresql/<version>/bin)."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()


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


def start_postgres() -> Iterator[PgServer]:
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
    server = PgServer(base, free_port(), as_user)
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
