"""The Overview page: every market of this session's selection across venues, one row each."""

from __future__ import annotations

from app.components.overview import run_overview
from app.components.selection import heartbeat, keep_alive
from app.components.sidebar import session_prefs
from app.runtime import get_demand, get_worker

demand = get_demand()
paused = session_prefs().paused
# the fragment asks for the rows on every tick: that is this session's heartbeat too
run_overview(get_worker().store, lambda: heartbeat(demand).markets(), paused)
keep_alive(demand, paused)
