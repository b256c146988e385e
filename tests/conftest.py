"""Shared test helpers and every fixture more than one test module uses: where the real recordings
live, a poll-with-deadline, workers that are always stopped, the real servers a test starts
(PostgreSQL, redis-server), chromium, and the real page through AppTest.

Plain helpers (no fixtures) are in ``tests/helpers/``, the fake exchanges in ``tests/fakes/``;
they are imported inside the fixtures, since some of them import ``wait_for`` from here.
A module that drives a browser defines its own ``page`` (and ``server``), which overrides the
AppTest ``page`` below.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

import market.venues  # noqa: F401  (declares the venues to market.settings)

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

    from market.settings import Settings
    from market.worker import Timing, Worker
    from tests.helpers.pg_server import PgServer
    from tests.helpers.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures"

T = TypeVar("T")


def shared_fixture(name: str) -> Path:
    """A file of ../shared/fixtures, or skip the test with the reason (a user's fresh clone)."""
    path = SHARED_FIXTURES / name
    if not path.is_file():
        pytest.skip(f"real recording {name} not found in {SHARED_FIXTURES} (only on dev machines)")
    return path


def wait_for(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll ``predicate`` until it returns a truthy value; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


@pytest.fixture
def start_worker() -> Iterator[Callable[..., Worker]]:
    """``start_worker(settings, timing)`` starts a real Worker; every one is stopped (and its
    thread joined) at teardown."""
    from market.worker import Worker

    workers: list[Worker] = []

    def start(settings: Settings, timing: Timing) -> Worker:
        worker = Worker(settings, timing=timing).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


# -- real servers on loopback (skipped with the reason where the binary is absent) ---------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgServer]:
    """A real PostgreSQL for this module's tests; each test gets a clean schema via ``pg_url``."""
    from tests.helpers.pg_server import start_postgres

    yield from start_postgres()


@pytest.fixture
def pg_url(postgres: PgServer) -> Iterator[str]:
    """The server's URL, with every table of a previous test dropped."""
    from market.history.db import Database

    db = Database(postgres.url, migrate=False)
    db.transaction(
        [
            (f"DROP TABLE IF EXISTS {t}", None)
            for t in ("candles", "series", "alerts", "statuses", "schema_version")
        ]
    )
    db.close()
    yield postgres.url


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    from tests.helpers.redis_server import REDIS, RedisServer

    if not os.access(REDIS, os.X_OK):
        pytest.skip("redis-server not installed (apt-get install redis-server; .ci/run does)")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- the page: through AppTest, and in chromium ----------------------------------------------------


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[AppTest]:
    """The real page on the simulated feed (seeded); its worker is stopped afterwards. The
    symbols: the test module's ``PAGE_SYMBOLS``, else BTCUSDT and ETHUSDT."""
    from streamlit.testing.v1 import AppTest

    from app.runtime import stop_workers
    from tests.helpers.apptest import MAIN, RUN_TIMEOUT

    monkeypatch.setenv("MARKET_EXCHANGE", "mock")
    monkeypatch.setenv("MARKET_SYMBOLS", getattr(request.module, "PAGE_SYMBOLS", "BTCUSDT,ETHUSDT"))
    monkeypatch.setenv("MOCK_SEED", "42")
    monkeypatch.chdir(ROOT)
    stop_workers()
    at = AppTest.from_file(MAIN, default_timeout=RUN_TIMEOUT)
    try:
        yield at
    finally:
        stop_workers()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium through Playwright, one a module (the browser modules skip themselves
    where it is absent)."""
    from playwright.sync_api import sync_playwright

    from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
