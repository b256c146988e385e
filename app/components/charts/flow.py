"""The Flow chart: the mid, with the session CVD and the book's depth delta under it, on one
time axis (the series columns ``mid``, ``cvd`` and ``depth_delta``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go  # type: ignore[import-untyped]

from app.components.charts.encode import as_figure
from app.components.charts.layout import (
    CHART_HEIGHT,
    FigureSpec,
    axis_style,
    base_layout,
    chart_title,
    figure,
    mid_decimals,
    pane_title,
    price_hover,
    trace,
    uirevision,
    waiting,
)
from app.components.series import COL, MAX_DRAWN_POINTS, downsample_indices
from app.components.theme import AMBER, BLUE, MUTED, TEXT


def _decimated(series: np.ndarray, column: str, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """(x in ms, y as float32) of one series column, min-max decimated on its own values."""
    y = series[:, COL[column]]
    idx = downsample_indices(y, max_points) if len(y) else np.arange(0)
    return series[idx, COL["t"]] * 1000.0, y[idx].astype(np.float32)


def flow_spec(
    series: np.ndarray,
    *,
    exchange: str,
    symbol: str,
    simulated: bool | str,
    max_points: int = MAX_DRAWN_POINTS,
    height: int = CHART_HEIGHT,
    decimals: int | None = None,
) -> FigureSpec:
    """Order flow under the price, on one time axis: mid; the session CVD (buyer-initiated
    volume minus seller-initiated, base units); the depth delta (bid minus ask size over the
    top 20 levels), green where bids outweigh asks, red where asks do."""
    x_mid, mid = _decimated(series, "mid", max_points)
    x_cvd, cvd = _decimated(series, "cvd", max_points)
    x_dd, dd = _decimated(series, "depth_delta", max_points)
    line = {"width": 1}
    traces = [
        trace(
            "scatter",
            x=x_mid,
            y=mid,
            name="mid",
            mode="lines",
            line={"width": 1.6, "color": AMBER},
            hovertemplate=price_hover(mid_decimals(decimals)) + "<extra>mid</extra>",
        ),
        trace(
            "scatter",
            x=x_cvd,
            y=cvd,
            name="CVD (session)",
            mode="lines",
            yaxis="y2",
            line={"width": 1.4, "color": BLUE},
            hovertemplate="%{y:+,.6~g}<extra>CVD</extra>",
        ),
        trace(
            "scatter",  # the colour fills only: the line below carries the legend and the hover
            x=x_dd,
            y=np.maximum(dd, 0),
            mode="none",
            yaxis="y3",
            fill="tozeroy",
            fillcolor="rgba(14,203,129,0.30)",
            hoverinfo="skip",
            showlegend=False,
        ),
        trace(
            "scatter",
            x=x_dd,
            y=np.minimum(dd, 0),
            mode="none",
            yaxis="y3",
            fill="tozeroy",
            fillcolor="rgba(246,70,93,0.30)",
            hoverinfo="skip",
            showlegend=False,
        ),
        trace(
            "scatter",
            x=x_dd,
            y=dd,
            name="depth delta (top 20)",
            mode="lines",
            yaxis="y3",
            line={**line, "color": TEXT},
            hovertemplate="%{y:+,.6~g}<extra>depth delta</extra>",
        ),
    ]
    axis = axis_style()
    what = "mid, CVD (session), depth delta (top 20)"
    layout = base_layout(
        chart_title(symbol, exchange, simulated, what), uirevision(exchange, symbol, "flow"), height
    )
    layout.update(
        xaxis={**axis, "type": "date", "anchor": "y3", "hoverformat": "%H:%M:%S.%L UTC"},
        yaxis={**axis, "domain": [0.52, 1.0], "side": "right", "tickformat": ","},
        yaxis2={
            **axis,
            "domain": [0.27, 0.48],
            "side": "right",
            "zeroline": True,
            "zerolinecolor": MUTED,
            "title": pane_title("CVD"),
        },
        yaxis3={
            **axis,
            "domain": [0.0, 0.23],
            "side": "right",
            "zeroline": True,
            "zerolinecolor": MUTED,
            "title": pane_title("depth Δ 20"),
        },
    )
    if len(series) == 0:
        waiting(layout, ("xaxis", "yaxis", "yaxis2", "yaxis3"))
    return figure(traces, layout)


def build_flow_figure(series: np.ndarray, **kwargs: Any) -> go.Figure:
    """``flow_spec`` as a ``go.Figure``."""
    return as_figure(flow_spec(series, **kwargs))
