"""The one worker of this process, shared by every browser session.

``get_worker`` is the only place a ``Worker`` is started: Streamlit's ``cache_resource`` runs
it once per process however many sessions and reruns there are. The worker thread is a
daemon and is stopped at interpreter exit; ``stop_workers`` lets tests stop it earlier.
"""

from __future__ import annotations

import atexit
import logging
import threading

import streamlit as st

from market.history.writer import HistoryWriter, start_history
from market.settings import Settings
from market.store import MarketStore
from market.worker import Worker

log = logging.getLogger(__name__)

# Guards _started (appended by the cached factory, drained by stop_workers).
_lock = threading.Lock()
_started: list[Worker] = []
_history: dict[int, HistoryWriter] = {}  # id(worker) → its history writer (MARKET_DB)


@st.cache_resource(show_spinner=False)
def get_worker() -> Worker:
    """Build the settings from the environment and start the feed (once per process)."""
    settings = Settings.from_env()  # SettingsError names the bad variable; the page shows it
    worker = Worker(settings, MarketStore()).start()
    writer = start_history(worker.store, settings)
    with _lock:
        _started.append(worker)
        if writer is not None:
            _history[id(worker)] = writer
    if writer is not None:
        atexit.register(writer.stop)  # registered first, runs last (LIFO): after the worker
    atexit.register(worker.stop)
    log.info(
        "market worker started: %s %s", ",".join(settings.exchanges), ",".join(settings.symbols)
    )
    return worker


def stop_workers() -> None:
    """Stop every worker this process started and forget the cached one (idempotent)."""
    with _lock:
        workers = list(_started)
        _started.clear()
        writers = list(_history.values())
        _history.clear()
    for worker in workers:
        worker.stop()
    for writer in writers:  # after the workers: the last trades are flushed too
        writer.stop()
    get_worker.clear()


def history_of(worker: Worker) -> HistoryWriter | None:
    """The history writer started with ``worker`` (None when MARKET_DB=none)."""
    with _lock:
        return _history.get(id(worker))
