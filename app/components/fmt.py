"""Pure formatting helpers: every number the page shows goes through one of these.

Tests compare the page's text with these functions applied to the store's values, so the
page and the tests can never disagree about how a number is written.
"""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime

DASH = "—"


def _bad(value: float | None) -> bool:
    """None, NaN or ±inf: a number the page must not print."""
    return value is None or not math.isfinite(value)


def price_decimals(ref: float | None) -> int:
    """Decimals for prices near ``ref``: about 5 significant digits, at least 2, at most 10.

    65,012.00 · 3,201.50 · 150.12 · 15.123 · 6.5012 · 0.55123 · 0.000012345
    """
    if ref is None or _bad(ref) or ref <= 0:
        return 2
    return int(min(10, max(2, 4 - math.floor(math.log10(ref)))))


def fmt_price(value: float | None, decimals: int) -> str:
    """``65012.5, 2`` → ``"65,012.50"``; unknown → ``"—"``."""
    if value is None or _bad(value):
        return DASH
    return f"{value:,.{decimals}f}"


def qty_decimals(ref: float | None) -> int:
    """Decimals for sizes near ``ref``: 4 significant digits, 0 to 8 decimals.

    One value per column keeps the digits aligned: 1,234 · 12.30 · 0.5000 · 0.01230.
    """
    if ref is None or _bad(ref) or ref <= 0:
        return 4
    return int(min(8, max(0, 3 - math.floor(math.log10(ref)))))


def fmt_qty(value: float | None, decimals: int | None = None) -> str:
    """A size with ``decimals`` places (default: ``qty_decimals`` of the value itself)."""
    if value is None or _bad(value):
        return DASH
    places = qty_decimals(abs(value)) if decimals is None else decimals
    return f"{value:,.{places}f}"


def fmt_notional(value: float | None) -> str:
    """Quote-currency amounts, compact: 950 · 12.3k · 4.56M · 1.20B."""
    if value is None or _bad(value):
        return DASH
    v = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if v >= limit:
            return (
                f"{value / limit:,.2f}{suffix}"
                if v < limit * 100
                else f"{value / limit:,.1f}{suffix}"
            )
    return f"{value:,.0f}" if v >= 10 else f"{value:,.2f}"


def fmt_signed(value: float | None, decimals: int, suffix: str = "") -> str | None:
    """A delta for ``st.metric``: ``"+1.50"``, ``"-0.25 bps"``; ``"0"`` when it rounds to zero
    (Streamlit draws the literal ``"0"`` grey, without an arrow); None when unknown."""
    if value is None or _bad(value):
        return None
    text = f"{abs(value):,.{decimals}f}"
    if float(text.replace(",", "")) == 0:
        return "0"
    return f"{'-' if value < 0 else '+'}{text}{suffix}"


def fmt_bps(value: float | None) -> str:
    return DASH if value is None or _bad(value) else f"{value:.2f} bps"


def fmt_imbalance(value: float | None) -> str:
    """In [-1, 1], signed: ``"+0.234"``."""
    return DASH if value is None or _bad(value) else f"{value:+.3f}"


def fmt_age(seconds: float | None) -> str:
    if seconds is None or _bad(seconds):
        return DASH
    s = seconds
    if s < 10:
        return f"{s:.1f} s"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def fmt_rate(value: float | None) -> str:
    return DASH if value is None or _bad(value) else f"{value:,.1f}"


def fmt_clock(ts_s: float) -> str:
    """Seconds since the epoch → ``"14:03:07"`` (UTC)."""
    return datetime.fromtimestamp(ts_s, UTC).strftime("%H:%M:%S")


def esc(text: object) -> str:
    """HTML-escape anything that reaches ``st.html`` (symbols and details come from outside)."""
    return html.escape(str(text), quote=True)


def tag(label: bool | str) -> str:
    """The tag text for a ``source_label`` (or a plain True: simulated)."""
    return label if isinstance(label, str) and label else "SIMULATED"
