"""The Market page (the default): one market's live panel, the one chosen in the sidebar, then
its stored history (a range selector over MARKET_DB, app/components/history_view.py).

The page's one fragment tick is also this session's heartbeat to the ``Demand``, and checks
whether any of its exchanges was ever reachable: when none is, it says so plainly and offers
the SIMULATED feed in one click, while the live feeds keep retrying in the background.
"""

from __future__ import annotations

import streamlit as st

from app.components.dashboard import live_panel
from app.components.history_view import render_history
from app.components.selection import Selection, choose, heartbeat, keep_alive
from app.components.sidebar import Prefs, session_prefs
from app.components.status import unreachable, unreachable_html
from app.components.theme import REFRESH_S
from app.runtime import get_demand, get_worker
from market.errors import MarketError
from market.store import MarketStore
from market.venues import SIMULATED
from market.wants import Demand

RERUN_KEY = "rerun_app"  # set by a fragment's callback that changed what the sidebar shows


def watch_simulated(demand: Demand, symbol: str) -> None:
    """on_click of "Show SIMULATED data": add the simulated feed to this session's selection
    and show its market of the same symbol (the live exchanges stay, and keep retrying)."""
    current = heartbeat(demand)
    exchanges = tuple(dict.fromkeys((*current.exchanges, SIMULATED)))
    try:
        choose(demand, Selection(exchanges, current.symbols))
    except MarketError as exc:
        st.session_state["feed_error"] = f"Refused: {exc}"
        return
    st.session_state["market"] = (SIMULATED, symbol)
    st.session_state[RERUN_KEY] = True


def offer_simulated(store: MarketStore, demand: Demand, chosen: Selection, symbol: str) -> None:
    """The notice and the one-click way out, when no exchange of ``chosen`` is reachable."""
    statuses = store.statuses()  # every tick: a dict copy, no books
    reason = unreachable(statuses, chosen.exchanges)
    if reason is None:
        return
    tries = min(statuses[e].reconnects for e in chosen.exchanges)
    st.html(unreachable_html(reason, tries))
    st.button(
        f"Show SIMULATED data ({SIMULATED} feed)",
        key="show-simulated",
        type="primary",
        on_click=watch_simulated,
        args=(demand, symbol),
        help="Adds the simulated feed to your selection and shows it; only you see the change.",
    )


def tick(store: MarketStore, demand: Demand, prefs: Prefs) -> None:
    """The fragment: heartbeat, the unreachable notice (if so), then the live panel."""
    if st.session_state.pop(RERUN_KEY, False):
        st.rerun()  # the whole page: the sidebar shows the new selection and market
    chosen = heartbeat(demand)
    offer_simulated(store, demand, chosen, prefs.symbol)
    live_panel(store, prefs)


demand = get_demand()
prefs = session_prefs()
st.fragment(tick, run_every=None if prefs.paused else REFRESH_S)(get_worker().store, demand, prefs)
keep_alive(demand, prefs.paused)
render_history(get_worker(), prefs)
