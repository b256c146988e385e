"""The charts: pure figure builders (plotly.graph_objects only, never st.*).

- Price: three stacked panes on one time axis: mid with the best bid/ask band, spread in bps,
  the top-N imbalance.
- Flow: the mid again, with the session CVD and the book's depth delta under it, on the same
  time axis (the series columns ``cvd`` and ``depth_delta``).
- Candles: OHLC with volume bars and the VWAP line, at one timeframe.
- Depth: cumulative bid and ask size against price, the mid between.

Each chart has a ``*_spec`` builder that returns the plain figure dict (``{"data": [...],
"layout": {...}}``, numpy arrays in it) and a ``build_*_figure`` twin that wraps it in a
``go.Figure`` (tests inspect those; ``go.Figure(spec)`` validates every property in full).
The page sends ``encoded(spec)``: the dict with its arrays already in Plotly's base64 typed
form, built once per tick and shared by every tab (see ``app.components.shared``), so no tab
pays for Plotly's object tree, deep copy and encoding pass (~10 ms a figure).

Long series are min-max decimated to ``MAX_DRAWN_POINTS`` (about two points per pixel of the
chart's width); y values go as float32 (~7 digits, plenty to draw). ``layout.uirevision`` is
constant per market and chart so Plotly keeps a user's zoom across updates whenever the
browser-side chart is updated in place rather than rebuilt (Streamlit 1.67 rebuilds it: Pause
keeps zoom).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go  # type: ignore[import-untyped]

from app.components.fmt import tag
from app.components.series import COL, MAX_DRAWN_POINTS, downsample_indices
from app.components.theme import AMBER, BLUE, GREEN, GRID, MUTED, PANEL, RED, TEXT
from market.analytics import Candle, candle_vwap
from market.events import Levels
from market.metrics import cumulative_depth, top_of_book

BG = "#0e1117"
CHART_HEIGHT = 700
WAITING = "waiting for data…"
MIN_CANDLE_SPAN = 40  # fewer candles are drawn at the width they would have among 40


def chart_title(
    symbol: str, exchange: str, simulated: bool | str, what: str = "mid, best bid/ask band"
) -> str:
    label = f" · <b style='color:{AMBER}'>{tag(simulated)}</b>" if simulated else ""
    return f"<b>{symbol}</b> · {exchange} · {what}{label}"


def uirevision(exchange: str, symbol: str, chart: str = "") -> str:
    """Constant per market (and chart): Plotly keeps zoom/pan while this does not change."""
    return f"{exchange}:{symbol}" + (f":{chart}" if chart else "")


def _price_hover(decimals: int | None) -> str:
    """A hovered price: with the market's decimals (float32 noise never shows), or as is."""
    return "%{y}" if decimals is None else f"%{{y:,.{decimals}f}}"


def _mid_decimals(decimals: int | None) -> int | None:
    """A mid can sit half a tick between two prices: one decimal more (as on the cards)."""
    return None if decimals is None else decimals + 1


SIZE_HOVER = "%{y:,.6~g}"  # sizes: 6 significant digits, no trailing zeros


def _trace(kind: str, **props: Any) -> dict[str, Any]:
    return {"type": kind, **props}


FigureSpec = dict[str, Any]  # {"data": [trace dicts], "layout": {...}}: what Plotly.js draws


def _figure(traces: list[dict[str, Any]], layout: dict[str, Any]) -> FigureSpec:
    return {"data": traces, "layout": layout}


def as_figure(spec: FigureSpec) -> go.Figure:
    """The spec as a ``go.Figure``, without Plotly's per-property validation (tests validate
    every builder's output in full with ``go.Figure(fig.to_dict())``)."""
    return go.Figure(data=spec["data"], layout=spec["layout"], _validate=False)


_TYPED = {"float32": "f4", "float64": "f8", "int32": "i4", "uint8": "u1", "int8": "i1"}


def _encode(value: Any) -> Any:
    """A copy of ``value`` with every 1-D numpy array of a type Plotly.js reads as a typed
    array turned into ``{"dtype", "bdata"}`` (as ``go.Figure.to_dict`` does); other values
    as they are. The spec itself is left untouched."""
    if isinstance(value, dict):
        return {k: v if k == "range" else _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, np.ndarray):
        dtype = _TYPED.get(str(value.dtype))
        if dtype is None or value.ndim != 1 or value.size == 0:
            return value.tolist()
        data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode("ascii")
        return {"dtype": dtype, "bdata": data}
    return value


