"""The Feeds page: the operations view of this process's feeds, or of the whole bus.

Per exchange: state, uptime, reconnects, resyncs, messages/s, last message age; per market:
the book's age. With ``MARKET_BUS`` it shows every collector and reader on the bus (their
heartbeats), else this process's worker and its open sessions. Redrawn every 2 s by one
fragment; ``/_stcore/health`` stays the liveness probe.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from app import runtime
from app.components.status import status_html
from market.bus.feed import BusFeed
from market.bus.ops import bus_status
from market.store import MarketStore

REFRESH_S = 2.0


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _table(rows: list[dict[str, Any]], empty: str) -> None:
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
    else:
        st.caption(empty)


def local_rows(store: MarketStore, now: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(exchanges, markets) rows of this process's store, ages as of ``now``. Pure but for the
    store copy."""
    snap = store.snapshot(series=False, max_trades=0)
    feeds = [
        {
            "exchange": name,
            "state": s.state,
            "source": s.source,
            "reconnects": s.reconnects,
            "resyncs": s.resyncs,
            "msg/s": s.msg_rate,
            "last message age (s)": _r(s.last_message_age(now)),
            "detail": s.detail,
        }
        for name, s in sorted(snap.statuses.items())
    ]
    markets = [
        {
            "exchange": x,
            "symbol": sym,
            "source": v.source,
            "synced": v.synced,
            "book age (s)": None if v.updated_at is None else _r(now - v.updated_at),
            "detail": v.detail,
        }
        for (x, sym), v in sorted(snap.markets.items())
    ]
    return feeds, markets


def bus_rows(
    status: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(exchanges, markets, readers) rows of ``python -m market status``'s JSON. Pure."""
    feeds, markets = [], []
    for c in status.get("collectors", []):
        for f in c["exchanges"]:
            feeds.append(
                {
                    "collector": c["id"],
                    "alive": c["alive"],
                    "exchange": f["exchange"],
                    "state": f["state"],
                    "uptime (s)": _r(f["uptime_s"], 0),
                    "reconnects": f["reconnects"],
                    "resyncs": f["resyncs"],
                    "msg/s": f["messages_per_s"],
                    "last message age (s)": _r(f["last_message_age_s"]),
                    "detail": f["detail"],
                }
            )
        for m in c["markets"]:
            markets.append({"collector": c["id"], **m})
        for r in c["refused"]:
            markets.append({"collector": c["id"], "exchange": r["exchange"],
                            "symbol": r["symbol"], "refused: owned by": r["owner"]})  # fmt: skip
    readers = [
        {
            "reader": r["id"],
            "role": r["role"],
            "host": r["host"],
            "heartbeat age (s)": _r(r["heartbeat_age_s"]),
            "symbols": ", ".join(r["symbols"]),
            "received": r["received"],
            "garbage": r["garbage"],
            "refused (version)": r["refused_version"],
        }
        for r in status.get("readers", [])
    ]
    return feeds, markets, readers


@st.fragment(run_every=REFRESH_S)
def render_feeds() -> None:
    worker = runtime.get_worker()
    now = time.time()
    feed = worker if isinstance(worker, BusFeed) else None
    if feed is None:
        st.markdown("### Feeds · this process")
        feeds, markets = local_rows(worker.store, now)
        for status in worker.store.statuses().values():
            st.html(status_html(status, now, exchange=status.exchange))
        _table(feeds, "No feed has reported yet.")
        st.markdown("#### Markets")
        _table(markets, "No market yet.")
        demand = getattr(runtime, "get_demand", None)  # sessions, where the build has them
        if demand is not None:
            sessions = demand().sessions()
            st.markdown(f"#### Open dashboard sessions: {len(sessions)}")
            _table([{"session": k, "last seen (s)": _r(v)} for k, v in sessions.items()], "")
        return
    info = feed.reader.info()
    status = bus_status(feed.reader.url, now, info.down_after)
    st.markdown(f"### Feeds · bus `{status['bus']}` · {status['state']}")
    st.caption(
        f"This dashboard reads the bus as {info.id}: link {info.link.state} "
        f"({info.link.reconnects} reconnects), {info.received} messages, "
        f"{info.garbage} garbage skipped, {info.refused_version} refused (version), "
        f"{info.dropped} older ones dropped. {info.note}"
    )
    if status["state"] != "connected":
        st.error(f"The bus cannot be read: {status['detail']}")
    feeds, markets, readers = bus_rows(status)
    st.markdown("#### Exchanges (per collector)")
    _table(feeds, "No collector on the bus.")
    st.markdown("#### Markets (book age at the collector)")
    _table(markets, "No market published.")
    st.markdown(f"#### Readers (dashboards and watch): {len(readers)}")
    _table(readers, "No reader.")


render_feeds()
