"""The Overview page: every watched market across venues, one row each, from ONE snapshot.

    status bar per exchange (+ SIMULATED banner) → top gainers | top losers
    → "N markets" · Sort by → the table (``st.dataframe``: a click on a header sorts too)

The table is a plain ``st.dataframe`` with ``column_config``: the price of the last hour as a
sparkline (one point a minute: the closes of the market's one-minute trade candles, then the
last price; green when it rose, red when it fell), the 24 h range as a bar (where the last
price sits between the 24 h low, 0 %, and high, 100 %), number formats per column. Numbers
stay numbers, so a header click sorts them as numbers; prices are rounded to about five
significant digits of their own.

``overview_rows``, ``sort_rows``, ``movers``, ``movers_html`` and ``overview_frame`` are pure:
a test fills a ``MarketStore`` and compares their output with exact values. ``draw_overview``
is the fragment's body; it takes ``store.snapshot(series=False, max_trades=1)`` (no series,
one trade a market: cheap with 100 markets) and works outside a Streamlit run too
(``bench/overview_time.py`` times it). The rows and the frame of one store version and sort
are built once and shared by every tab showing them (``app.components.shared``); a timed
refresh reuses the snapshot another tab took in the last ``TICK_S``.

Unknown figures are None in the rows, NaN (or an empty sparkline) in the frame and "—" on
the page, never 0.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from app.components.fmt import DASH, esc, fmt_price, price_decimals
from app.components.shared import SharedCache, owner_token
from app.components.status import (
    REPLAY_BANNER,
    SIMULATED_BANNER,
    is_simulated,
    notice_html,
    status_html,
)
from app.components.theme import REFRESH_S
from market.events import FeedStatus
from market.metrics import spread_bps, top_of_book
from market.store import MarketStore
from market.views import MarketKey, MarketView, StoreSnapshot

log = logging.getLogger(__name__)

TICK_S = REFRESH_S / 2  # a timed refresh may show a snapshot up to this old (another tab's)
MOVERS = 5
SPARK_POINTS = 60  # the last hour, one point a minute
SIMULATED = "SIMULATED"
ROW_PX = 35  # st.dataframe's default row height
MAX_TABLE_PX = 36 * ROW_PX

# "Sort by" choices: label → (row field, descending). Unknown values always sort last.
SORTS: dict[str, tuple[str, bool]] = {
    "24h volume, largest first": ("volume", True),
    "24h change, gainers first": ("change_pct", True),
    "24h change, losers first": ("change_pct", False),
    "Spread, tightest first": ("spread_bps", False),
    "Symbol": ("symbol", False),
    "Exchange": ("exchange", False),
}
DEFAULT_SORT = "24h volume, largest first"
SORT_KEY = "overview_sort"  # the select's session-state key (a per-user choice)

PRICE_COLUMNS = ("Last", "24h high", "24h low", "Bid", "Ask")
COLUMNS = (
    "Symbol",
    "Exchange",
    "Source",
    "Last hour",
    "Last",
    "24h %",
    "24h range",
    "24h volume",
    "24h high",
    "24h low",
    "Bid",
    "Ask",
    "Spread (bps)",
    "Feed",
)


@dataclass(frozen=True, slots=True)
class OverviewRow:
    """One market as the overview shows it; None where not known (yet)."""

    exchange: str
    symbol: str
    source: str  # "SIMULATED", "live" or "replay"
    last: float | None
    change_pct: float | None  # percent: 1.5 means +1.5 %
    volume: float | None  # 24 h quote volume where the venue gives it, else base volume
    volume_is_quote: bool
    high: float | None
    low: float | None
    bid: float | None
    ask: float | None
    spread_bps: float | None
    feed: str  # the exchange's feed state, plus why this market's book is not synced
    feed_class: str  # "ok", "sim", "warn" or "bad": the colour of ``feed``
    unsynced: str = ""  # why the book is not synced while the feed is up, else ""
    spark: tuple[float, ...] = ()  # the last hour's price, one point a minute, oldest first

    @property
    def simulated(self) -> bool:
        return self.source == SIMULATED

    @property
    def range_pct(self) -> float | None:
        """Where the last price sits in the 24 h range: 0 at the low, 100 at the high."""
        last, low, high = self.last, self.low, self.high
        if last is None or low is None or high is None or high <= low:
            return None
        return min(100.0, max(0.0, (last - low) / (high - low) * 100.0))


# -- pure: rows, order, movers ----------------------------------------------------------------


def _known(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _spread_bps(bid: float | None, ask: float | None) -> float | None:
    """From a ticker's bid/ask: None when either is unknown or they are crossed."""
    if bid is None or ask is None or bid <= 0 or ask < bid:
        return None
    return spread_bps(bid, ask)