class EncodedFigure(go.Figure):  # type: ignore[misc]
    """A figure spec in the exact form ``st.plotly_chart`` sends to the browser, encoded
    once: ``st.plotly_chart`` asks a ``go.Figure`` only for ``to_dict()``, then serializes
    that dict, so every tab that shows the same figure skips Plotly's object tree, its deep
    copy and its encoding pass. Read-only: nothing of ``go.Figure`` but ``to_dict`` works."""

    def __init__(self, spec: FigureSpec) -> None:  # go.Figure's own __init__ is never run
        object.__setattr__(
            self, "_encoded", {"data": _encode(spec["data"]), "layout": spec["layout"]}
        )

    def to_dict(self) -> dict[str, Any]:
        encoded: dict[str, Any] = object.__getattribute__(self, "_encoded")
        return encoded

    @property
    def payload_bytes(self) -> int:
        """The size of the JSON the browser gets (bench/page_time.py prints it)."""
        import orjson

        return len(orjson.dumps(self.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY))


def encoded(spec: FigureSpec) -> EncodedFigure:
    return EncodedFigure(spec)


def _axis() -> dict[str, Any]:
    return {
        "gridcolor": GRID,
        "zerolinecolor": GRID,
        "linecolor": GRID,
        "tickfont": {"color": MUTED, "size": 11},
        "showspikes": False,
        "automargin": True,
    }


def _pane_title(text: str) -> dict[str, Any]:
    return {"text": text, "font": {"size": 10, "color": MUTED}}


def _layout(title: str, revision: str, height: int) -> dict[str, Any]:
    """What every chart shares: dark theme, title top left, legend above the plot."""
    return {
        "title": {
            "text": title,
            "x": 0.0,
            "xanchor": "left",
            "xref": "paper",
            "yref": "container",
            "y": 0.995,
            "yanchor": "top",
            "font": {"size": 13, "color": TEXT},
        },
        "uirevision": revision,
        "height": height,
        "margin": {"l": 4, "r": 4, "t": 50, "b": 4},
        "paper_bgcolor": BG,
        "plot_bgcolor": BG,
        "font": {"color": TEXT, "size": 11},
        "hovermode": "x unified",
        "hoverlabel": {"bgcolor": PANEL, "bordercolor": GRID},
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
    }


