"""The Overview page: every watched market across venues, one row each."""

from __future__ import annotations

from app.components.overview import run_overview
from app.components.sidebar import session_prefs, watched_markets
from app.runtime import get_worker

worker = get_worker()
run_overview(worker.store, lambda: watched_markets(worker.settings), session_prefs().paused)
