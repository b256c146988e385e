"""Whale alerts: the panel (every market's, newest first, from the store so it survives a page
reload), a toast per new alert (once per browser session), and the thresholds' text form.

``alerts_html``, ``unseen``, ``toast_text``, ``parse_notional`` and ``fmt_threshold`` are
pure. ``toast_new_alerts`` keeps, in this browser session's state, only which of the store's
alerts it has already shown (their keys), never the alerts themselves.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import streamlit as st

from app.components.fmt import (
    esc,
    fmt_clock,
    fmt_notional,
    fmt_price,
    fmt_qty,
    price_decimals,
)
from market.analytics import WhaleAlert
from market.views import MarketKey, StoreSnapshot

ALERT_ROWS = 20
MAX_TOASTS = 3  # per run; more new alerts at once get one summary toast
SEEN_KEY = "alerts_seen"  # session state: keys of the alerts this session has toasted (or
# found there on its first run: history is shown in the panel, not toasted)
TOAST_ICON = ":material/notifications_active:"

AlertKey = tuple[int, str, str, str, float, float]
_SUFFIXES = {"k": 1e3, "m": 1e6, "b": 1e9}


def alert_key(alert: WhaleAlert) -> AlertKey:
    return (alert.ts_ms, alert.exchange, alert.symbol, alert.side, alert.price, alert.qty)


def simulated_markets(snap: StoreSnapshot) -> set[MarketKey]:
    """The markets whose data is simulated (by the market's source or its feed's status)."""
    out = {k for k, v in snap.markets.items() if v.source == "simulated"}
    for name, status in snap.statuses.items():
        if status.source == "simulated" or status.state == "simulated":
            out |= {k for k in snap.markets if k[0] == name}
    return out


def fmt_threshold(value: float) -> str:
    """A threshold as the inputs show it: ``100,000`` · ``2,500.5`` · ``0``."""
    return f"{value:,.0f}" if value == int(value) else f"{value:,.8f}".rstrip("0").rstrip(".")


def parse_notional(text: str) -> float:
    """A threshold typed by a user, in quote units: ``250000``, ``250,000``, ``250k``,
    ``1.5M``, ``1e6``; 0 turns alerts off. Raises ``ValueError`` naming the problem."""
    raw = text.strip().replace(",", "").replace("_", "").replace(" ", "")
    if not raw:
        raise ValueError("enter a notional in quote units, e.g. 250k (0 turns alerts off)")
    scale = 1.0
    if raw[-1].lower() in _SUFFIXES:
        scale = _SUFFIXES[raw[-1].lower()]
        raw = raw[:-1]
    try:
        value = float(raw) * scale
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a number (e.g. 250000, 250k, 1.5M)") from None
    if not math.isfinite(value):
        raise ValueError(f"{text.strip()!r} is not a finite number")
    if value < 0:
        raise ValueError(f"{text.strip()!r} is negative: a threshold is >= 0 (0 turns alerts off)")
    return value


def unseen(alerts: Sequence[WhaleAlert], seen: Collection[AlertKey]) -> list[WhaleAlert]:
    """The alerts (oldest first, as the store keeps them) whose key is not in ``seen``."""
    return [a for a in alerts if alert_key(a) not in seen]


def toast_text(alert: WhaleAlert, simulated: bool) -> str:
    decimals = price_decimals(alert.price)
    sim = " · SIMULATED" if simulated else ""
    return (
        f"Whale {alert.side} · {alert.symbol} on {alert.exchange}{sim}: "
        f"{fmt_qty(alert.qty)} @ {fmt_price(alert.price, decimals)} = "
        f"{fmt_notional(alert.notional)}"
    )


def alerts_html(
    alerts: Sequence[WhaleAlert],
    *,
    simulated: Collection[MarketKey],
    symbol: str,
    threshold: float,
    rows: int = ALERT_ROWS,
) -> str:
    """The last ``rows`` alerts of every market, newest first; ``alerts`` oldest first."""
    shown = list(alerts[-rows:])[::-1]
    body = []
    for a in shown:
        sim = ' <span class="simtag">SIM</span>' if (a.exchange, a.symbol) in simulated else ""
        body.append(
            f'<tr class="{esc(a.side)}"><td class="tm">{fmt_clock(a.ts_ms / 1000.0)}</td>'
            f'<td class="mk">{esc(a.symbol)} <span class="ex">{esc(a.exchange)}</span>{sim}</td>'
            f'<td class="sd">{esc(a.side)}</td>'
            f'<td class="px">{fmt_price(a.price, price_decimals(a.price))}</td>'
            f'<td>{fmt_qty(a.qty)}</td><td class="val">{fmt_notional(a.notional)}</td></tr>'
        )
    if threshold > 0:
        rule = f"{esc(symbol)} ≥ {fmt_notional(threshold)}"
    else:
        rule = f"{esc(symbol)}: alerts off"
    if not body:
        wait = "no whale trade yet" if threshold > 0 else f"alerts are off for {esc(symbol)}"
        body.append(f'<tr><td colspan="6" class="empty">{wait}</td></tr>')
    any_sim = any((a.exchange, a.symbol) in simulated for a in shown)
    sim_head = ' <span class="simtag">SIMULATED</span>' if any_sim else ""
    return (
        '<div class="alerts">'
        f'<div class="panelhead">WHALE ALERTS · every market · newest first · {rule}{sim_head}'
        "</div>"
        '<table class="alerts"><thead><tr><th class="tm">Time</th><th class="mk">Market</th>'
        '<th class="sd">Side</th><th class="px">Price</th><th>Size</th><th class="val">Value'
        f"</th></tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def toast_new_alerts(alerts: Sequence[WhaleAlert], simulated: Collection[MarketKey]) -> int:
    """Toast the alerts this browser session has not seen (at most ``MAX_TOASTS``, then one
    summary); on the session's first run only remember them. Returns how many were new."""
    state = st.session_state
    keys = [alert_key(a) for a in alerts]
    seen: set[AlertKey] | None = state.get(SEEN_KEY)
    if seen is None:
        state[SEEN_KEY] = set(keys)
        return 0
    new = unseen(alerts, seen)
    for alert in new[-MAX_TOASTS:]:
        st.toast(toast_text(alert, (alert.exchange, alert.symbol) in simulated), icon=TOAST_ICON)
    if len(new) > MAX_TOASTS:
        st.toast(
            f"and {len(new) - MAX_TOASTS} more whale trades: see the alerts panel",
            icon=TOAST_ICON,
        )
    state[SEEN_KEY] = set(keys)  # the store keeps ≤ 200: so does this set
    return len(new)
