"""The Overview page: every watched market across venues, one row each, from ONE snapshot.

    status bar per exchange (+ SIMULATED banner) → top gainers | top losers
    → "N markets" · Sort by → the table (``st.dataframe``: a click on a header sorts too)

The rows, their order, the movers and the table's frame come from
``app.components.overview_data`` (pure); this module draws them. The table is a plain
``st.dataframe`` with ``column_config``: the price of the last hour as a sparkline (green
when it rose, red when it fell), the 24 h range as a bar, number formats per column. Numbers
stay numbers, so a header click sorts them as numbers.

``movers_html``, ``unsynced_html`` and ``count_html`` are pure. ``draw_overview`` is the
fragment's body; it takes ``store.snapshot(series=False, max_trades=1)`` (no series, one
trade a market: cheap with 100 markets) and works outside a Streamlit run too
(``bench/overview_time.py`` times it). The rows and the frame of one store version and sort
are built once and shared by every tab showing them (``app.components.shared``); a timed
refresh reuses the snapshot another tab took in the last ``TICK_S``.

Unknown figures are "—" on the page, never 0.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import streamlit as st

from app.components.fmt import DASH, esc, fmt_price, price_decimals
from app.components.overview_data import (
    DEFAULT_SORT,
    MOVERS,
    SIMULATED,
    SORTS,
    OverviewRow,
    movers,
    overview_frame,
    overview_rows,
    sort_rows,
    watched_exchanges,
)
from app.components.shared import SharedCache, owner_token, reuse_s
from app.components.status import REPLAY_BANNER, SIMULATED_BANNER, notice_html, status_html
from app.components.theme import REFRESH_S
from market.store import MarketStore
from market.views import MarketKey, StoreSnapshot

log = logging.getLogger(__name__)

ROW_PX = 35  # st.dataframe's default row height
MAX_TABLE_PX = 36 * ROW_PX
SORT_KEY = "overview_sort"  # the select's session-state key (a per-user choice)


# -- pure: text, HTML -------------------------------------------------------------------------


def fmt_change(value: float | None) -> str:
    """``1.5`` → ``"+1.50 %"``; unknown → ``"—"``."""
    if value is None or not math.isfinite(value):
        return DASH
    return f"{value:+.2f} %"


def fmt_px(value: float | None) -> str:
    """A price with the decimals its own magnitude wants (about 5 significant digits)."""
    if value is None or not math.isfinite(value):
        return DASH
    return fmt_price(value, price_decimals(value))


def movers_html(gainers: Sequence[OverviewRow], losers: Sequence[OverviewRow]) -> str:
    """Two small tables side by side: top gainers (green) and top losers (red)."""

    def panel(title: str, rows: Sequence[OverviewRow], cls: str, empty: str) -> str:
        sim = f' <span class="simtag">{SIMULATED}</span>' if any(r.simulated for r in rows) else ""
        body = "".join(
            f'<tr class="{cls}"><td class="sym">{esc(r.symbol)}'
            f' <span class="ex">{esc(r.exchange)}</span>'
            f"{' <span class=simtag>SIM</span>' if r.simulated else ''}</td>"
            f'<td class="px">{fmt_px(r.last)}</td><td class="chg">{fmt_change(r.change_pct)}</td>'
            "</tr>"
            for r in rows
        )
        if not body:
            body = f'<tr><td colspan="3" class="empty">{esc(empty)}</td></tr>'
        return (
            f'<div class="moverbox {cls}"><div class="panelhead">{title}{sim}</div>'
            f'<table class="movers">{body}</table></div>'
        )

    return (
        '<div class="movers">'
        f"{panel(f'TOP GAINERS · 24 h · {MOVERS}', gainers, 'up', 'no market is up (yet)')}"
        f"{panel(f'TOP LOSERS · 24 h · {MOVERS}', losers, 'down', 'no market is down (yet)')}"
        "</div>"
    )


def unsynced_html(rows: Sequence[OverviewRow], limit: int = 8) -> str:
    """The full reasons the Feed column may cut short: markets whose book is not synced
    while their feed is up (the first ``limit``); "" when there are none."""
    waiting = [r for r in rows if r.unsynced]
    if not waiting:
        return ""
    listed = "; ".join(
        f"{esc(r.symbol)} · {esc(r.exchange)}: {esc(r.unsynced)}" for r in waiting[:limit]
    )
    more = f"; and {len(waiting) - limit} more" if len(waiting) > limit else ""
    return (
        f'<div class="notice unsynced" data-markets="{len(waiting)}">'
        f"Order book not synced ({len(waiting)}): {listed}{more}. Their bid, ask and spread "
        "come from the venue's 24 h ticker where it gives them.</div>"
    )


def count_html(rows: Sequence[OverviewRow], exchanges: Sequence[str]) -> str:
    """ "100 markets · 2 exchanges (a, b)": the number of rows, in text a test can read."""
    n, k = len(rows), len(exchanges)
    simulated = sum(r.simulated for r in rows)
    sim = f' · <span class="simtag">{simulated} SIMULATED</span>' if simulated else ""
    return (
        f'<div class="ovcount" data-markets="{n}"><b>{n} market{"s" if n != 1 else ""}</b> · '
        f"{k} exchange{'s' if k != 1 else ''} ({esc(', '.join(exchanges))}){sim}</div>"
    )


# prices as rounded (``round_price``): "%g" (sprintf-js) prints the number as JavaScript
# does, its shortest form. The default cuts at 4 decimals (a 0.000012 coin shows as 0.00001);
# "plain" prints 20 digits of binary noise (490.67999999999995).
PRICE = "%g"
COLUMN_CONFIG = {
    "Symbol": st.column_config.TextColumn("Symbol", width=92),
    "Exchange": st.column_config.TextColumn("Exchange", width=72),
    "Source": st.column_config.TextColumn(
        "Source", width=84, help="SIMULATED: generated locally, not a real market"
    ),
    "Last hour": st.column_config.LineChartColumn(
        "Last hour",
        width=80,
        color="auto",
        help="the price over the last hour, one point a minute (closes of the one-minute "
        "trade candles, then the last price); green when it rose, red when it fell",
    ),
    "Last": st.column_config.NumberColumn("Last", format=PRICE, help="last trade price"),
    "24h %": st.column_config.NumberColumn(
        "24h %", format="%+.2f %%", width=68, help="change over 24 h, in percent"
    ),
    "24h range": st.column_config.ProgressColumn(
        "24h range",
        width=76,
        format="%.0f %%",
        min_value=0.0,
        max_value=100.0,
        help="where the last price sits between the 24 h low (0 %) and high (100 %)",
    ),
    "24h volume": st.column_config.NumberColumn(
        "24h volume",
        format="compact",
        width=78,
        help="traded over 24 h, in the quote currency (base units where the venue gives "
        "only those)",
    ),
    "24h high": st.column_config.NumberColumn("24h high", format=PRICE),
    "24h low": st.column_config.NumberColumn("24h low", format=PRICE),
    "Bid": st.column_config.NumberColumn(
        "Bid", format=PRICE, help="best bid: the book while synced"
    ),
    "Ask": st.column_config.NumberColumn(
        "Ask", format=PRICE, help="best ask: the book while synced"
    ),
    "Spread (bps)": st.column_config.NumberColumn(
        "Spread bps",
        format="%.2f",
        width=74,
        help="(ask - bid) / mid in basis points (1 bp = 0.01 %)",
    ),
    "Feed": st.column_config.TextColumn(
        "Feed", width=84, help="the exchange's feed state; why a book is not synced"
    ),
}


# -- the fragment -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Table:
    """What every tab showing one store version, watch list and sort draws alike."""

    snap: StoreSnapshot
    exchanges: list[str]
    rows: list[OverviewRow]
    shown: list[OverviewRow]  # sorted
    frame: pd.DataFrame  # never mutated: shared by every tab
    movers: str
    unsynced: str


_SNAPSHOTS: SharedCache[StoreSnapshot] = SharedCache(entries=8)
_TABLES: SharedCache[Table] = SharedCache(entries=16)


def overview_snapshot(store: MarketStore, share_s: float = 0.0) -> StoreSnapshot:
    """The overview's snapshot: with ``share_s`` > 0, the one any tab took in the current
    ``share_s`` slot of the clock; else a fresh one."""
    if share_s <= 0:
        return store.snapshot(series=False, max_trades=1)
    slot = math.floor(time.monotonic() / share_s)
    return _SNAPSHOTS.get(
        (owner_token(store), slot), lambda: store.snapshot(series=False, max_trades=1)
    )


def overview_table(
    store: MarketStore, snap: StoreSnapshot, watched: Sequence[MarketKey] | None, sort_by: str
) -> Table:
    """The rows, order and frame of this snapshot, built once per store version, watch
    list and sort, whichever tab asks first."""
    wanted = None if watched is None else tuple(watched)

    def build() -> Table:
        rows = overview_rows(snap, wanted)
        shown = sort_rows(rows, sort_by)
        return Table(
            snap,
            watched_exchanges(wanted, snap),
            rows,
            shown,
            overview_frame(shown),
            movers_html(*movers(rows)),
            unsynced_html(shown),
        )

    return _TABLES.get((owner_token(store), snap.version, wanted, sort_by), build)


def draw_overview(
    store: MarketStore,
    watched: Sequence[MarketKey] | None,
    *,
    paused: bool = False,
    share_s: float = 0.0,
) -> float:
    """Draw the whole overview from one snapshot; returns the seconds it took. ``share_s``:
    how old a snapshot another tab took may be to be reused (0: a fresh one)."""
    started = time.perf_counter()
    snap = overview_snapshot(store, share_s)
    if st.session_state.get(SORT_KEY) not in SORTS:
        st.session_state[SORT_KEY] = DEFAULT_SORT
    table = overview_table(store, snap, watched, str(st.session_state[SORT_KEY]))
    exchanges, rows = table.exchanges, table.rows
    paused_at = snap.taken_at if paused else None
    st.html(
        '<div class="statusbars">'
        + "".join(
            status_html(snap.statuses.get(e), snap.taken_at, paused_at=paused_at, exchange=e)
            for e in exchanges
        )
        + "</div>"
    )
    if any(r.simulated for r in rows):
        st.html(SIMULATED_BANNER)
    if any(r.source == "replay" for r in rows):
        st.html(REPLAY_BANNER)
    if not rows:
        st.html(notice_html("No market is watched: choose exchanges and symbols.", "info"))
        return time.perf_counter() - started

    st.html(table.movers)
    # the select on the left: the table's own toolbar appears above its top right on hover
    left, right = st.columns([0.3, 0.7], vertical_alignment="bottom")
    with left:
        st.selectbox("Sort by", tuple(SORTS), key=SORT_KEY)
    with right:
        st.html(count_html(rows, exchanges))
    st.dataframe(
        table.frame,
        hide_index=True,
        height=min(MAX_TABLE_PX, ROW_PX * (len(rows) + 1) + 3),
        column_config=COLUMN_CONFIG,
        placeholder=DASH,
        key="overview_table",
    )
    if table.unsynced:
        st.html(table.unsynced)
    return time.perf_counter() - started


def overview_panel(
    store: MarketStore,
    watched: Callable[[], Sequence[MarketKey]] | None = None,
    paused: bool = False,
) -> None:
    """The fragment's body: never lets an exception box reach the page. ``watched`` is
    called on every run, so a feed changed by another viewer shows at the next refresh."""
    try:
        seconds = draw_overview(
            store, None if watched is None else watched(), paused=paused, share_s=reuse_s()
        )
    except Exception as exc:  # a display bug must not take the page down; it is logged
        log.exception("drawing the overview failed")
        st.html(notice_html(f"display error (logged): {type(exc).__name__}: {exc}", "bad"))
        return
    mode = "paused" if paused else f"refresh every {REFRESH_S:g} s"
    st.html(f'<div class="footer">render {seconds * 1000:.1f} ms · {esc(mode)}</div>')


def run_overview(
    store: MarketStore, watched: Callable[[], Sequence[MarketKey]] | None, paused: bool
) -> None:
    """Run ``overview_panel`` as the page's one fragment; paused, it does not re-run."""
    st.fragment(overview_panel, run_every=None if paused else REFRESH_S)(store, watched, paused)
