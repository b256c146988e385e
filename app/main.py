"""The dashboard: ``streamlit run app/main.py`` (or ``./run.sh``; ``run_*.sh`` for a preset feed).

Thin on purpose: page setup, the one cached worker and the demand of the open sessions, the
navigation between the three pages (Market, the default; Overview; Feeds), the sidebar
they share (this session's own selection), then the chosen page.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run app/main.py` puts only app/ on the path
    sys.path.insert(0, str(ROOT))

from app.components import style  # noqa: E402
from app.components.sidebar import render_sidebar  # noqa: E402
from app.runtime import get_demand, get_worker  # noqa: E402
from market.errors import MarketError  # noqa: E402

VIEWS = Path(__file__).resolve().parent / "views"

st.set_page_config(
    page_title="Market monitor",
    page_icon="📈",
    layout="wide",
    initial_sidebar_state="expanded",
)
style.inject()

try:
    worker = get_worker()
    demand = get_demand()
except MarketError as exc:  # a bad setting: say which, instead of a traceback
    st.error(f"The market feed cannot start: {exc}")
    st.stop()

# Material icons: drawn by Streamlit's own font, unlike emoji (absent from many Linux fonts)
market_page = st.Page(
    VIEWS / "market.py", title="Market", icon=":material/candlestick_chart:", default=True
)
overview_page = st.Page(
    VIEWS / "overview.py", title="Overview", icon=":material/table_rows:", url_path="overview"
)
feeds_page = st.Page(VIEWS / "feeds.py", title="Feeds", icon=":material/monitor_heart:")
page = st.navigation([market_page, overview_page, feeds_page])
render_sidebar(worker, demand, market_view=page.title == market_page.title)
page.run()
