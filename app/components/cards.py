"""Metric cards: best bid, best ask, mid, spread (abs, bps), imbalance; deltas vs ~1 s ago.

``card_values`` is pure (view + series in, labelled strings out) so a test can compare the
page's cards with the store's values formatted by the same helpers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from app.components.fmt import (
    fmt_bps,
    fmt_imbalance,
    fmt_price,
    fmt_signed,
)
from app.components.series import COL
from market.metrics import imbalance, top_of_book
from market.store import MarketView

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


def render_card(column: Any, card: Card) -> None:
    """One card as a bordered ``st.metric`` in ``column``."""
    column.metric(
        card.label,
        card.value,
        card.delta,
        delta_color=card.delta_color,
        help=card.help,
        border=True,
        delta_arrow=card.arrow,
    )


def render_cards(cards: list[Card]) -> None:
    for column, card in zip(st.columns(len(cards), gap="small"), cards, strict=True):
        render_card(column, card)
