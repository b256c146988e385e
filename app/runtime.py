"""The one worker of this process, shared by every browser session.

``get_worker`` is the only place a ``Worker`` is started: Streamlit's ``cache_resource`` runs
it once per process however many sessions and reruns there are. The worker thread is a
daemon and is stopped at interpreter exit; ``stop_workers`` lets tests stop it earlier.
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import cast

import streamlit as st

from market.settings import Settings
from market.store import MarketStore
from market.worker import Worker

log = logging.getLogger(__name__)

# Guards _started (appended by the cached factory, drained by stop_workers).
_lock = threading.Lock()
_started: list[Worker] = []


@st.cache_resource(show_spinner=False)
def get_worker() -> Worker:
    """Build the settings from the environment and start the feed (once per process)."""
    settings = Settings.from_env()  # SettingsError names the bad variable; the page shows it
    if settings.bus is not None:  # MARKET_BUS: read a collector's bus, no exchange connection
        return _bus_feed(settings)
    worker = Worker(settings, MarketStore()).start()
    with _lock:
        _started.append(worker)
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
    for worker in workers:
        worker.stop()
    get_worker.clear()


def _bus_feed(settings: Settings) -> Worker:
    """A ``BusFeed`` (market/bus/feed.py): the store, settings, reconfigure and stop the pages
    use of a worker, fed from the bus. Typed as the Worker the pages take (duck-typed)."""
    from market.bus.feed import BusFeed

    feed = BusFeed(settings).start()
    with _lock:
        _started.append(cast(Worker, feed))
    atexit.register(feed.stop)
    log.info("market bus reader started: %s %s", feed.reader.info().url, ",".join(settings.symbols))
    return cast(Worker, feed)
