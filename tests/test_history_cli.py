"""The CLI and history: ``watch`` twice on one database (the second run's candles include the
first's), and ``history`` exports (csv, json), with its refusals (exit 2, one line)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from market.analytics import MINUTE_MS
from market.events import Trade
from market.history.writer import HistoryWriter
from market.store import MarketStore
from tests.conftest import wait_for
from tests.fakes.binance import FakeBinance
from tests.helpers.cli import clean_env, cli

BTC = "BTCUSDT"


def watch_and_trade(ex: FakeBinance, cwd: Path, db: str, fills: list[tuple[str, str]]) -> list:
    """One ``watch`` run of 4 s; ``fills`` (price, qty; sells) are published once it is live;
    the last line's candles are returned."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "market", "watch", "--exchange", "binance", "--symbols", BTC,
         "--seconds", "4", "--interval", "0.5"],
        cwd=cwd,
        env=clean_env(BINANCE_WS_URL=ex.ws_url, BINANCE_REST_URL=ex.rest_url,
                      MARKET_FALLBACK="none", MARKET_DB=db),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        before = ex.snapshot_requests[BTC]
        wait_for(lambda: ex.snapshot_requests[BTC] > before, timeout=10, what="the CLI to sync")
        for price, qty in fills:
            ex.trade(BTC, price, qty, buyer_is_maker=True)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0 and stderr == "", stderr
    last = orjson.loads(stdout.splitlines()[-1])
    assert last["source"] == "live" and last["trades"] == len(fills)
    candles: list = last["candles"]
    return candles


def test_watch_candles_include_the_stored_ones_after_a_restart(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/m.db"
    with FakeBinance([BTC]) as ex:
        first = watch_and_trade(ex, tmp_path, db, [("100.5", "0.5"), ("101.0", "0.25")])
        with ex._lock:
            t1 = ex._event_time
            ex._event_time += MINUTE_MS  # the next trades open a new minute
        second = watch_and_trade(ex, tmp_path, db, [("99.0", "1.0")])
        with ex._lock:
            t2 = ex._event_time
    m1, m2 = t1 - t1 % MINUTE_MS, t2 - t2 % MINUTE_MS
    assert first == [[m1, 100.5, 101.0, 100.5, 101.0, 0.75, 2]]
    assert second == [
        [m1, 100.5, 101.0, 100.5, 101.0, 0.75, 2],
        [m2, 99.0, 99.0, 99.0, 99.0, 1.0, 1],
    ]


@pytest.fixture
def stored(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/h.db"
    store = MarketStore()
    writer = HistoryWriter(store, url)
    store.add_trades(
        "binance",
        BTC,
        [
            Trade("binance", BTC, 100.0, 1.0, "buy", 1_700_000_000_000),
            Trade("binance", BTC, 102.0, 0.5, "sell", 1_700_000_030_000),
            Trade("binance", BTC, 101.0, 2.0, "buy", 1_700_000_065_000),
        ],
    )
    writer.cycle()
    return url


def test_history_exports_csv_and_json(tmp_path: Path, stored: str) -> None:
    args = ["history", "--exchange", "binance", "--symbol", "btcusdt", "--db", stored]
    span = ["--since", "1699999980000", "--until", "2023-11-14T22:15:00"]
    proc = cli([*args, *span], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "exchange,symbol,source,open_ms,open,high,low,close,volume,notional,trades,"
        "buy_volume,sell_volume",
        "binance,BTCUSDT,live,1699999980000,100.0,102.0,100.0,102.0,1.5,151.0,2,1.0,0.5",
        "binance,BTCUSDT,live,1700000040000,101.0,101.0,101.0,101.0,2.0,202.0,1,2.0,0.0",
    ]
    proc = cli(
        [*args, "--since", "1700000040000", "--until", "1700000100000", "--format", "json"],
        tmp_path,
    )
    assert orjson.loads(proc.stdout) == [
        {
            "exchange": "binance", "symbol": BTC, "source": "live", "open_ms": 1700000040000,
            "open": 101.0, "high": 101.0, "low": 101.0, "close": 101.0, "volume": 2.0,
            "notional": 202.0, "trades": 1, "buy_volume": 2.0, "sell_volume": 0.0,
        }
    ]  # fmt: skip
    proc = cli([*args, "--since", "1700000100000"], tmp_path)
    assert proc.stdout.splitlines()[1:] == []  # nothing after: just the header


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "parquet"], "parquet needs pyarrow, not installed (use csv or json)"),
        (["--since", "yesterday"], "--since/--until: 'yesterday': expected e.g. 24h, 90m, 7d"),
        (["--db", "mysql://h/x"], "--db='mysql://h/x': must be sqlite:///PATH"),
        (["--symbol", "BTC/USDT"], "--symbols: 'BTC/USDT': only letters, digits and '-'"),
    ],
)
def test_history_refusals_exit_2_with_one_line(
    tmp_path: Path, stored: str, extra: list[str], message: str
) -> None:
    proc = cli(
        ["history", "--exchange", "binance", "--symbol", BTC, "--db", stored, *extra], tmp_path
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"python -m market history: error: {message}")
    assert len(proc.stderr.splitlines()) == 1 and proc.stdout == ""