def _feed(view: MarketView | None, status: FeedStatus | None, now: float) -> tuple[str, str, str]:
    """(text, colour class, why the book is not synced or "") of the Feed column (stale as
    of ``now``).

    While the exchange itself is not up (connecting, reconnecting, blocked, stopped, stale)
    the cell says only that: its status bar above the table gives the reason, and the cell
    stays short enough to read. While it is up, a market without a synced book says why."""
    if status is None:
        return "waiting", "warn", ""
    if status.is_stale(now):
        return f"{status.state} · STALE", "bad", ""
    state = status.state
    if state not in ("live", "simulated"):
        return state, "bad" if state in ("blocked", "stopped") else "warn", ""
    if view is None:
        return f"{state} · no data yet", "warn", ""
    if not (view.synced and view.bids and view.asks):
        detail = view.detail or "waiting for the book"
        return f"{state} · unsynced: {detail}", "warn", detail
    return state, "ok" if state == "live" else "sim", ""


def price_history(view: MarketView | None, last: float | None) -> tuple[float, ...]:
    """The sparkline: the closes of the last ``SPARK_POINTS - 1`` one-minute candles, then
    the last price (the minute in progress); () when nothing is known."""
    closes = [c.close for c in view.session.candles[-(SPARK_POINTS - 1) :]] if view else []
    if last is not None:
        closes.append(last)
    return tuple(closes)


def market_row(
    key: MarketKey, view: MarketView | None, status: FeedStatus | None, now: float
) -> OverviewRow:
    """One row: 24 h figures from the venue's ticker; bid, ask and spread from the book while
    it is synced (else from the ticker); the last trade stands in for an unknown last price;
    the feed's state as of ``now``."""
    exchange, symbol = key
    ticker = view.ticker if view is not None else None
    synced = view is not None and view.synced and bool(view.bids) and bool(view.asks)
    if synced:
        assert view is not None
        tob = top_of_book(view.bids, view.asks)
        bid, ask, spread = tob.best_bid, tob.best_ask, tob.spread_bps
    else:
        bid = _known(ticker.bid) if ticker else None
        ask = _known(ticker.ask) if ticker else None
        spread = _spread_bps(bid, ask)
    last = _known(ticker.last) if ticker else None
    if last is None and view is not None and view.last_trade is not None:
        last = view.last_trade.price
    quote = _known(ticker.quote_volume) if ticker else None
    volume = quote if quote is not None else (_known(ticker.volume) if ticker else None)
    feed, feed_class, unsynced = _feed(view, status, now)
    if is_simulated(view, status):
        source = SIMULATED
    else:
        source = view.source if view is not None else status.source if status else "live"
    return OverviewRow(
        exchange=exchange,
        symbol=symbol,
        source=source,
        last=last,
        change_pct=_known(ticker.change_pct) if ticker else None,
        volume=volume,
        volume_is_quote=quote is not None,
        high=_known(ticker.high) if ticker else None,
        low=_known(ticker.low) if ticker else None,
        bid=bid,
        ask=ask,
        spread_bps=spread,
        feed=feed,
        feed_class=feed_class,
        unsynced=unsynced,
        spark=price_history(view, last),
    )


def overview_rows(
    snap: StoreSnapshot, watched: Sequence[MarketKey] | None = None
) -> list[OverviewRow]:
    """A row for every watched market (every market of the snapshot when None), in that
    order; a watched market the store has not heard of yet gets a row of "—"."""
    keys = list(snap.markets) if watched is None else list(watched)
    statuses, now = snap.statuses, snap.taken_at
    return [market_row(k, snap.markets.get(k), statuses.get(k[0]), now) for k in keys]


