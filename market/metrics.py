"""Pure metrics over book levels and trades. No clock, no store, no I/O.

Every function is zero-safe: where a value cannot be known (an empty side, no volume) it
returns None (or 0.0 where a number is the only sensible answer), never raises.
"""

from __future__ import annotations

from dataclasses import dataclass

from market.events import Level, Levels

DEFAULT_IMBALANCE_DEPTH = 5


@dataclass(frozen=True, slots=True)
class TopOfBook:
    best_bid: float | None
    best_ask: float | None
    bid_qty: float | None
    ask_qty: float | None
    mid: float | None
    spread: float | None
    spread_bps: float | None


def mid_price(best_bid: float | None, best_ask: float | None) -> float | None:
    if best_bid is None or best_ask is None:
        return None
    return (best_bid + best_ask) / 2.0


def spread(best_bid: float | None, best_ask: float | None) -> float | None:
    if best_bid is None or best_ask is None:
        return None
    return best_ask - best_bid


def spread_bps(best_bid: float | None, best_ask: float | None) -> float | None:
    """Spread relative to the mid, in basis points (1 bp = 0.01 %)."""
    mid = mid_price(best_bid, best_ask)
    if mid is None or mid <= 0:
        return None
    return (best_ask - best_bid) / mid * 10_000.0  # type: ignore[operator]


def imbalance(bids: Levels, asks: Levels, depth: int = DEFAULT_IMBALANCE_DEPTH) -> float | None:
    """``(bid_vol - ask_vol) / (bid_vol + ask_vol)`` over the best ``depth`` levels a side.

    In [-1, 1]; +1 means only bids. None when both sides are empty (no volume at all).
    ``bids`` and ``asks`` are best-first, as ``OrderBook.top`` returns them.
    """
    if depth <= 0:
        return None
    bid_vol = sum(q for _, q in bids[:depth])
    ask_vol = sum(q for _, q in asks[:depth])
    total = bid_vol + ask_vol
    if total <= 0:
        return None
    return (bid_vol - ask_vol) / total


def microprice(best_bid: Level | None, best_ask: Level | None) -> float | None:
    """Size-weighted mid: leans toward the side with less resting quantity."""
    if best_bid is None or best_ask is None:
        return None
    (bp, bq), (ap, aq) = best_bid, best_ask
    if bq + aq <= 0:
        return mid_price(bp, ap)
    return (bp * aq + ap * bq) / (bq + aq)


def top_of_book(bids: Levels, asks: Levels) -> TopOfBook:
    """Best bid/ask, their quantities, mid and spread from best-first levels."""
    bid = bids[0] if bids else None
    ask = asks[0] if asks else None
    bp = bid[0] if bid else None
    ap = ask[0] if ask else None
    return TopOfBook(
        best_bid=bp,
        best_ask=ap,
        bid_qty=bid[1] if bid else None,
        ask_qty=ask[1] if ask else None,
        mid=mid_price(bp, ap),
        spread=spread(bp, ap),
        spread_bps=spread_bps(bp, ap),
    )


def imbalances(bids: Levels, asks: Levels, depths: tuple[int, ...]) -> tuple[float | None, ...]:
    """``imbalance`` at several depths in one pass over each side (same values, same Nones)."""
    deepest = max(depths, default=0)
    bid_cum = _cumulative(bids, deepest)
    ask_cum = _cumulative(asks, deepest)
    out: list[float | None] = []
    for n in depths:
        if n <= 0:
            out.append(None)  # as imbalance(): no depth, no value
            continue
        b = bid_cum[min(n, len(bid_cum)) - 1] if bid_cum else 0.0
        a = ask_cum[min(n, len(ask_cum)) - 1] if ask_cum else 0.0
        total = b + a
        out.append((b - a) / total if total > 0 else None)
    return tuple(out)


def _cumulative(levels: Levels, n: int) -> list[float]:
    total = 0.0
    out: list[float] = []
    for _, qty in levels[:n]:
        total += qty
        out.append(total)
    return out


def cumulative_depth(levels: Levels) -> list[float]:
    """Running total of quantity from the best level outwards (for depth bars and charts)."""
    total = 0.0
    out: list[float] = []
    for _, qty in levels:
        total += qty
        out.append(total)
    return out
