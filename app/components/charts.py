"""The mid-price chart: a pure figure builder (plotly.graph_objects only, never st.*).

Three stacked panes share one time axis: mid with the best bid/ask band, spread in bps,
and the top-N imbalance. Long series are min-max decimated to ``MAX_DRAWN_POINTS``.
``layout.uirevision`` is constant per market so Plotly keeps a user's zoom across updates
whenever the browser-side chart is updated in place rather than rebuilt.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go  # type: ignore[import-untyped]

from app.components.series import COL, MAX_DRAWN_POINTS, downsample_indices

GREEN = "#0ecb81"
RED = "#f6465d"
AMBER = "#f0b90b"
BLUE = "#5b9cf6"
TEXT = "#c9d1e0"
MUTED = "#8b93a7"
GRID = "#232a38"
BG = "#0e1117"
CHART_HEIGHT = 700


def chart_title(symbol: str, exchange: str, simulated: bool) -> str:
    label = " · <b style='color:#f0b90b'>SIMULATED</b>" if simulated else ""
    return f"<b>{symbol}</b> · {exchange} · mid, best bid/ask band{label}"


def uirevision(exchange: str, symbol: str) -> str:
    """Constant per market: Plotly keeps zoom/pan while this does not change."""
    return f"{exchange}:{symbol}"


def build_price_figure(
    series: np.ndarray,
    *,
    exchange: str,
    symbol: str,
    depth: int,
    simulated: bool,
    max_points: int = MAX_DRAWN_POINTS,
    height: int = CHART_HEIGHT,
) -> go.Figure:
    """``series`` is ``series_array(view.series)`` (already cut to the wanted window)."""
    n = len(series)
    idx = downsample_indices(series[:, COL["mid"]], max_points) if n else np.arange(0)
    s = series[idx]
    x = s[:, COL["t"]] * 1000.0  # ms since the epoch: a date axis, sent as a typed array

    def col(name: str) -> np.ndarray:
        return s[:, COL[name]].astype(np.float32)  # half the bytes; ~7 digits is plenty to draw

    line = {"width": 1}
    imb_name = f"imbalance_{depth}"
    traces = [
        go.Scatter(
            x=x,
            y=col("best_ask"),
            name="ask",
            mode="lines",
            line={**line, "color": RED},
            hovertemplate="%{y}<extra>ask</extra>",
        ),
        go.Scatter(
            x=x,
            y=col("best_bid"),
            name="bid",
            mode="lines",
            line={**line, "color": GREEN},
            fill="tonexty",
            fillcolor="rgba(139,147,167,0.16)",
            hovertemplate="%{y}<extra>bid</extra>",
        ),
        go.Scatter(
            x=x,
            y=col("mid"),
            name="mid",
            mode="lines",
            line={"width": 1.6, "color": AMBER},
            hovertemplate="%{y}<extra>mid</extra>",
        ),
        go.Scatter(
            x=x,
            y=col("spread_bps"),
            name="spread bps",
            mode="lines",
            yaxis="y2",
            line={**line, "color": BLUE},
            hovertemplate="%{y:.2f} bps<extra>spread</extra>",
        ),
        go.Scatter(
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
    axis = {
        "gridcolor": GRID,
        "zerolinecolor": GRID,
        "linecolor": GRID,
        "tickfont": {"color": MUTED, "size": 11},
        "showspikes": False,
        "automargin": True,
    }
    layout: dict[str, Any] = {
        "title": {
            "text": chart_title(symbol, exchange, simulated),
            "x": 0.0,
            "xanchor": "left",
            "xref": "paper",
            "yref": "container",
            "y": 0.995,
            "yanchor": "top",
            "font": {"size": 13, "color": TEXT},
        },
        "uirevision": uirevision(exchange, symbol),
        "height": height,
        "margin": {"l": 4, "r": 4, "t": 50, "b": 4},
        "paper_bgcolor": BG,
        "plot_bgcolor": BG,
        "font": {"color": TEXT, "size": 11},
        "hovermode": "x unified",
        "hoverlabel": {"bgcolor": "#161b26", "bordercolor": GRID},
        "showlegend": True,
        "legend": {
            "orientation": "h",
            "x": 0.0,
            "xanchor": "left",
            "y": 1.0,
            "yanchor": "bottom",
            "font": {"size": 11, "color": MUTED},
            "bgcolor": "rgba(0,0,0,0)",
        },
        "dragmode": "zoom",
        "xaxis": {**axis, "type": "date", "anchor": "y3", "hoverformat": "%H:%M:%S.%L UTC"},
        "yaxis": {**axis, "domain": [0.40, 1.0], "side": "right", "tickformat": ",", "title": None},
        "yaxis2": {
            **axis,
            "domain": [0.23, 0.37],
            "side": "right",
            "rangemode": "tozero",
            "title": {"text": "spread bps", "font": {"size": 10, "color": MUTED}},
        },
        "yaxis3": {
            **axis,
            "domain": [0.0, 0.20],
            "side": "right",
            "range": [-1.05, 1.05],
            "tickvals": [-1, 0, 1],
            "zeroline": True,
            "title": {"text": f"imb. {depth}", "font": {"size": 10, "color": MUTED}},
        },
    }
    if n == 0:  # no axes (they would show an arbitrary year 2000 range), only the message
        for name in ("xaxis", "yaxis", "yaxis2", "yaxis3"):
            layout[name] = {**layout[name], "visible": False}
        layout["annotations"] = [
            {
                "text": "waiting for data…",
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.7,
                "font": {"size": 16, "color": MUTED},
            }
        ]
    return go.Figure(data=traces, layout=layout)