def sort_rows(rows: Sequence[OverviewRow], sort_by: str) -> list[OverviewRow]:
    """By the chosen field; ties by symbol then exchange; rows where it is unknown last."""
    field, descending = SORTS[sort_by]
    known = [r for r in rows if getattr(r, field) is not None]
    unknown = [r for r in rows if getattr(r, field) is None]
    known.sort(key=lambda r: (r.symbol, r.exchange))
    known.sort(key=lambda r: getattr(r, field), reverse=descending)  # stable: ties keep order
    unknown.sort(key=lambda r: (r.symbol, r.exchange))
    return known + unknown


def movers(
    rows: Sequence[OverviewRow], n: int = MOVERS
) -> tuple[list[OverviewRow], list[OverviewRow]]:
    """The ``n`` largest 24 h rises and the ``n`` largest falls (ties by symbol, exchange)."""
    up = [r for r in rows if r.change_pct is not None and r.change_pct > 0]
    down = [r for r in rows if r.change_pct is not None and r.change_pct < 0]
    up.sort(key=lambda r: (-r.change_pct, r.symbol, r.exchange))  # type: ignore[operator]
    down.sort(key=lambda r: (r.change_pct, r.symbol, r.exchange))
    return up[:n], down[:n]


# -- pure: text, HTML, frame ------------------------------------------------------------------


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


def fmt_spread(value: float | None) -> str:
    return DASH if value is None or not math.isfinite(value) else f"{value:.2f}"


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
    """ "100 markets · 1 exchange (mock)": the number of rows, in text a test can read."""
    n, k = len(rows), len(exchanges)
    simulated = sum(r.simulated for r in rows)
    sim = f' · <span class="simtag">{simulated} SIMULATED</span>' if simulated else ""
    return (
        f'<div class="ovcount" data-markets="{n}"><b>{n} market{"s" if n != 1 else ""}</b> · '
        f"{k} exchange{'s' if k != 1 else ''} ({esc(', '.join(exchanges))}){sim}</div>"
    )


def round_price(value: float) -> float:
    """About five significant digits, as the price cells of the Market page show them."""
    return round(value, price_decimals(value))


def overview_frame(rows: Sequence[OverviewRow]) -> pd.DataFrame:
    """The table's data: numbers stay numbers (a header click sorts them as numbers),
    unknown is NaN (drawn as "—"); prices rounded by ``round_price``."""

    def num(field: str, price: bool = False) -> np.ndarray:
        values = (getattr(r, field) for r in rows)
        return np.fromiter(
            (math.nan if v is None else round_price(v) if price else v for v in values),
            np.float64,
            len(rows),
        )

    data = {
        "Symbol": [r.symbol for r in rows],
        "Exchange": [r.exchange for r in rows],
        "Source": [r.source for r in rows],
        "Last hour": [[round_price(p) for p in r.spark] for r in rows],
        "Last": num("last", price=True),
        "24h %": num("change_pct"),
        "24h range": num("range_pct"),
        "24h volume": num("volume"),
        "24h high": num("high", price=True),
        "24h low": num("low", price=True),
        "Bid": num("bid", price=True),
        "Ask": num("ask", price=True),
        "Spread (bps)": num("spread_bps"),
        "Feed": [r.feed for r in rows],
    }
    return pd.DataFrame(data, columns=list(COLUMNS))


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


def _exchanges(watched: Sequence[MarketKey] | None, snap: StoreSnapshot) -> list[str]:
    if watched is None:
        return sorted({k[0] for k in snap.markets} | set(snap.statuses))
    return list(dict.fromkeys(k[0] for k in watched))


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
            _exchanges(wanted, snap),
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
    ctx = get_script_run_ctx()
    share_s = TICK_S if ctx is not None and ctx.fragment_ids_this_run else 0.0
    try:
        seconds = draw_overview(
            store, None if watched is None else watched(), paused=paused, share_s=share_s
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