def _waiting(layout: dict[str, Any], axes: Sequence[str], text: str = WAITING) -> None:
    """No data: hide the axes (they would show an arbitrary range), show only ``text``."""
    for name in axes:
        layout[name] = {**layout.get(name, {}), "visible": False}
    layout["annotations"] = [
        {
            "text": text,
            "showarrow": False,
            "xref": "paper",
            "yref": "paper",
            "x": 0.5,
            "y": 0.7,
            "font": {"size": 16, "color": MUTED},
        }
    ]


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
        _trace(
            "scatter",
            x=x,
            y=col("best_ask"),
            name="ask",
            mode="lines",
            line={**line, "color": RED},
            hovertemplate=_price_hover(decimals) + "<extra>ask</extra>",
        ),
        _trace(
            "scatter",
            x=x,
            y=col("best_bid"),
            name="bid",
            mode="lines",
            line={**line, "color": GREEN},
            fill="tonexty",
            fillcolor="rgba(139,147,167,0.16)",
            hovertemplate=_price_hover(decimals) + "<extra>bid</extra>",
        ),
        _trace(
            "scatter",
            x=x,
            y=col("mid"),
            name="mid",
            mode="lines",
            line={"width": 1.6, "color": AMBER},
            hovertemplate=_price_hover(_mid_decimals(decimals)) + "<extra>mid</extra>",
        ),
        _trace(
            "scatter",
            x=x,
            y=col("spread_bps"),
            name="spread bps",
            mode="lines",
            yaxis="y2",
            line={**line, "color": BLUE},
            hovertemplate="%{y:.2f} bps<extra>spread</extra>",
        ),
        _trace(
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
    axis = _axis()
    layout = _layout(chart_title(symbol, exchange, simulated), uirevision(exchange, symbol), height)
    layout.update(
        xaxis={**axis, "type": "date", "anchor": "y3", "hoverformat": "%H:%M:%S.%L UTC"},
        yaxis={**axis, "domain": [0.40, 1.0], "side": "right", "tickformat": ","},
        yaxis2={
            **axis,
            "domain": [0.23, 0.37],
            "side": "right",
            "rangemode": "tozero",
            "title": _pane_title("spread bps"),
        },
        yaxis3={
            **axis,
            "domain": [0.0, 0.20],
            "side": "right",
            "range": [-1.05, 1.05],
            "tickvals": [-1, 0, 1],
            "zeroline": True,
            "title": _pane_title(f"imb. {depth}"),
        },
    )
    if n == 0:  # no axes (they would show an arbitrary year 2000 range), only the message
        _waiting(layout, ("xaxis", "yaxis", "yaxis2", "yaxis3"))
    return _figure(traces, layout)


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
        _trace(
            "scatter",
            x=x_mid,
            y=mid,
            name="mid",
            mode="lines",
            line={"width": 1.6, "color": AMBER},
            hovertemplate=_price_hover(_mid_decimals(decimals)) + "<extra>mid</extra>",
        ),
        _trace(
            "scatter",
            x=x_cvd,
            y=cvd,
            name="CVD (session)",
            mode="lines",
            yaxis="y2",
            line={"width": 1.4, "color": BLUE},
            hovertemplate="%{y:+,.6~g}<extra>CVD</extra>",
        ),
        _trace(
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
        _trace(
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
        _trace(
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
    axis = _axis()
    what = "mid, CVD (session), depth delta (top 20)"
    layout = _layout(
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
            "title": _pane_title("CVD"),
        },
        yaxis3={
            **axis,
            "domain": [0.0, 0.23],
            "side": "right",
            "zeroline": True,
            "zerolinecolor": MUTED,
            "title": _pane_title("depth Δ 20"),
        },
    )
    if len(series) == 0:
        _waiting(layout, ("xaxis", "yaxis", "yaxis2", "yaxis3"))
    return _figure(traces, layout)


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
        _trace(
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
        _trace(
            "scatter",
            x=x,
            y=line_vwap,
            name="VWAP",
            mode="lines",
            line={"width": 1.6, "color": AMBER},
            hovertemplate=_price_hover(decimals) + "<extra>VWAP</extra>",
        ),
        _trace(
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
    axis = _axis()
    what = f"{timeframe} candles, volume, VWAP"
    layout = _layout(
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
            "title": _pane_title("volume"),
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
        _waiting(layout, ("xaxis", "yaxis", "yaxis2"), "waiting for trades…")
    return _figure(traces, layout)


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
        _trace(
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
        _trace(
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
    axis = _axis()
    levels = max(len(bids), len(asks))
    what = f"cumulative depth, top {levels} a side"
    layout = _layout(
        chart_title(symbol, exchange, simulated, what),
        uirevision(exchange, symbol, "depth"),
        height,
    )
    layout.update(
        hovermode="closest",
        xaxis={**axis, "tickformat": f",.{decimals}f", "title": _pane_title("price")},
        yaxis={
            **axis,
            "side": "right",
            "rangemode": "tozero",
            "tickformat": ",",
            "title": _pane_title("cumulative size"),
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
        _waiting(layout, ("xaxis", "yaxis"), "waiting for the order book…")
    return _figure(traces, layout)


def build_price_figure(series: np.ndarray, **kwargs: Any) -> go.Figure:
    """``price_spec`` as a ``go.Figure``."""
    return as_figure(price_spec(series, **kwargs))


def build_flow_figure(series: np.ndarray, **kwargs: Any) -> go.Figure:
    """``flow_spec`` as a ``go.Figure``."""
    return as_figure(flow_spec(series, **kwargs))


def build_candles_figure(candles: Sequence[Candle], **kwargs: Any) -> go.Figure:
    """``candles_spec`` as a ``go.Figure``."""
    return as_figure(candles_spec(candles, **kwargs))


def build_depth_figure(bids: Levels, asks: Levels, **kwargs: Any) -> go.Figure:
    """``depth_spec`` as a ``go.Figure``."""
    return as_figure(depth_spec(bids, asks, **kwargs))
