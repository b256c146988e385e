"""The Candles chart: OHLC at one timeframe, with volume bars under it and the VWAP line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
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
    price_hover,
    trace,
    uirevision,
    waiting,
)
from app.components.theme import AMBER, GREEN, RED
from market.analytics import Candle, candle_vwap

MIN_CANDLE_SPAN = 40  # fewer candles are drawn at the width they would have among 40


def candles_spec(
    candles: Sequence[Candle],
    *,
    timeframe: str,
    interval_ms: int,
    exchange: str,
    symbol: str,
    simulated: bool | str,
    height: int = CHART_HEIGHT,
    decimals: int | None = None,
) -> FigureSpec:
    """OHLC candles (oldest first) with volume bars under them and the VWAP line (cumulative
    from the first candle drawn, see ``candle_vwap``). Candles sit at their opening time."""
    n = len(candles)
    x = np.fromiter((c.open_ms for c in candles), dtype=np.float64, count=n)
    o = np.fromiter((c.open for c in candles), dtype=np.float64, count=n)
    h = np.fromiter((c.high for c in candles), dtype=np.float64, count=n)
    lo = np.fromiter((c.low for c in candles), dtype=np.float64, count=n)
    c = np.fromiter((c.close for c in candles), dtype=np.float64, count=n)
    v = np.fromiter((c.volume for c in candles), dtype=np.float64, count=n)
    line_vwap = np.array([np.nan if p is None else p for p in candle_vwap(candles)], dtype=float)
    cx, co, ch, cl, cc = x, o, h, lo, c
    if n == 1:  # Plotly sizes candles by the gap between them: give it an empty one before
        cx = np.concatenate([x - interval_ms, x])
        co, ch, cl, cc = (np.concatenate([[np.nan], a]) for a in (o, h, lo, c))
    traces = [
        trace(
            "candlestick",
            x=cx,
            open=co,
            high=ch,
            low=cl,
            close=cc,
            name="OHLC",
            increasing={"line": {"color": GREEN, "width": 1}, "fillcolor": GREEN},
            decreasing={"line": {"color": RED, "width": 1}, "fillcolor": RED},
            whiskerwidth=0.3,
        ),
        trace(
            "scatter",
            x=x,
            y=line_vwap,
            name="VWAP",
            mode="lines",
            line={"width": 1.6, "color": AMBER},
            hovertemplate=price_hover(decimals) + "<extra>VWAP</extra>",
        ),
        trace(
            "bar",
            x=x,
            y=v,
            name="volume",
            yaxis="y2",
            width=interval_ms * 0.8,
            marker={  # numbers on a two-colour scale: an array of colour names is slow to check
                "color": (c >= o).astype(np.float32),
                "colorscale": [[0.0, RED], [1.0, GREEN]],
                "cmin": 0,
                "cmax": 1,
                "line": {"width": 0},
            },
            opacity=0.7,
            hovertemplate=SIZE_HOVER + "<extra>volume</extra>",
        ),
    ]
    axis = axis_style()
    what = f"{timeframe} candles, volume, VWAP"
    layout = base_layout(
        chart_title(symbol, exchange, simulated, what),
        uirevision(exchange, symbol, f"candles-{timeframe}"),
        height,
    )
    hover = "%H:%M:%S UTC" if interval_ms < 60_000 else "%H:%M UTC"
    layout.update(
        xaxis={
            **axis,
            "type": "date",
            "anchor": "y2",
            "hoverformat": hover,
            "rangeslider": {"visible": False},
        },
        yaxis={**axis, "domain": [0.27, 1.0], "side": "right", "tickformat": ","},
        yaxis2={
            **axis,
            "domain": [0.0, 0.22],
            "side": "right",
            "rangemode": "tozero",
            "title": pane_title("volume"),
        },
        bargap=0.1,
    )
    if 0 < n < MIN_CANDLE_SPAN:  # a young session: candles, not a few wide bricks
        last = float(x[-1])
        layout["xaxis"]["range"] = [
            last - (MIN_CANDLE_SPAN - 1.5) * interval_ms,
            last + 1.5 * interval_ms,
        ]
    if n == 0:
        waiting(layout, ("xaxis", "yaxis", "yaxis2"), "waiting for trades…")
    return figure(traces, layout)


def build_candles_figure(candles: Sequence[Candle], **kwargs: Any) -> go.Figure:
    """``candles_spec`` as a ``go.Figure``."""
    return as_figure(candles_spec(candles, **kwargs))
