"""The Market page (the default): one market's live panel, the one chosen in the sidebar, then
its stored history (a range selector over MARKET_DB, app/components/history_view.py)."""

from __future__ import annotations

from app.components.dashboard import run_panel
from app.components.history_view import render_history
from app.components.sidebar import session_prefs
from app.runtime import get_worker

prefs = session_prefs()
run_panel(get_worker().store, prefs)
render_history(get_worker(), prefs)
