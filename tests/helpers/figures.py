"""Read a Plotly figure's data back from its JSON (as the page sends it to the browser)."""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np


def decode(value: Any) -> list[Any]:
    """A trace array from a figure's JSON: plain, or Plotly's base64 typed array."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return [None if isinstance(v, float) and math.isnan(v) else v for v in array.tolist()]
    return list(value)
