"""Series rows (tuples in ``SERIES_COLUMNS`` order) as numpy columns, and downsampling."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np

from market.store import SERIES_COLUMNS

COL = {name: i for i, name in enumerate(SERIES_COLUMNS)}
MAX_DRAWN_POINTS = 2_000
MAX_CONVERTED_ROWS = 8_000  # longer series are thinned before the (costly) tuple → numpy step
RECENT_ROWS = 50  # ~5 s at 10 points/s: full resolution for the cards' "~1 s ago" deltas


def thin_rows(
    rows: Sequence[Sequence[float]], limit: int = MAX_CONVERTED_ROWS
) -> Sequence[Sequence[float]]:
    """Every k-th row (k the smallest that gives ≤ ``limit``), counted back from the newest so
    the newest row is always kept. The store's 20,000 points become 6,667 (k = 3, one point
    each 0.3 s): converting 20,000 tuples costs 10-20 ms, a third of the fragment's budget."""
    n = len(rows)
    if n <= limit:
        return rows
    step = -(-n // limit)
    return rows[(n - 1) % step :: step]


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
