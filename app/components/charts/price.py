"""The Price chart: three stacked panes on one time axis: the mid with the best bid/ask band,
the spread in bps, the top-N imbalance (the series columns of the chosen window)."""

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
from app.components.theme import AMBER, BLUE, GREEN, RED, TEXT


def price_spec(
    series: np.ndarray,
    *,
    exchange: str,
    symbol: str,
    depth: int,
    simulated: bool | str,
    max_points: int = MAX_DRAWN_POINTS,
    height: int = CHART_HEIGHT,
    decimals: int | None = None,
) -> FigureSpec:
    """``series`` is ``series_array(view.series)`` (already cut to the wanted window);
    ``decimals``: the market's price decimals, for the hover labels."""
    n = len(series)
    idx = downsample_indices(series[:, COL["mid"]], max_points) if n else np.arange(0)
    s = series[idx]
    x = s[:, COL["t"]] * 1000.0  # ms since the epoch: a date axis, sent as a typed array

    def col(name: str) -> np.ndarray:
        return s[:, COL[name]].astype(np.float32)  # half the bytes; ~7 digits is plenty to draw

    line = {"width": 1}
    imb_name = f"imbalance_{depth}"
    traces = [
        trace(
            "scatter",
            x=x,
            y=col("best_ask"),
            name="ask",
            mode="lines",
            line={**line, "color": RED},
            hovertemplate=price_hover(decimals) + "<extra>ask</extra>",
        ),
        trace(
            "scatter",
            x=x,
            y=col("best_bid"),
            name="bid",
            mode="lines",
            line={**line, "color": GREEN},
            fill="tonexty",
            fillcolor="rgba(139,147,167,0.16)",
            hovertemplate=price_hover(decimals) + "<extra>bid</extra>",
        ),
        trace(
            "scatter",
            x=x,
            y=col("mid"),
            name="mid",
            mode="lines",
            line={"width": 1.6, "color": AMBER},
            hovertemplate=price_hover(mid_decimals(decimals)) + "<extra>mid</extra>",
        ),
        trace(
            "scatter",
            x=x,
            y=col("spread_bps"),
            name="spread bps",
            mode="lines",
            yaxis="y2",
            line={**line, "color": BLUE},
            hovertemplate="%{y:.2f} bps<extra>spread</extra>",
        ),
        trace(
            "scatter",
            x=x,
            y=col(imb_name),
            name=f"imbalance {depth}",
            mode="lines",
            yaxis="y3",
            line={**line, "color": TEXT},
            fill="tozeroy",
            fillcolor="rgba(91,156,246,0.18)",
            hovertemplate="%{y:+.3f}<extra>imbalance</extra>",
        ),
    ]
    axis = axis_style()
    layout = base_layout(
        chart_title(symbol, exchange, simulated), uirevision(exchange, symbol), height
    )
    layout.update(
        xaxis={**axis, "type": "date", "anchor": "y3", "hoverformat": "%H:%M:%S.%L UTC"},
        yaxis={**axis, "domain": [0.40, 1.0], "side": "right", "tickformat": ","},
        yaxis2={
            **axis,
            "domain": [0.23, 0.37],
            "side": "right",
            "rangemode": "tozero",
            "title": pane_title("spread bps"),
        },
        yaxis3={
            **axis,
            "domain": [0.0, 0.20],
            "side": "right",
            "range": [-1.05, 1.05],
            "tickvals": [-1, 0, 1],
            "zeroline": True,
            "title": pane_title(f"imb. {depth}"),
        },
    )
    if n == 0:  # no axes (they would show an arbitrary year 2000 range), only the message
        waiting(layout, ("xaxis", "yaxis", "yaxis2", "yaxis3"))
    return figure(traces, layout)


def build_price_figure(series: np.ndarray, **kwargs: Any) -> go.Figure:
    """``price_spec`` as a ``go.Figure``."""
    return as_figure(price_spec(series, **kwargs))
