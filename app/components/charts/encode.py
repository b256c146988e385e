"""A figure spec as Plotly reads it: a ``go.Figure`` for tests (``as_figure``), and the exact
form ``st.plotly_chart`` sends to the browser, encoded once and shared by every tab
(``encoded``): 1-D numpy arrays as Plotly's base64 typed arrays."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import plotly.graph_objects as go  # type: ignore[import-untyped]

from app.components.charts.layout import FigureSpec

_TYPED = {"float32": "f4", "float64": "f8", "int32": "i4", "uint8": "u1", "int8": "i1"}


def as_figure(spec: FigureSpec) -> go.Figure:
    """The spec as a ``go.Figure``, without Plotly's per-property validation (tests validate
    every builder's output in full with ``go.Figure(fig.to_dict())``)."""
    return go.Figure(data=spec["data"], layout=spec["layout"], _validate=False)


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


def encoded(spec: FigureSpec) -> EncodedFigure:
    return EncodedFigure(spec)
