"""The Depth chart: cumulative bid and ask size against price, best first, the mid between."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go  # type: ignore[import-untyped]

from app.components.charts.encode import as_figure
from app.components.charts.layout import (
    CHART_HEIGHT,
    SIZE_HOVER,
    FigureSpec,
    axis_style,
    base_layout,
    chart_title,
    figure,
    pane_title,
    trace,
    uirevision,
    waiting,
)
from app.components.theme import AMBER, GREEN, RED
from market.events import Levels
from market.metrics import cumulative_depth, top_of_book


def depth_steps(levels: Levels) -> tuple[list[float], list[float]]:
    """The step line of one side's cumulative size, from 0 at the best price outwards: at
    each level's price the total jumps by that level's size (draw with ``line.shape="hv"``)."""
    if not levels:
        return [], []
    xs = [levels[0][0]]
    ys = [0.0]
    for (price, _), total in zip(levels, cumulative_depth(levels), strict=True):
        xs.append(price)
        ys.append(total)
    return xs, ys


def depth_spec(
    bids: Levels,
    asks: Levels,
    *,
    exchange: str,
    symbol: str,
    simulated: bool | str,
    decimals: int,
    height: int = CHART_HEIGHT,
) -> FigureSpec:
    """Cumulative bid (green, left) and ask (red, right) size against price, best first, with
    the mid between them. ``bids`` and ``asks`` are the book's top levels, best first."""
    bx, by = depth_steps(bids)
    ax, ay = depth_steps(asks)
    px = f"%{{x:,.{decimals}f}}"
    traces = [
        trace(
            "scatter",
            x=bx,
            y=by,
            name="bids",
            mode="lines",
            line={"width": 1.6, "color": GREEN, "shape": "hv"},
            fill="tozeroy",
            fillcolor="rgba(14,203,129,0.22)",
            hovertemplate=f"{px}: {SIZE_HOVER}<extra>bids at or above</extra>",
        ),
        trace(
            "scatter",
            x=ax,
            y=ay,
            name="asks",
            mode="lines",
            line={"width": 1.6, "color": RED, "shape": "hv"},
            fill="tozeroy",
            fillcolor="rgba(246,70,93,0.22)",
            hovertemplate=f"{px}: {SIZE_HOVER}<extra>asks at or below</extra>",
        ),
    ]
    axis = axis_style()
    levels = max(len(bids), len(asks))
    what = f"cumulative depth, top {levels} a side"
    layout = base_layout(
        chart_title(symbol, exchange, simulated, what),
        uirevision(exchange, symbol, "depth"),
        height,
    )
    layout.update(
        hovermode="closest",
        xaxis={**axis, "tickformat": f",.{decimals}f", "title": pane_title("price")},
        yaxis={
            **axis,
            "side": "right",
            "rangemode": "tozero",
            "tickformat": ",",
            "title": pane_title("cumulative size"),
        },
    )
    mid = top_of_book(bids, asks).mid
    if mid is not None:
        layout["shapes"] = [
            {
                "type": "line",
                "x0": mid,
                "x1": mid,
                "xref": "x",
                "y0": 0,
                "y1": 1,
                "yref": "paper",
                "line": {"color": AMBER, "width": 1, "dash": "dot"},
            }
        ]
        layout["annotations"] = [
            {
                "text": f"mid {mid:,.{decimals + 1}f}",
                "x": mid,
                "xref": "x",
                "y": 1.0,
                "yref": "paper",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 11, "color": AMBER},
            }
        ]
    if not bids and not asks:
        waiting(layout, ("xaxis", "yaxis"), "waiting for the order book…")
    return figure(traces, layout)


def build_depth_figure(bids: Levels, asks: Levels, **kwargs: Any) -> go.Figure:
    """``depth_spec`` as a ``go.Figure``."""
    return as_figure(depth_spec(bids, asks, **kwargs))
