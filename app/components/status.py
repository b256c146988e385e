"""The status bar (always on top), the SIMULATED banner and the notices that replace numbers."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import streamlit as st

from app.components.fmt import esc, fmt_age, fmt_clock, fmt_rate
from market.events import FeedStatus
from market.views import MarketView

STATE_CLASS = {
    "live": "ok",
    "simulated": "sim",
    "connecting": "warn",
    "reconnecting": "warn",
    "blocked": "bad",
    "stopped": "off",
}


def is_simulated(view: MarketView | None, status: FeedStatus | None) -> bool:
    """Simulated data is labelled whenever either the market or its connection says so."""
    return (view is not None and view.source == "simulated") or (
        status is not None and (status.source == "simulated" or status.state == "simulated")
    )


UNREACHABLE_AFTER = 3  # failed connection attempts, with no message ever, before we say so
REASON_CHARS = 160
_RETRY_SUFFIX = re.compile(r"; reconnecting in [0-9.]+ s$")


def unreachable(
    statuses: Mapping[str, FeedStatus],
    exchanges: Sequence[str],
    after: int = UNREACHABLE_AFTER,
) -> str | None:
    """Why none of ``exchanges`` is reachable, or None while one is (or may still be).

    Unreachable means: every one of them is a live feed that has tried ``after`` times or more
    (``reconnects``) and never received a single message, and is still trying (connecting or
    reconnecting). A simulated or replayed feed, one that ever had data, one refused by the
    exchange (blocked: a different message) or one not reported yet is not "unreachable".
    The reason names each exchange with its last error, without the retry countdown.
    """
    reasons: list[str] = []
    for exchange in exchanges:
        status = statuses.get(exchange)
        if (
            status is None
            or status.source != "live"
            or status.messages > 0
            or status.state not in ("connecting", "reconnecting")
            or status.reconnects < after
        ):
            return None
        detail = _RETRY_SUFFIX.sub("", status.detail.strip()) or "no answer"
        if len(detail) > REASON_CHARS:
            detail = detail[: REASON_CHARS - 1] + "…"
        reasons.append(f"{exchange}: {detail}")
    return "; ".join(reasons) if reasons else None


def unreachable_html(reason: str, tries: int) -> str:
    """The plain notice shown above the panel when ``unreachable`` gave a reason."""
    return (
        '<div class="notice bad unreachable" data-testid="unreachable">'
        "<b>No exchange is reachable from this machine.</b> "
        f"After {tries} tries not one message arrived ({esc(reason)}). "
        "Live retries go on in the background: the page shows live data as soon as an "
        "exchange answers. Meanwhile you can watch the SIMULATED feed (generated locally, "
        "not a real market).</div>"
    )


def source_label(view: MarketView | None, status: FeedStatus | None) -> str:
    """What the numbers on screen are, when they are not live: "SIMULATED", "REPLAY" or ""."""
    if is_simulated(view, status):
        return "SIMULATED"
    if (view is not None and view.source == "replay") or (
        status is not None and status.source == "replay"
    ):
        return "REPLAY"
    return ""


def status_html(
    status: FeedStatus | None,
    now: float,
    *,
    paused_at: float | None = None,
    exchange: str | None = None,
) -> str:
    """One dense line: state, msgs/s, age of the last message (red when stale), counters,
    detail, next retry; ages as of ``now`` (the snapshot's time). ``paused_at`` adds a PAUSED
    chip with the frozen time (UTC); ``exchange`` names the feed that has not reported yet
    (where several are shown)."""
    pause = (
        f'<span class="chip paused">PAUSED · display frozen at {fmt_clock(paused_at)} UTC</span>'
        if paused_at is not None
        else ""
    )
    if status is None:
        name = f'<span class="chip">{esc(exchange)}</span>' if exchange else ""
        return (
            f'<div class="statusbar warn" data-state="none">{pause}'
            f'<span class="chip state warn">waiting</span>{name}'
            '<span class="detail">waiting for the feed to report its status…</span></div>'
        )
    stale = status.is_stale(now)
    cls = "stale" if stale else STATE_CLASS.get(status.state, "warn")
    last_age, retry_in = status.last_message_age(now), status.next_retry_in(now)
    age = fmt_age(last_age)
    if last_age is None:
        age_chip = '<span class="chip">no message yet</span>'
    elif stale:
        age_chip = (
            f'<span class="chip stale" title="silent for more than {status.stale_after_s:.0f} s">'
            f"STALE · last msg {age} ago</span>"
        )
    else:
        age_chip = f'<span class="chip">last msg <b>{age}</b> ago</span>'
    retry = (
        f'<span class="chip warn">next retry in <b>{fmt_age(retry_in)}</b></span>'
        if retry_in is not None
        else ""
    )
    bad = "bad" if status.bad_messages else ""
    return (
        f'<div class="statusbar {cls}" data-state="{esc(status.state)}" data-stale="{int(stale)}">'
        f"{pause}"
        f'<span class="chip state {"bad" if stale else STATE_CLASS.get(status.state, "warn")}">'
        f"● {esc(status.state.upper())}</span>"
        f'<span class="chip">{esc(status.exchange)}</span>'
        f'<span class="chip"><b>{fmt_rate(status.msg_rate)}</b> msg/s</span>'
        f"{age_chip}"
        f'<span class="chip">reconnects <b>{status.reconnects}</b></span>'
        f'<span class="chip">resyncs <b>{status.resyncs}</b></span>'
        f'<span class="chip {bad}">bad frames <b>{status.bad_messages}</b></span>'
        f"{retry}"
        f'<span class="detail">{esc(status.detail)}</span>'
        "</div>"
    )


REPLAY_BANNER = (
    '<div class="simbanner" data-testid="replay-banner">'
    "⏵ REPLAY — a recording played back (MARKET_EXCHANGE=replay), not the live market.</div>"
)
SIMULATED_BANNER = (
    '<div class="simbanner" data-testid="simulated-banner">'
    "⚠ SIMULATED DATA — generated locally by the simulated feed, not a real market. "
    "Do not trade on these numbers.</div>"
)


def notice_html(text: str, kind: str = "warn") -> str:
    """A box that stands in for numbers we must not show (unsynced book, no data yet)."""
    return f'<div class="notice {esc(kind)}">{esc(text)}</div>'


def render_status(
    status: FeedStatus | None, now: float, simulated: bool | str, paused_at: float | None
) -> None:
    st.html(status_html(status, now, paused_at=paused_at))
    if simulated == "REPLAY":
        st.html(REPLAY_BANNER)
    elif simulated:
        st.html(SIMULATED_BANNER)
