"""What every chart shares: the figure spec, its title and ``uirevision``, the dark layout,
the axes, the hover formats of prices and sizes, and the "waiting for data" state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.components.fmt import tag
from app.components.theme import AMBER, GRID, MUTED, PANEL, TEXT

BG = "#0e1117"
CHART_HEIGHT = 700
WAITING = "waiting for data…"
SIZE_HOVER = "%{y:,.6~g}"  # sizes: 6 significant digits, no trailing zeros

FigureSpec = dict[str, Any]  # {"data": [trace dicts], "layout": {...}}: what Plotly.js draws


def chart_title(
    symbol: str, exchange: str, simulated: bool | str, what: str = "mid, best bid/ask band"
) -> str:
    label = f" · <b style='color:{AMBER}'>{tag(simulated)}</b>" if simulated else ""
    return f"<b>{symbol}</b> · {exchange} · {what}{label}"


def uirevision(exchange: str, symbol: str, chart: str = "") -> str:
    """Constant per market (and chart): Plotly keeps zoom/pan while this does not change."""
    return f"{exchange}:{symbol}" + (f":{chart}" if chart else "")


def price_hover(decimals: int | None) -> str:
    """A hovered price: with the market's decimals (float32 noise never shows), or as is."""
    return "%{y}" if decimals is None else f"%{{y:,.{decimals}f}}"


def mid_decimals(decimals: int | None) -> int | None:
    """A mid can sit half a tick between two prices: one decimal more (as on the cards)."""
    return None if decimals is None else decimals + 1


def trace(kind: str, **props: Any) -> dict[str, Any]:
    return {"type": kind, **props}


def figure(traces: list[dict[str, Any]], layout: dict[str, Any]) -> FigureSpec:
    return {"data": traces, "layout": layout}


def axis_style() -> dict[str, Any]:
    return {
        "gridcolor": GRID,
        "zerolinecolor": GRID,
        "linecolor": GRID,
        "tickfont": {"color": MUTED, "size": 11},
        "showspikes": False,
        "automargin": True,
    }


def pane_title(text: str) -> dict[str, Any]:
    return {"text": text, "font": {"size": 10, "color": MUTED}}


def base_layout(title: str, revision: str, height: int) -> dict[str, Any]:
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


def waiting(layout: dict[str, Any], axes: Sequence[str], text: str = WAITING) -> None:
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
