"""HistoryWriter: the real Worker against FakeBinance on loopback, history in SQLite and in a
real PostgreSQL; run, stop, run again, and the stored candles equal the candles computed here
from the trades the fake published. A database that fails mid-run costs no live data, says so,
and gets every pending row once it is back. Cycles driven by hand use an injected clock."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from market.analytics import MINUTE_MS, Candle
from market.events import FeedStatus, Trade
from market.history.db import Database
from market.history.reader import chart_candles, read_rows
from market.history.candles import join_candles
from market.history.writer import HistoryWriter
from market.settings import Settings
from market.store import MarketStore
from market.worker import Worker
from tests.conftest import wait_for
from tests.fakes.binance import FakeBinance
from tests.helpers.pg_server import PgServer
from tests.helpers.timing import FAST

BTC = "BTCUSDT"
Published = tuple[float, float, bool, int]  # price, qty, buyer-initiated, trade time (ms)


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance([BTC]) as ex:
        yield ex


def advance(ex: FakeBinance, ms: int) -> None:
    """Move the fake's event clock (its trades' times) forward."""
    with ex._lock:
        ex._event_time += ms


def publish(ex: FakeBinance, fills: list[tuple[str, str, bool]], out: list[Published]) -> None:
    """Trades ``(price, qty, buyer-initiated)``; each is recorded with the time it carried."""
    for price, qty, buy in fills:
        ex.trade(BTC, price, qty, buyer_is_maker=not buy)
        with ex._lock:
            out.append((float(price), float(qty), buy, ex._event_time))


def expected_candles(trades: list[Published]) -> list[tuple[Any, ...]]:
    """The candle rows computed independently: (open_ms, o, h, l, c, volume, notional,
    trades, buy volume, sell volume) per minute, in publication order."""
    rows: dict[int, list[Any]] = {}
    for price, qty, buy, ts in trades:
        m = ts - ts % MINUTE_MS
        r = rows.get(m)
        if r is None:
            r = rows[m] = [m, price, price, price, price, 0.0, 0.0, 0, 0.0, 0.0]
        r[2], r[3], r[4] = max(r[2], price), min(r[3], price), price
        r[5] += qty
        r[6] += price * qty
        r[7] += 1
        r[8 if buy else 9] += qty
    return [tuple(rows[m]) for m in sorted(rows)]


def stored_candles(url: str) -> list[tuple[Any, ...]]:
    db = Database(url)
    try:
        _, rows = read_rows(db, "candles", "binance", BTC, 0, 2**62)
    finally:
        db.close()
    assert {r[2] for r in rows} <= {"live"}
    return [(r[3], *r[4:9], r[9], r[10], r[11], r[12]) for r in rows]


class Session:
    """One run: a Worker on the fake and a HistoryWriter on ``url``; ``stop`` ends both."""

    def __init__(self, ex: FakeBinance, url: str, **writer: Any) -> None:
        settings = Settings(
            exchanges=("binance",),
            symbols=(BTC,),
            connection_timeout=5.0,
        ).with_urls(BINANCE_WS_URL=ex.ws_url, BINANCE_REST_URL=ex.rest_url)
        self.worker = Worker(settings, MarketStore(), timing=FAST).start()
        self.writer = HistoryWriter(
            self.worker.store, url, **{"interval": 0.05, "db_timeout": 0.3, **writer}
        ).start()
        wait_for(self.synced, what="a synced live book")

    def synced(self) -> bool:
        view = self.worker.store.snapshot(series=False).markets.get(("binance", BTC))
        return view is not None and view.synced

    def trades_seen(self) -> int:
        view = self.worker.store.snapshot(series=False).markets.get(("binance", BTC))
        return view.trades_seen if view else 0

    def stop(self) -> None:
        self.worker.stop()
        self.writer.stop()


@pytest.fixture
def sessions() -> Iterator[list[Session]]:
    started: list[Session] = []
    yield started
    for s in started:
        s.stop()


def run_twice(ex: FakeBinance, url: str, sessions: list[Session]) -> list[Published]:
    published: list[Published] = []
    first = Session(ex, url)
    sessions.append(first)
    publish(ex, [("100.25", "0.5", True), ("100.5", "0.25", False)], published)
    advance(ex, MINUTE_MS)
    publish(ex, [("101.0", "1.0", True), ("99.75", "0.125", False)], published)
    wait_for(lambda: first.trades_seen() == 4, what="4 trades in the store")
    first.stop()
    assert first.writer.status().pending_rows == 0  # the stop flushed everything
    second = Session(ex, url)
    sessions.append(second)
    # the same minute as the first run's last trades: continued, not overwritten
    publish(ex, [("102.5", "0.75", False), ("98.5", "2.0", True)], published)
    advance(ex, MINUTE_MS)
    publish(ex, [("100.0", "0.5", True)], published)
    wait_for(lambda: second.trades_seen() == 3, what="3 trades in the store")
    # the CLI line's candles: the stored ones joined to this session's
    wait_for(lambda: second.writer.stored_candles("binance", BTC, "live"), what="priors loaded")
    session = second.worker.store.snapshot().markets[("binance", BTC)].session.candles
    joined = second.writer.joined_candles("binance", BTC, "live", session)
    expected = expected_candles(published)
    assert [(c.open_ms, c.open, c.high, c.low, c.close, c.volume, c.trades) for c in joined] == [
        (r[0], r[1], r[2], r[3], r[4], r[5], r[7]) for r in expected
    ]
    second.stop()
    return published


def test_run_stop_run_again_sqlite(fake: FakeBinance, tmp_path: Path, sessions: list) -> None:
    url = f"sqlite:///{tmp_path}/market.db"
    published = run_twice(fake, url, sessions)
    assert stored_candles(url) == expected_candles(published)
    assert len(expected_candles(published)) == 3
    db = Database(url)
    statuses = db.query("SELECT state FROM statuses WHERE exchange = 'binance' ORDER BY t_ms")
    series = db.query("SELECT COUNT(*), MIN(best_bid), MIN(best_ask) FROM series")
    db.close()
    assert ("live",) in statuses
    assert series[0][0] >= 2 and series[0][1] < series[0][2]  # one row a second, bid < ask


def test_run_stop_run_again_postgresql(fake: FakeBinance, pg_url: str, sessions: list) -> None:
    published = run_twice(fake, pg_url, sessions)
    assert stored_candles(pg_url) == expected_candles(published)


def test_a_locked_sqlite_costs_no_live_data_and_catches_up(
    fake: FakeBinance, tmp_path: Path, sessions: list
) -> None:
    url = f"sqlite:///{tmp_path}/market.db"
    s = Session(fake, url, retry_initial=0.05, retry_cap=0.2)
    sessions.append(s)
    published: list[Published] = []
    publish(fake, [("100.25", "0.5", True)], published)
    wait_for(lambda: stored_candles(url), what="the first candle stored")
    blocker = sqlite3.connect(tmp_path / "market.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the database: no write succeeds
    try:
        publish(fake, [("100.5", "0.25", False), ("101.0", "1.0", True)], published)
        status = wait_for(
            lambda: (st := s.writer.status()).state == "failing" and st, what="failing"
        )
        assert "database is locked" in status.detail and "the live view goes on" in status.detail
        wait_for(lambda: s.trades_seen() == 3, what="live trades while the database fails")
        wait_for(lambda: s.writer.status().pending_rows >= 1, what="rows pending")
        assert s.writer.status().dropped_rows == 0
        fake.tick(5)
        wait_for(s.synced, what="the book still live")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    wait_for(lambda: s.writer.status().state == "ok", what="ok again")
    wait_for(lambda: s.writer.status().pending_rows == 0, what="pending rows written")
    assert stored_candles(url) == expected_candles(published)


def test_a_stopped_postgresql_costs_no_live_data_and_catches_up(
    fake: FakeBinance,
    postgres: PgServer,
    pg_url: str,
    sessions: list,
) -> None:
    s = Session(fake, pg_url, retry_initial=0.05, retry_cap=0.2)
    sessions.append(s)
    published: list[Published] = []
    publish(fake, [("100.25", "0.5", True)], published)
    wait_for(lambda: stored_candles(pg_url), what="the first candle stored")
    postgres.stop()
    try:
        publish(fake, [("100.5", "0.25", False), ("101.0", "1.0", True)], published)
        wait_for(lambda: s.writer.status().state == "failing", what="failing")
        wait_for(lambda: s.trades_seen() == 3, what="live trades while the server is down")
        wait_for(lambda: s.writer.status().pending_rows >= 1, what="rows pending")
    finally:
        postgres.start()
    wait_for(lambda: s.writer.status().pending_rows == 0, timeout=20, what="pending rows written")
    assert s.writer.status().state == "ok"
    assert stored_candles(pg_url) == expected_candles(published)


# -- one cycle at a time (no thread), an injected clock ------------------------------------------


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def book(store: MarketStore, at: float, bid: float = 100.0) -> None:
    store.update_book("binance", BTC, ((bid, 1.0),), ((bid + 1, 2.0),), 1, at)


def test_unwritable_database_buffers_bounded_and_backs_off(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    clock = Clock(1_700_000_000.0)
    store = MarketStore(clock=clock)
    writer = HistoryWriter(
        store, f"sqlite:///{tmp_path}/file/h.db", clock=clock, max_series=3, retry_initial=1.0
    )
    for i in range(5):  # five seconds of book: five series rows, the oldest two dropped
        book(store, clock.t + i)
    writer.cycle()
    status = writer.status()
    assert (status.state, status.pending_rows, status.dropped_rows) == ("failing", 3, 2)
    assert status.detail.startswith("cannot open sqlite:///")
    assert status.detail.endswith("retrying in 1 s; the live view goes on")
    clock.t += 0.5
    writer.cycle()  # backing off: not tried again yet
    assert writer.status().detail.endswith("retrying in 1 s; the live view goes on")
    clock.t += 0.5
    writer.cycle()
    assert writer.status().detail.endswith("retrying in 2 s; the live view goes on")
    assert writer.status().lag_s == 1.0


def test_series_one_row_a_second_alerts_and_status_changes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/h.db"
    clock = Clock(1_700_000_000.0)
    store = MarketStore(clock=clock, whale_notional=1000.0)
    writer = HistoryWriter(store, url, clock=clock)
    for i in range(24):  # 8 points a second for 3 s
        book(store, clock.t + i / 8, bid=100.0 + i)
    store.set_status(FeedStatus("binance", "connecting"))
    writer.cycle()
    store.set_status(FeedStatus("binance", "live", "connected"))
    store.add_trades(
        "binance", BTC, [Trade("binance", BTC, 100.0, 20.0, "sell", 1_700_000_000_500)]
    )
    writer.cycle()
    writer.cycle()  # nothing new: nothing written twice
    db = Database(url)
    series = db.query("SELECT t_ms, best_bid, best_ask, mid, spread, depth_delta FROM series")
    assert series == [
        (1_700_000_000_000, 100.0, 101.0, 100.5, 1.0, -1.0),
        (1_700_000_001_000, 108.0, 109.0, 108.5, 1.0, -1.0),
        (1_700_000_002_000, 116.0, 117.0, 116.5, 1.0, -1.0),
    ]
    assert db.query("SELECT * FROM alerts") == [
        ("binance", BTC, "live", 1_700_000_000_500, "sell", 100.0, 20.0, 2000.0)
    ]
    assert db.query("SELECT state, detail FROM statuses ORDER BY t_ms, state") == [
        ("connecting", ""),
        ("live", "connected"),
    ]
    db.close()
    assert writer.status().written_rows == 3 + 1 + 2 + 1


def test_simulated_trades_are_stored_as_simulated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/h.db"
    clock = Clock(1_700_000_000.0)
    store = MarketStore(clock=clock)
    writer = HistoryWriter(store, url, clock=clock)
    store.reset_market("binance", BTC, "simulated", "HTTP 451: simulated")
    store.add_trades("binance", BTC, [Trade("binance", BTC, 100.0, 1.0, "buy", 1_700_000_000_000)])
    writer.cycle()
    db = Database(url)
    _, rows = read_rows(db, "candles", "binance", BTC, 0, 2**62)
    assert [(r[2], r[8], r[11]) for r in rows] == [("simulated", 1.0, 1.0)]
    _, live = read_rows(db, "candles", "binance", BTC, 0, 2**62, sources=("live", "venue"))
    assert live == []  # never presented as live
    assert chart_candles(rows, prefer="live") == ([], set())
    db.close()


def test_join_candles_continues_the_minute_both_have() -> None:
    stored = [Candle(0, 1, 2, 1, 2, 1.0, 1, 2.0), Candle(60_000, 2, 3, 2, 3, 1.0, 1, 3.0)]
    session = [Candle(60_000, 4, 5, 1, 4, 2.0, 2, 8.0), Candle(120_000, 4, 4, 4, 4, 1.0, 1, 4.0)]
    assert join_candles(stored, session) == [
        stored[0],
        Candle(60_000, 2, 5, 1, 4, 3.0, 3, 11.0),
        session[1],
    ]
    assert join_candles(stored, []) == stored
    assert join_candles([], session) == session


def test_stop_flushes_from_another_thread(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/h.db"
    store = MarketStore()
    writer = HistoryWriter(store, url, interval=3600).start()  # would never cycle by itself
    store.add_trades("binance", BTC, [Trade("binance", BTC, 100.0, 1.0, "buy", 60_000)])
    stopper = threading.Thread(target=writer.stop)
    stopper.start()
    stopper.join(10)
    db = Database(url)
    assert db.query("SELECT open_ms, volume, buy_volume FROM candles") == [(60_000, 1.0, 1.0)]
    db.close()
    assert writer.status().state == "stopped"


def test_retention_sweep_drops_old_series_and_keeps_candles(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/h.db"
    day = 86_400.0
    clock = Clock(1_700_000_000.0)
    store = MarketStore(clock=clock)
    writer = HistoryWriter(store, url, clock=clock, series_days=7, candle_days=0)
    book(store, clock.t - 8 * day)  # older than 7 days: swept
    book(store, clock.t - 6 * day)
    store.add_trades("binance", BTC, [Trade("binance", BTC, 100.0, 1.0, "buy", 60_000)])
    writer.cycle()  # written, then the first sweep
    db = Database(url)
    assert db.query("SELECT t_ms FROM series") == [(int((clock.t - 6 * day) * 1000),)]
    assert db.query("SELECT open_ms FROM candles") == [(60_000,)]  # candles kept forever
    db.close()


def test_venue_candles_join_live_markets_only(tmp_path: Path) -> None:
    from market.venues.base import Kline

    clock = Clock(1_700_000_000.0)
    writer = HistoryWriter(MarketStore(clock=clock), f"sqlite:///{tmp_path}/h.db", clock=clock)
    venue = Kline(60_000, 1.0, 2.0, 0.5, 1.5, 4.0, 6.0, 3, 1.0)
    writer.add_venue_candles("binance", BTC, [venue])
    session = [Candle(120_000, 2.0, 2.0, 2.0, 2.0, 1.0, 1, 2.0)]
    assert writer.joined_candles("binance", BTC, "live", session) == [venue.candle(), *session]
    assert writer.joined_candles("binance", BTC, "simulated", session) == session
    # a venue candle of the session's own first minute overlaps its trades: not joined
    overlapping = [Candle(60_000, 2.0, 2.0, 2.0, 2.0, 1.0, 1, 2.0)]
    assert writer.joined_candles("binance", BTC, "live", overlapping) == overlapping
    writer.cycle()
    db = Database(f"sqlite:///{tmp_path}/h.db")
    assert db.query("SELECT source, open_ms, trades, buy_volume, sell_volume FROM candles") == [
        ("venue", 60_000, 3, 1.0, 3.0)
    ]
    db.close()
