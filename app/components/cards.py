"""Metric cards: best bid, best ask, mid, spread (abs, bps), imbalance; deltas vs ~1 s ago.

``card_values`` is pure (view + series in, labelled strings out) so a test can compare the
page's cards with the store's values formatted by the same helpers. ``cards_html`` draws a row
of cards as ONE block of HTML (what ``st.metric`` showed: the label small and muted, the value
large, the delta green or red with its arrow, the help on hover): one element a run instead of
a column and a metric per card, and the same string for every tab that shows the same tick.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.components.fmt import (
    esc,
    fmt_bps,
    fmt_imbalance,
    fmt_price,
    fmt_signed,
)
from app.components.series import COL
from market.metrics import imbalance, top_of_book
from market.views import MarketView

DELTA_LOOKBACK_S = 1.0


@dataclass(frozen=True, slots=True)
class Card:
    label: str
    value: str
    delta: str | None
    delta_color: str = "normal"  # "normal" | "inverse" | "off"
    help: str | None = None
    arrow: str = "auto"  # "auto" | "up" | "down" | "off": "off" for a delta that is a note


def reference_row(series: np.ndarray, lookback: float = DELTA_LOOKBACK_S) -> np.ndarray | None:
    """The last series row at least ``lookback`` seconds older than the newest one."""
    if len(series) < 2:
        return None
    t = series[:, COL["t"]]
    i = int(np.searchsorted(t, t[-1] - lookback, side="right")) - 1
    return series[i] if i >= 0 else None


def card_values(view: MarketView, series: np.ndarray, depth: int, decimals: int) -> list[Card]:
    """The six cards of a synced book; deltas vs the series ~1 s before its newest point."""
    tob = top_of_book(view.bids, view.asks)
    imb = imbalance(view.bids, view.asks, depth)
    ref = reference_row(series)

    def delta(now: float | None, column: str, places: int, suffix: str = "") -> str | None:
        if ref is None or now is None:
            return None
        return fmt_signed(now - float(ref[COL[column]]), places, suffix)

    return [
        Card(
            "Best bid", fmt_price(tob.best_bid, decimals), delta(tob.best_bid, "best_bid", decimals)
        ),
        Card(
            "Best ask", fmt_price(tob.best_ask, decimals), delta(tob.best_ask, "best_ask", decimals)
        ),
        Card("Mid", fmt_price(tob.mid, decimals), delta(tob.mid, "mid", decimals + 1)),
        Card(
            "Spread",
            fmt_price(tob.spread, decimals),
            delta(tob.spread, "spread", decimals),
            "inverse",
            "best ask - best bid, in the quote currency",
        ),
        Card(
            "Spread (bps)",
            fmt_bps(tob.spread_bps),
            delta(tob.spread_bps, "spread_bps", 2, " bps"),
            "inverse",
            "the spread relative to the mid, in basis points (1 bp = 0.01 %)",
        ),
        Card(
            f"Imbalance (top {depth})",
            fmt_imbalance(imb),
            delta(imb, f"imbalance_{depth}", 3),
            "normal",
            "(bid volume - ask volume) / (bid volume + ask volume) over the best "
            f"{depth} levels a side: +1 only bids, -1 only asks",
        ),
    ]


def delta_tone(card: Card) -> tuple[str, str]:
    """The delta's colour class (``up`` green, ``down`` red, ``off`` grey) and its arrow, as
    ``st.metric`` chose them: ``"0"`` and ``delta_color="off"`` are grey; ``"inverse"`` swaps
    the colours (a wider spread is bad news); the arrow follows the sign unless it is off."""
    delta = card.delta or ""
    falling = delta.startswith("-")
    if card.arrow == "off" or delta == "0":
        arrow = ""
    elif card.arrow in ("up", "down"):
        arrow = "▲" if card.arrow == "up" else "▼"
    else:
        arrow = "▼" if falling else "▲"
    if card.delta_color == "off" or delta == "0":
        return "off", arrow
    good = not falling if card.delta_color == "normal" else falling
    return ("up" if good else "down"), arrow


def card_html(card: Card) -> str:
    title = f' title="{esc(card.help)}"' if card.help else ""
    hint = " hint" if card.help else ""
    delta = ""
    if card.delta is not None:
        tone, arrow = delta_tone(card)
        mark = f'<span class="arrow">{arrow}</span>' if arrow else ""
        delta = f'<div class="cdelta {tone}">{mark}{esc(card.delta)}</div>'
    return (
        f'<div class="card"{title}><div class="clabel{hint}">{esc(card.label)}</div>'
        f'<div class="cvalue">{esc(card.value)}</div>{delta}</div>'
    )


def cards_html(cards: list[Card], kind: str = "book") -> str:
    """A row of cards as one HTML block; ``kind`` names the row (``book``, ``session``)."""
    body = "".join(card_html(card) for card in cards)
    return f'<div class="cards {esc(kind)}" data-testid="cards-{esc(kind)}">{body}</div>'
