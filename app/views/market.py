"""The Market page (the default): one market's live panel, the one chosen in the sidebar."""

from __future__ import annotations

from app.components.dashboard import run_panel
from app.components.sidebar import session_prefs
from app.runtime import get_worker

run_panel(get_worker().store, session_prefs())
