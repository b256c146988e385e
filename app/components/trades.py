"""The trades tape: newest first, buys green, sells red, large trades bold with a marker."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from app.components.fmt import fmt_clock, fmt_notional, fmt_price, fmt_qty, qty_decimals, tag
from market.events import Trade

TAPE_ROWS = 50
LARGE_FACTOR = 5.0  # a trade is "large" at >= 5x the median notional of the shown trades


def large_threshold(trades: Sequence[Trade], factor: float = LARGE_FACTOR) -> float:
    """Notional at or above which a shown trade is highlighted (inf when none are shown)."""
    if not trades:
        return float("inf")
    return factor * statistics.median(t.price * t.qty for t in trades)


def tape_html(
    trades: Sequence[Trade],
    decimals: int,
    *,
    simulated: bool | str,
    rows: int = TAPE_ROWS,
    factor: float = LARGE_FACTOR,
) -> str:
    """``trades`` oldest first (as the store keeps them); the tape shows the last ``rows``."""
    shown = list(trades[-rows:])[::-1]
    limit = large_threshold(shown, factor)
    qd = qty_decimals(statistics.median(t.qty for t in shown)) if shown else 4
    body = []
    for t in shown:
        notional = t.price * t.qty
        big = notional >= limit
        marker = "◆ " if big else ""
        body.append(
            f'<tr class="{t.side}{" big" if big else ""}">'
            f'<td class="tm">{fmt_clock(t.ts_ms / 1000.0)}</td>'
            f'<td class="px">{marker}{fmt_price(t.price, decimals)}</td>'
            f"<td>{fmt_qty(t.qty, qd)}</td><td>{fmt_notional(notional)}</td></tr>"
        )
    if not body:
        body.append('<tr><td colspan="4" class="empty">waiting for trades…</td></tr>')
    sim = f' <span class="simtag">{tag(simulated)}</span>' if simulated else ""
    return (
        '<div class="tape">'
        '<div class="panelhead" '
        f'title="◆ large: notional ≥ {factor:g}× the median of the shown trades">'
        f"TRADES · last {rows} · ◆ ≥{factor:g}× median{sim}</div>"
        '<table class="trades"><thead><tr><th class="tm">Time</th><th class="px">Price</th>'
        '<th class="qty">Size</th><th class="val">Value</th></tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )
