"""Read the metric cards back from the page: they are one ``st.html`` block a row
(``app.components.cards.cards_html``), not ``st.metric`` elements."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from streamlit.testing.v1 import AppTest

CARD = re.compile(
    r'<div class="card"(?: title="(?P<help>[^"]*)")?>'
    r'<div class="clabel[^"]*">(?P<label>[^<]*)</div>'
    r'<div class="cvalue">(?P<value>[^<]*)</div>'
    r'(?:<div class="cdelta (?P<tone>up|down|off)">'
    r'(?:<span class="arrow">(?P<arrow>[▲▼])</span>)?'
    r"(?P<delta>[^<]*)</div>)?</div>"
)


@dataclass(frozen=True, slots=True)
class ShownCard:
    label: str
    value: str
    delta: str | None
    tone: str | None  # "up" (green), "down" (red), "off" (grey); None without a delta
    arrow: str | None
    help: str | None


def parse_cards(block: str) -> list[ShownCard]:
    def text(value: str | None) -> str | None:
        return None if value is None else html.unescape(value)

    return [
        ShownCard(
            html.unescape(m["label"]),
            html.unescape(m["value"]),
            text(m["delta"]),
            m["tone"],
            m["arrow"],
            text(m["help"]),
        )
        for m in CARD.finditer(block)
    ]


def cards_of(at: AppTest) -> list[ShownCard]:
    """Every card on the page, in order (the book's six, then the session's four)."""
    blocks = [h.value for h in at.html if h.value.startswith('<div class="cards ')]
    return [card for block in blocks for card in parse_cards(block)]


def card_map(at: AppTest) -> dict[str, ShownCard]:
    return {card.label: card for card in cards_of(at)}
