"""Series rows (tuples in ``SERIES_COLUMNS`` order) as numpy columns, and downsampling.

Converting tuples to numpy is the costly step (~8 ms for 20,000 rows), and between two
refreshes only a few rows are new: ``shared_series_array`` keeps each market's converted rows
(process-wide, shared by every tab) and converts only the new ones.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Hashable, Sequence
from itertools import chain

import numpy as np

from app.components.shared import SharedCache
from market.views import SERIES_COLUMNS

COL = {name: i for i, name in enumerate(SERIES_COLUMNS)}
# ~2 points per pixel of the chart's width (about 700 px of a 1,400 px window): min-max
# decimation keeps every spike that a pixel column can show
MAX_DRAWN_POINTS = 1_400
RECENT_ROWS = 50  # ~5 s at 10 points/s: full resolution for the cards' "~1 s ago" deltas


def series_array(rows: Sequence[Sequence[float]]) -> np.ndarray:
    """``(n, len(SERIES_COLUMNS))`` float64; NaN stays NaN (unknown)."""
    width = len(SERIES_COLUMNS)
    if not rows:
        return np.empty((0, width), dtype=np.float64)
    # fromiter over the flattened rows is ~2x faster than np.asarray(rows) on 20,000 tuples
    flat = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=len(rows) * width)
    return flat.reshape(len(rows), width)


def window(series: np.ndarray, seconds: float | None) -> np.ndarray:
    """The rows of the last ``seconds`` (by the newest row's time); all rows when None."""
    if seconds is None or len(series) == 0:
        return series
    t = series[:, COL["t"]]
    start = int(np.searchsorted(t, t[-1] - seconds, side="left"))
    return series[start:]


def downsample_indices(y: np.ndarray, max_points: int = MAX_DRAWN_POINTS) -> np.ndarray:
    """Indices of at most ``max_points`` points that keep the shape of ``y``.

    Min-max decimation: the series is cut into equal buckets and each keeps its lowest and
    highest point (spikes survive, unlike striding), plus the first and last point. NaN
    never wins a bucket unless the whole bucket is NaN.
    """
    n = len(y)
    if n <= max_points:
        return np.arange(n)
    size = -(-n // max(1, (max_points - 2) // 2))  # points per bucket, ceil
    buckets = -(-n // size)  # the last bucket may be short: padded, never all padding
    pad = buckets * size - n
    lo = np.concatenate([np.where(np.isnan(y), np.inf, y), np.full(pad, np.inf)])
    hi = np.concatenate([np.where(np.isnan(y), -np.inf, y), np.full(pad, -np.inf)])
    base = np.arange(buckets) * size
    mins = base + lo.reshape(buckets, size).argmin(axis=1)
    maxs = base + hi.reshape(buckets, size).argmax(axis=1)
    idx = np.unique(np.concatenate([[0, n - 1], mins, maxs]))
    return idx[idx < n]


def extend_series(previous: np.ndarray | None, rows: Sequence[Sequence[float]]) -> np.ndarray:
    """``series_array(rows)``, reusing ``previous`` (an earlier ``series_array`` of the same
    market) for the rows both hold: only rows newer than its last one are converted. Falls
    back to converting all rows whenever ``rows`` does not continue ``previous`` exactly."""
    n = len(rows)
    if previous is None or len(previous) == 0 or n == 0:
        return series_array(rows)
    t = COL["t"]
    last_t = float(previous[-1, t])
    new = 0
    while new < n and rows[n - 1 - new][t] > last_t:
        new += 1
    keep = n - new
    if keep == 0 or keep > len(previous):
        return series_array(rows)
    head = previous[len(previous) - keep :]
    joint = np.asarray(rows[keep - 1], dtype=np.float64)
    if rows[0][t] != head[0, t] or not np.array_equal(joint, head[-1], equal_nan=True):
        return series_array(rows)
    if new == 0:
        return head
    return np.concatenate([head, series_array(rows[keep:])])


_CONVERTED: SharedCache[tuple[weakref.ref[object], np.ndarray]] = SharedCache(entries=32)
_CONVERT_LOCK = threading.Lock()  # one conversion at a time: tabs of one market reuse it


def shared_series_array(
    owner: object, key: Hashable, rows: Sequence[Sequence[float]]
) -> np.ndarray:
    """``series_array(rows)`` for the series ``key`` of ``owner`` (a store), converting only
    the rows that are new since the last call for it (by any tab). Read-only result."""
    cache_key = (id(owner), key)
    with _CONVERT_LOCK:
        cached = _CONVERTED.peek(cache_key)
        previous = cached[1] if cached is not None and cached[0]() is owner else None
        array = extend_series(previous, rows)
        array.flags.writeable = False
        _CONVERTED.put(cache_key, (weakref.ref(owner), array))
    return array
