"""Which chart the Market page draws (Price · Candles · Depth · Flow) and the candles'
timeframe: per-user choices, drawn inside the fragment so a click redraws only the panel.

One run builds only the chart shown: every plotly figure costs its serialisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from market.analytics import TIMEFRAMES_MS

CHART_VIEWS = ("Price", "Candles", "Depth", "Flow")
DEFAULT_VIEW = "Price"
TIMEFRAMES = ("1s", "1m", "5m", "15m")
DEFAULT_TIMEFRAME = "1m"
CHART_VIEW_KEY = "chart_view"
TIMEFRAME_KEY = "timeframe"
VIEW_HELP = (
    "Price: mid, bid/ask band, spread, imbalance · Candles: OHLC, volume, VWAP · "
    "Depth: cumulative book size by price · Flow: mid with CVD and depth delta under it"
)
assert set(TIMEFRAMES) == set(TIMEFRAMES_MS)


@dataclass(frozen=True, slots=True)
class ChartChoice:
    view: str = DEFAULT_VIEW
    timeframe: str = DEFAULT_TIMEFRAME

    @property
    def interval_ms(self) -> int:
        return TIMEFRAMES_MS[self.timeframe]

    @property
    def needs_all_trades(self) -> bool:
        """One-second candles are built from the trades tape (all kept trades)."""
        return self.view == "Candles" and self.timeframe == "1s"


def chart_choice() -> ChartChoice:
    """This user's choice as the widgets left it (the defaults before any)."""
    state = st.session_state
    view = state.get(CHART_VIEW_KEY)
    timeframe = state.get(TIMEFRAME_KEY)
    return ChartChoice(
        view if view in CHART_VIEWS else DEFAULT_VIEW,
        timeframe if timeframe in TIMEFRAMES else DEFAULT_TIMEFRAME,
    )


def _view_control() -> None:
    st.segmented_control(
        "Chart",
        CHART_VIEWS,
        key=CHART_VIEW_KEY,
        required=True,
        label_visibility="collapsed",
        help=VIEW_HELP,
    )


def render_selector(choice: ChartChoice) -> None:
    """The view control, and the timeframe control when candles are shown."""
    state = st.session_state
    state[CHART_VIEW_KEY] = choice.view  # before the widgets: their value, no default needed
    state[TIMEFRAME_KEY] = choice.timeframe
    if choice.view != "Candles":  # no columns to hold nothing: three element messages less a run
        _view_control()
        return
    left, right = st.columns([0.62, 0.38], vertical_alignment="center")
    with left:
        _view_control()
    with right:
        st.segmented_control(
            "Timeframe",
            TIMEFRAMES,
            key=TIMEFRAME_KEY,
            required=True,
            label_visibility="collapsed",
            help="1s: from the trades tape (the last 1,000 trades) · 1m: the session's "
            "one-minute candles · 5m, 15m: aggregated from them",
        )
