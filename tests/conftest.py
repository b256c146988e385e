"""Shared test helpers: where the real recordings live, a poll-with-deadline, and workers that
are always stopped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

import market.venues  # noqa: F401  (declares the venues to market.settings)

if TYPE_CHECKING:
    from market.settings import Settings
    from market.worker import Timing, Worker

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
