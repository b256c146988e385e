"""The Market page's history: pure helpers with exact values, and the page through AppTest
(the simulated feed, MARKET_DB in a temp dir holding candles stored by an earlier run)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.components.history_view import history_candles, range_ms, series_rows, status_html
from app.runtime import stop_workers
from market.analytics import MINUTE_MS, Candle
from market.history.db import UPSERT_CANDLE, Database
from market.history.writer import WriterStatus
from tests.helpers.figures import decode

ROOT = Path(__file__).resolve().parent.parent
MAIN = str(ROOT / "app" / "main.py")


def test_range_ms() -> None:
    now = 1_700_000_000_000
    assert range_ms("Live window", now) is None
    assert range_ms("1 h", now) == (now - 3_600_000, now + 1)
    assert range_ms("7 d", now) == (now - 7 * 86_400_000, now + 1)
    assert range_ms("Dates", now, (date(2024, 5, 1), date(2024, 5, 2))) == (
        1_714_521_600_000,
        1_714_694_400_000,
    )


def test_history_candles_join_the_live_tail() -> None:
    stored = [Candle(0, 1, 1, 1, 1, 1.0, 1), Candle(60_000, 2, 2, 2, 2, 1.0, 1)]
    tail = [Candle(60_000, 2, 3, 2, 3, 2.0, 2), Candle(120_000, 3, 3, 3, 3, 1.0, 1)]
    assert history_candles(stored, tail, 10**12) == [stored[0], *tail]
    assert history_candles(stored, tail, 120_000) == [stored[0], tail[0]]
    assert history_candles(stored, [], 10**12) == stored


def test_series_rows_are_store_rows() -> None:
    row = ("binance", "BTCUSDT", "live", 1_500, 100.0, 101.0, 100.5, 1.0, 0.1, 0.2, 0.3, 0.4,
           None, -2.0)  # fmt: skip
    (out,) = series_rows([row])
    assert out[:5] == (1.5, 100.0, 101.0, 100.5, 1.0)
    assert out[5] == pytest.approx(1.0 / 100.5 * 10_000)
    assert out[6:10] == (0.1, 0.2, 0.3, 0.4) and math.isnan(out[10])
    assert out[11] == -2.0 and math.isnan(out[12])


def test_status_html() -> None:
    ok = WriterStatus("ok", "writing to sqlite:///data/market.db", "x", 0, 0, 10, 0.0)
    assert "history: writing to sqlite:///data/market.db</div>" in status_html(ok)
    failing = WriterStatus("failing", "database is locked — retrying in 2 s", "x", 12, 3, 0, 4.0,
                           ("binance BTCUSDT backfill failed: HTTP 451",))  # fmt: skip
    html = status_html(failing)
    assert 'class="history-status bad"' in html
    assert (
        "history failing: database is locked — retrying in 2 s · 12 rows pending · 3 dropped"
        " · binance BTCUSDT backfill failed: HTTP 451" in html
    )
    assert "history off (MARKET_DB=none)" in status_html(None)


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[AppTest, str, int]]:
    """The page on the simulated feed, with two simulated candles stored an hour ago."""
    url = f"sqlite:///{tmp_path}/m.db"
    hour_ago = int(time.time() * 1000) - 3_600_000
    minute = hour_ago - hour_ago % MINUTE_MS
    db = Database(url)
    rows = [
        ("mock", "BTCUSDT", "simulated", minute, 100.0, 102.0, 99.0, 101.0, 3.0, 303.0, 4, 2.0,
         1.0),
        ("mock", "BTCUSDT", "live", minute + MINUTE_MS, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1, 1.0,
         0.0),
    ]  # fmt: skip
    db.transaction([(UPSERT_CANDLE, rows)])
    db.close()
    for name, value in {"MARKET_EXCHANGE": "mock", "MARKET_SYMBOLS": "BTCUSDT",
                        "MOCK_SEED": "42", "MARKET_DB": url}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT)
    stop_workers()
    at = AppTest.from_file(MAIN, default_timeout=30)
    try:
        yield at, url, minute
    finally:
        stop_workers()


def test_the_range_selector_reads_history(page: tuple[AppTest, str, int]) -> None:
    at, url, minute = page
    at.run()
    assert not at.exception
    assert at.segmented_control(key="history_range").value == "Live window"
    n_live = len(at.get("plotly_chart"))
    status = [h.value for h in at.html if "history-status" in h.value]
    assert len(status) == 1 and url[len("sqlite:///") :] in status[0]
    at.segmented_control(key="history_range").set_value("24 h").run()
    assert not at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == n_live + 2  # the stored candles and the stored series
    candles = json.loads(charts[n_live].proto.spec)
    trace = next(t for t in candles["data"] if t["type"] == "candlestick")
    x, opens = decode(trace["x"]), decode(trace["open"])
    # the simulated candle stored an hour ago is drawn (5-minute candles over 24 h) exactly as
    # stored; the row stored as "live" for this simulated market (all 1.0) is never mixed in
    stored = list(x).index(minute - minute % (5 * MINUTE_MS))  # its 5-minute candle
    ohlc = [decode(trace[k])[stored] for k in ("open", "high", "low", "close")]
    assert ohlc == [100.0, 102.0, 99.0, 101.0]
    assert 1.0 not in list(opens)
    assert "SIMULATED" in candles["layout"]["title"]["text"]
