"""The JSON lines ``watch`` prints: one object per exchange and symbol (the public schema of
DESIGN.md, ``market_line``), a snapshot's lines in order (``snapshot_lines``), and the loop that
prints them every interval until the time is up (``print_until``), for a worker and a bus alike.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

import orjson

from market.analytics import depth_delta
from market.events import FeedStatus
from market.history.writer import HistoryWriter
from market.metrics import imbalance, top_of_book
from market.views import MarketView, StoreSnapshot

CANDLES_SHOWN = 5  # the last five one-minute candles
ALERTS_SHOWN = 20


def _num(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def market_line(
    view: MarketView,
    status: FeedStatus | None,
    depth: int,
    now: float,
    history: HistoryWriter | None = None,
) -> dict[str, Any]:
    """One JSON-ready line for one market (the public schema of DESIGN.md); with ``history``,
    the candles include the stored ones and ``history`` says how the writer is doing."""
    bids, asks = (view.bids, view.asks) if view.synced else ((), ())
    tob = top_of_book(bids, asks)
    last = view.last_trade
    session, ticker = view.session, view.ticker
    age = status.last_message_age(now) if status else None  # as of this line's time
    return {
        "t": round(now, 3),
        "exchange": view.exchange,
        "symbol": view.symbol,
        "source": view.source,
        "status": {
            "state": status.state if status else "connecting",
            "detail": (status.detail if status else "")
            + ("" if view.synced else f" [{view.symbol}: {view.detail}]"),
            "reconnects": status.reconnects if status else 0,
            "resyncs": status.resyncs if status else 0,
            "messages": status.messages if status else 0,
            "bad_messages": status.bad_messages if status else 0,
            "last_message_age_s": None if age is None else _num(round(age, 3)),
            "msg_rate": status.msg_rate if status else 0.0,
        },
        "best_bid": tob.best_bid,
        "best_ask": tob.best_ask,
        "mid": tob.mid,
        "spread": tob.spread,
        "imbalance": imbalance(bids, asks),
        "bids": [[p, q] for p, q in bids[:depth]],
        "asks": [[p, q] for p, q in asks[:depth]],
        "trades": view.trades_seen,
        "last_trade": None
        if last is None
        else {"price": last.price, "qty": last.qty, "side": last.side, "ts": last.ts_ms},
        # analytics over the session (the trades seen since the feed started)
        "vwap": session.vwap,
        "cvd": session.cvd,
        "depth_delta": depth_delta(bids, asks) if view.synced else None,
        "volatility_spread": session.volatility_spread,
        "candles": [c.as_list() for c in _candles(view, history)[-CANDLES_SHOWN:]],
        "alerts": [
            {"ts": a.ts_ms, "side": a.side, "price": a.price, "qty": a.qty, "notional": a.notional}
            for a in session.alerts[-ALERTS_SHOWN:]
        ],
        "ticker": None
        if ticker is None
        else {
            "last": ticker.last,
            "change_pct": ticker.change_pct,
            "volume": ticker.volume,
            "quote_volume": ticker.quote_volume,
            "high": ticker.high,
            "low": ticker.low,
        },
    }


def _candles(view: MarketView, history: HistoryWriter | None) -> Sequence[Any]:
    session = view.session.candles
    if history is None:
        return session
    return history.joined_candles(view.exchange, view.symbol, view.source, session)


def snapshot_lines(
    snap: StoreSnapshot,
    exchanges: str | Sequence[str],
    symbols: Sequence[str],
    depth: int,
    history: HistoryWriter | None = None,
) -> list[bytes]:
    """One line per exchange and symbol watched, in that order."""
    lines = []
    for exchange in (exchanges,) if isinstance(exchanges, str) else exchanges:
        status = snap.statuses.get(exchange)
        for symbol in symbols:
            view = snap.markets.get((exchange, symbol))
            if view is None:
                continue
            line = market_line(view, status, depth, snap.taken_at, history)
            lines.append(orjson.dumps(line))
    return lines


def write_lines(out: BinaryIO, lines: Sequence[bytes]) -> None:
    """Write ``lines`` to ``out``, one a line, and flush: a reader sees each set at once."""
    for line in lines:
        out.write(line + b"\n")
    out.flush()


def print_until(
    deadline: float,
    interval: float,
    wait: Callable[[float], bool],
    emit: Callable[[], None],
    tick: Callable[[], None] | None = None,
) -> None:
    """``emit()`` (then ``tick()``) every ``interval`` seconds until ``deadline`` (monotonic) or
    until ``wait(seconds)`` says to stop, and ``emit()`` once more: the feed as it ends. Ctrl-C
    ends it quietly, and so does a reader that goes away (e.g. ``… | head -n 2``)."""
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or wait(min(interval, remaining)):
                break
            if deadline - time.monotonic() <= 0:
                break
            emit()
            if tick is not None:
                tick()
        emit()
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # stop without a traceback; the interpreter's final flush must not fail too
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
