"""The one worker of this process, shared by every browser session.

``get_worker`` is the only place a ``Worker`` is started: Streamlit's ``cache_resource`` runs
it once per process however many sessions and reruns there are. The worker thread is a
daemon and is stopped at interpreter exit; ``stop_workers`` lets tests stop it earlier.

A start that fails (a bad setting, a recording that cannot be replayed) is remembered with the
settings it failed on (and the recording's size and time): every page load shows the same
error without reading the file again, until the settings or the file change.

``get_demand`` is the one ``Demand`` next to it: each session registers its own selection
there, and the worker is reconfigured to the union (the server's defaults always in it). A
daemon thread sweeps it, so the wants of tabs that stopped ticking go after the grace
(``MARKET_VIEWER_GRACE_SECONDS``, default 60).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import cast

import streamlit as st

from market.errors import MarketError
from market.history.writer import HistoryWriter, start_history
from market.settings import Settings
from market.store import MarketStore
from market.wants import Demand
from market.worker import Worker

log = logging.getLogger(__name__)

# Guards _started (appended by the cached factory, drained by stop_workers) and _failed.
_lock = threading.Lock()
_started: list[Worker] = []
_failed: dict[tuple[object, ...], MarketError] = {}  # the last failed start, by _start_key


def _start_key(settings: Settings) -> tuple[object, ...]:
    """What a failed start depends on: the settings and the recording's size and time."""
    stamp: tuple[int, int] | None = None
    if settings.replay_file:
        try:
            st_ = os.stat(settings.replay_file)
            stamp = (st_.st_size, st_.st_mtime_ns)
        except OSError:
            stamp = None
    return (settings, stamp)


# Guarded by _lock too: the stop events of the demand sweepers started by get_demand.
_sweepers: list[threading.Event] = []
# The Demand's clock, read when get_demand builds it: a test may put a fake one here first.
demand_clock: Callable[[], float] = time.monotonic
_history: dict[int, HistoryWriter] = {}  # id(worker) → its history writer (MARKET_DB)


@st.cache_resource(show_spinner=False)
def get_worker() -> Worker:
    """Build the settings from the environment and start the feed (once per process)."""
    settings = Settings.from_env()  # SettingsError names the bad variable; the page shows it
    if settings.bus is not None:  # MARKET_BUS: read a collector's bus, no exchange connection
        return _bus_feed(settings)
    key = _start_key(settings)
    with _lock:
        failed = _failed.get(key)
    if failed is not None:  # the same start failed before: the same error, nothing re-read
        raise failed.with_traceback(None)
    try:
        worker = Worker(settings, MarketStore())
    except MarketError as exc:  # e.g. a recording that cannot be replayed
        with _lock:
            _failed.clear()
            _failed[key] = exc
        raise
    worker.start()
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
        _failed.clear()
        sweepers = list(_sweepers)
        _sweepers.clear()
        writers = list(_history.values())
        _history.clear()
    for stop in sweepers:
        stop.set()
    get_demand.clear()
    for worker in workers:
        worker.stop()
    for writer in writers:  # after the workers: the last trades are flushed too
        writer.stop()
    get_worker.clear()


def viewer_grace() -> float:
    """Seconds a symbol stays fed after the last session that wanted it
    (``MARKET_VIEWER_GRACE_SECONDS``, from the environment or ``.env``; SettingsError)."""
    return Settings.from_env().viewer_grace


@st.cache_resource(show_spinner=False)
def get_demand() -> Demand:
    """What the open sessions want, feeding the worker the union (once per process)."""
    worker = get_worker()
    if worker.settings.bus is not None:  # a bus reader: the collectors' exchanges are the default
        from market.bus.feed import BusFeed

        if isinstance(worker, BusFeed):
            worker.wait_served(worker.settings.connection_timeout)
    defaults = worker.settings

    def apply(exchanges: tuple[str, ...], symbols: tuple[str, ...]) -> None:
        worker.reconfigure(exchanges=exchanges, symbols=symbols)  # raises when refused
        log.info("feeding the viewers' union: %s %s", ",".join(exchanges), ",".join(symbols))

    demand = Demand(
        apply, defaults.exchanges, defaults.symbols, grace_s=viewer_grace(), clock=demand_clock
    )
    stop = threading.Event()
    interval = min(5.0, max(0.1, demand.grace_s / 4))

    def sweep() -> None:
        while not stop.wait(interval) and worker.running:
            try:
                demand.sweep()
            except Exception:  # a refused union is logged; the sweeper keeps going
                log.exception("sweeping the viewers' wants failed")

    with _lock:
        _sweepers.append(stop)
    threading.Thread(target=sweep, name="market-demand-sweep", daemon=True).start()
    return demand


def history_of(worker: Worker) -> HistoryWriter | None:
    """The history writer started with ``worker`` (None when MARKET_DB=none)."""
    with _lock:
        return _history.get(id(worker))


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
