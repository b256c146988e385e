"""The order book ladder: asks above (red, best at the bottom), the spread row, bids below
(green, best at the top), each row with a bar proportional to its cumulative depth.

``ladder_html`` is pure; an HTML table is a few kB and renders far faster than a dataframe.
"""

from __future__ import annotations

import statistics

from app.components.fmt import esc, fmt_bps, fmt_price, fmt_qty, qty_decimals, tag
from market.events import Levels
from market.metrics import cumulative_depth, top_of_book

LADDER_LEVELS = 20
ASK_BAR = "rgba(246,70,93,0.20)"
BID_BAR = "rgba(14,203,129,0.18)"


def _rows(levels: Levels, side: str, decimals: int, scale: float, qd: int) -> list[str]:
    colour = ASK_BAR if side == "ask" else BID_BAR
    rows = []
    for (price, qty), total in zip(levels, cumulative_depth(levels), strict=True):
        pct = 0.0 if scale <= 0 else min(100.0, 100.0 * total / scale)
        rows.append(
            f'<tr class="{side}" style="background:linear-gradient(to left,{colour} {pct:.1f}%,'
            f'transparent {pct:.1f}%)"><td class="px">{fmt_price(price, decimals)}</td>'
            f"<td>{fmt_qty(qty, qd)}</td><td>{fmt_qty(total, qd)}</td></tr>"
        )
    return rows


def ladder_html(
    bids: Levels,
    asks: Levels,
    decimals: int,
    *,
    symbol: str,
    simulated: bool | str,
    levels: int = LADDER_LEVELS,
) -> str:
    """Top ``levels`` a side; bars are scaled to the larger of the two cumulative totals."""
    bids, asks = bids[:levels], asks[:levels]
    bid_total = cumulative_depth(bids)[-1] if bids else 0.0
    ask_total = cumulative_depth(asks)[-1] if asks else 0.0
    scale = max(bid_total, ask_total)
    sizes = [q for _, q in bids + asks]
    qd = qty_decimals(statistics.median(sizes)) if sizes else 4
    ask_rows = _rows(asks, "ask", decimals, scale, qd)[::-1]  # worst ask on top, best by spread
    bid_rows = _rows(bids, "bid", decimals, scale, qd)
    tob = top_of_book(bids, asks)
    spread_row = (
        '<tr class="spreadrow" title="mid · spread · spread in bps">'
        f'<td class="px">{fmt_price(tob.mid, decimals + 1)}</td>'
        f"<td>{fmt_price(tob.spread, decimals)}</td><td>{fmt_bps(tob.spread_bps)}</td></tr>"
    )
    sim = f' <span class="simtag">{tag(simulated)}</span>' if simulated else ""
    return (
        '<div class="ladder">'
        f'<div class="panelhead">ORDER BOOK · {esc(symbol)} · top {levels}{sim}</div>'
        '<table class="book"><colgroup><col style="width:38%"><col style="width:31%">'
        '<col style="width:31%"></colgroup>'
        "<thead><tr><th>Price</th><th>Size</th><th>Total</th></tr></thead>"
        f"<tbody>{''.join(ask_rows)}{spread_row}{''.join(bid_rows)}</tbody></table></div>"
    )
