"""The headless CLI, run as a real subprocess: ``python -m market watch …``.

Each run gets a clean environment (no MARKET_*/BINANCE_* variables, no proxies) and an empty
working directory (so no developer's .env is read).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import ROOT, wait_for
from tests.fakes.binance import FakeBinance

LINE_KEYS = {
    "t", "exchange", "symbol", "source", "status", "best_bid", "best_ask", "mid", "spread",
    "imbalance", "bids", "asks", "trades", "last_trade",
    # analytics (DESIGN.md: the line grows these, never renames)
    "vwap", "cvd", "depth_delta", "volatility_spread", "candles", "alerts", "ticker",
}  # fmt: skip
STATUS_KEYS = {"state", "detail", "reconnects", "resyncs", "messages", "bad_messages"}
# FeedStatus fields (DESIGN.md "Feed health is data") the status object may carry besides
FEED_STATUS_EXTRAS = {"last_message_age_s", "msg_rate", "next_retry_in_s"}
STATES = {"connecting", "live", "reconnecting", "blocked", "simulated", "stopped"}
SETTINGS_VARS = (
    "MARKET_EXCHANGE", "MARKET_SYMBOLS", "MARKET_FALLBACK", "BINANCE_WS_URL", "BINANCE_REST_URL",
    "BYBIT_WS_URL", "HYPERLIQUID_WS_URL", "CONNECTION_TIMEOUT_SECONDS", "STALE_AFTER_SECONDS",
    "MOCK_SEED",
)  # fmt: skip


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SETTINGS_VARS and "proxy" not in k.lower() and not k.startswith("PYTEST")
    }
    env["PYTHONPATH"] = str(ROOT)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def cli(
    args: list[str], cwd: Path, timeout: float = 30.0, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "market", *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def is_number(x: object) -> bool:
    return type(x) in (int, float)


def check_line(line: dict[str, Any], depth: int = 20) -> None:
    """The public schema of DESIGN.md, and the numbers consistent with each other."""
    assert set(line) == LINE_KEYS
    assert is_number(line["t"])
    assert type(line["exchange"]) is str and type(line["symbol"]) is str
    assert line["source"] in ("live", "simulated", "replay")
    status = line["status"]
    assert STATUS_KEYS <= set(status) <= STATUS_KEYS | FEED_STATUS_EXTRAS, set(status)
    assert status["state"] in STATES
    assert type(status["detail"]) is str
    for key in ("reconnects", "resyncs", "messages", "bad_messages"):
        assert type(status[key]) is int and status[key] >= 0, key
    for key in ("best_bid", "best_ask", "mid", "spread", "imbalance"):
        assert line[key] is None or is_number(line[key]), key
    bids, asks = line["bids"], line["asks"]
    for levels in (bids, asks):
        assert isinstance(levels, list) and len(levels) <= depth
        for level in levels:
            assert isinstance(level, list) and len(level) == 2
            assert all(is_number(x) for x in level) and level[0] > 0 and level[1] > 0
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)
    assert len({p for p, _ in bids}) == len(bids) and len({p for p, _ in asks}) == len(asks)
    if bids and asks:
        bb, ba = bids[0][0], asks[0][0]
        assert bb < ba
        assert (line["best_bid"], line["best_ask"]) == (bb, ba)
        assert line["mid"] == pytest.approx((bb + ba) / 2, rel=1e-12)
        assert line["spread"] == pytest.approx(ba - bb, rel=1e-12)
        if len(bids) >= 5 and len(asks) >= 5:  # imbalance is over the best 5 levels of the book
            bid_vol = sum(q for _, q in bids[:5])
            ask_vol = sum(q for _, q in asks[:5])
            expected = (bid_vol - ask_vol) / (bid_vol + ask_vol)
            assert line["imbalance"] == pytest.approx(expected, rel=1e-9)
        assert -1 <= line["imbalance"] <= 1
    elif not bids and not asks:
        assert line["best_bid"] is line["best_ask"] is line["mid"] is line["spread"] is None
        assert line["imbalance"] is None
    assert type(line["trades"]) is int and line["trades"] >= 0
    last = line["last_trade"]
    if last is None:
        assert line["trades"] == 0
    else:
        assert set(last) == {"price", "qty", "side", "ts"}
        assert is_number(last["price"]) and is_number(last["qty"]) and type(last["ts"]) is int
        assert last["side"] in ("buy", "sell")
        assert line["trades"] >= 1
    assert line["vwap"] is None or is_number(line["vwap"])
    assert is_number(line["cvd"]) and is_number(line["volatility_spread"])
    assert line["volatility_spread"] >= 0
    if (bids or asks) and depth >= 20:  # the line's levels hold the top 20 the figure sums
        assert line["depth_delta"] == pytest.approx(
            sum(q for _, q in bids[:20]) - sum(q for _, q in asks[:20]), rel=1e-9, abs=1e-9
        )
    candles = line["candles"]
    assert isinstance(candles, list) and len(candles) <= 5
    for c in candles:
        assert len(c) == 7 and type(c[0]) is int and type(c[6]) is int and c[0] % 60_000 == 0
        assert c[3] <= min(c[1], c[4]) <= max(c[1], c[4]) <= c[2]
    assert [c[0] for c in candles] == sorted(c[0] for c in candles)
    assert isinstance(line["alerts"], list) and len(line["alerts"]) <= 20
    for a in line["alerts"]:
        assert set(a) == {"ts", "side", "price", "qty", "notional"}
        assert a["notional"] == pytest.approx(a["price"] * a["qty"])


def parse_lines(stdout: str) -> list[dict[str, Any]]:
    lines = stdout.splitlines()
    assert lines, "no output"
    assert "NaN" not in stdout and "Infinity" not in stdout
    return [orjson.loads(line) for line in lines]


# -- the simulated feed --------------------------------------------------------------------------


def test_watch_mock_prints_json_lines(tmp_path: Path) -> None:
    started = time.time()
    proc = cli(
        [
            "watch",
            "--exchange",
            "mock",
            "--symbols",
            "BTCUSDT,ETHUSDT",
            "--seconds",
            "2.5",
            "--interval",
            "1",
        ],
        tmp_path,
        MOCK_SEED="42",
    )
    elapsed = time.time() - started
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = parse_lines(proc.stdout)
    # one line per symbol at 1 s and 2 s, and the last one at 2.5 s
    assert [line["symbol"] for line in lines] == ["BTCUSDT", "ETHUSDT"] * 3
    assert 2.5 <= elapsed < 10
    for line in lines:
        check_line(line)
        assert line["exchange"] == "mock"
        assert line["source"] == "simulated"
        assert line["status"]["state"] == "simulated"
        assert line["bids"] and line["asks"]
        assert len(line["bids"]) == len(line["asks"]) == 20  # --depth 20 of a ~50-level book
        assert started <= line["t"] <= started + elapsed
    rounds = [lines[i : i + 2] for i in range(0, 6, 2)]
    times = [r[0]["t"] for r in rounds]
    assert times == sorted(times)
    assert times[1] - times[0] == pytest.approx(1.0, abs=0.4)
    assert times[2] - times[1] == pytest.approx(0.5, abs=0.4)
    btc = [line for line in lines if line["symbol"] == "BTCUSDT"]
    assert all(10_000 <= line["mid"] < 100_000 for line in btc)
    assert btc[-1]["trades"] >= btc[0]["trades"]
    assert btc[-1]["trades"] > 0 and btc[-1]["last_trade"] is not None
    assert btc[-1]["status"]["messages"] > btc[0]["status"]["messages"]


def test_watch_depth_option(tmp_path: Path) -> None:
    proc = cli(
        ["watch", "--exchange", "mock", "--symbols", "solusdt", "--seconds", "0.6",
         "--interval", "5",
         "--depth", "3"],
        tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = parse_lines(proc.stdout)
    assert len(lines) == 1  # the interval is longer than the run: only the last line
    (line,) = lines
    check_line(line, depth=3)
    assert line["symbol"] == "SOLUSDT"
    assert len(line["bids"]) == len(line["asks"]) == 3


def test_mock_seed_and_symbols_from_the_environment(tmp_path: Path) -> None:
    proc = cli(
        ["watch", "--seconds", "0.5", "--interval", "1"],
        tmp_path,
        MARKET_EXCHANGE="mock",
        MARKET_SYMBOLS="ethusdt",
        MOCK_SEED="1",
    )
    assert proc.returncode == 0, proc.stderr
    (line,) = parse_lines(proc.stdout)
    check_line(line)
    assert (line["exchange"], line["symbol"], line["source"]) == ("mock", "ETHUSDT", "simulated")


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["watch", "--exchange", "kraken"], ["--exchange", "kraken"]),
        (["watch", "--exchange", "mock", "--symbols", "BTC$"], ["--symbols", "BTC$"]),
        (
            ["watch", "--exchange", "mock", "--seconds", "1", "--symbols", ""],
            ["--symbols", "no symbols"],
        ),
        (
            ["watch", "--exchange", "mock", "--seconds", "1", "--symbols", " , "],
            ["--symbols", "no symbols"],
        ),
        (["watch", "--exchange", "mock", "--symbols", "BTCUSDT,ETH/USDT"], ["ETH/USDT"]),
        (["watch", "--symbols", "X"], ["X", "Binance"]),  # Binance's own symbol rules
        (["watch", "--exchange", "mock", "--seconds", "-1"], ["--seconds", "-1"]),
        (["watch", "--exchange", "mock", "--seconds", "soon"], ["--seconds", "soon"]),
        (["watch", "--exchange", "mock", "--seconds", "nan"], ["--seconds"]),
        (["watch", "--exchange", "mock", "--interval", "0"], ["--interval", "0"]),
        (["watch", "--exchange", "mock", "--depth", "abc"], ["--depth", "abc"]),
        (["watch", "--exchange", "mock", "--depth", "0"], ["--depth"]),
        (["watch", "--exchange", "mock", "--bogus"], ["--bogus"]),
        ([], ["required", "command"]),
        (["bogus"], ["bogus"]),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    tmp_path: Path, args: list[str], names: list[str]
) -> None:
    proc = cli(args, tmp_path, timeout=15)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert proc.stderr.endswith("\n") and proc.stderr.count("\n") == 1, proc.stderr
    for name in names:
        assert name in proc.stderr, (name, proc.stderr)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"MARKET_EXCHANGE": "kraken"}, "MARKET_EXCHANGE"),
        ({"MARKET_SYMBOLS": "BTC$"}, "MARKET_SYMBOLS"),
        ({"STALE_AFTER_SECONDS": "-5"}, "STALE_AFTER_SECONDS"),
        ({"MOCK_SEED": "abc"}, "MOCK_SEED"),
        ({"BINANCE_WS_URL": "http://example.com"}, "BINANCE_WS_URL"),
    ],
)
def test_bad_environment_exits_2_naming_the_variable(
    tmp_path: Path, env: dict[str, str], name: str
) -> None:
    proc = cli(["watch", "--seconds", "1"], tmp_path, timeout=15, **env)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and name in proc.stderr, proc.stderr


def test_bad_env_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MARKET_EXCHANGE=kraken  # not supported\n", encoding="utf-8")
    proc = cli(["watch", "--seconds", "1"], tmp_path, timeout=15)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "MARKET_EXCHANGE" in proc.stderr


def test_sigterm_prints_the_last_line_and_exits_0(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "market", "watch", "--exchange", "mock", "--symbols", "BTCUSDT",
         "--seconds", "60", "--interval", "0.2"],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = orjson.loads(proc.stdout.readline())  # running: it printed a line
        check_line(first)
        started = time.monotonic()
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert time.monotonic() - started < 5  # not the 60 s asked for
    lines = parse_lines(stdout)
    check_line(lines[-1])
    assert lines[-1]["symbol"] == "BTCUSDT"


def test_a_reader_that_goes_away_stops_it_quietly(tmp_path: Path) -> None:
    """``python -m market watch … | head -n 1``: no traceback once the pipe is closed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "market", "watch", "--exchange", "mock", "--symbols", "BTCUSDT",
         "--seconds", "30", "--interval", "0.2"],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stderr is not None
        orjson.loads(proc.stdout.readline())
        proc.stdout.close()
        proc.wait(timeout=10)  # the next write fails and ends the run, long before 30 s
        stderr = proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert proc.returncode == 0


def test_help_exits_0(tmp_path: Path) -> None:
    proc = cli(["watch", "--help"], tmp_path, timeout=15)
    assert proc.returncode == 0
    for option in ("--exchange", "--symbols", "--seconds", "--interval", "--depth"):
        assert option in proc.stdout


# -- against the fake Binance on loopback --------------------------------------------------------


def test_watch_binance_books_equal_the_exchange_truth(tmp_path: Path) -> None:
    symbols = ["BTCUSDT", "ETHUSDT"]
    with FakeBinance(symbols, seed=3) as ex:
        proc = subprocess.Popen(
            [sys.executable, "-m", "market", "watch", "--exchange", "binance", "--symbols",
             ",".join(symbols), "--seconds", "7", "--interval", "1"],
            cwd=tmp_path,
            env=clean_env(
                BINANCE_WS_URL=ex.ws_url, BINANCE_REST_URL=ex.rest_url, MARKET_FALLBACK="none"
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            started = time.monotonic()
            wait_for(lambda: ex.connections() > 0, timeout=5, what="the CLI to connect")
            wait_for(
                lambda: all(ex.snapshot_requests[s] > 0 for s in symbols),
                timeout=5,
                what="the snapshot requests",
            )
            # the exchange moves while the CLI watches: diffs every 20 ms for 2.5 s, two trades
            tick_until = min(time.monotonic() + 2.5, started + 5.5)
            n_ticks = 0
            while time.monotonic() < tick_until:
                ex.tick(1)
                n_ticks += 1
                if n_ticks == 10:
                    ex.trade("BTCUSDT", "100.01000000", "0.50000000", buyer_is_maker=True)
                    ex.trade("ETHUSDT", "109.99000000", "2.00000000", buyer_is_maker=False)
                time.sleep(0.02)
            assert n_ticks > 20
            # then it stops: after >= 1.5 s of quiet the run must end on exactly the exchange's book
            stdout, stderr = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        truth = {s: ex.truth(s, 20) for s in symbols}
        requests = dict(ex.snapshot_requests)
    assert proc.returncode == 0, stderr
    lines = parse_lines(stdout)
    for line in lines:
        check_line(line)
        assert line["exchange"] == "binance"
        assert line["source"] == "live"
    last = {line["symbol"]: line for line in lines[-2:]}
    assert set(last) == set(symbols)
    for symbol in symbols:
        bids, asks, _ = truth[symbol]
        line = last[symbol]
        assert line["bids"] == [[p, q] for p, q in bids]
        assert line["asks"] == [[p, q] for p, q in asks]
        assert line["status"]["state"] == "live"
        assert line["status"]["bad_messages"] == 0
        assert line["status"]["resyncs"] == 0
        assert line["trades"] == 1
        # one snapshot each: the final book is the first snapshot plus every live diff
        assert requests[symbol] == 1
    assert last["BTCUSDT"]["last_trade"] == {
        "price": 100.01, "qty": 0.5, "side": "sell", "ts": last["BTCUSDT"]["last_trade"]["ts"],
    }  # fmt: skip
    assert last["ETHUSDT"]["last_trade"]["side"] == "buy"
    assert (last["ETHUSDT"]["last_trade"]["price"], last["ETHUSDT"]["last_trade"]["qty"]) == (
        109.99,
        2.0,
    )
    assert last["BTCUSDT"]["last_trade"]["ts"] > 1_700_000_000_000
    btc, eth = last["BTCUSDT"], last["ETHUSDT"]
    assert (btc["vwap"], btc["cvd"], btc["volatility_spread"]) == (100.01, -0.5, 0.0)
    assert (eth["vwap"], eth["cvd"]) == (109.99, 2.0)
    minute = btc["last_trade"]["ts"] // 60_000 * 60_000
    assert btc["candles"] == [[minute, 100.01, 100.01, 100.01, 100.01, 0.5, 1]]
    assert btc["alerts"] == eth["alerts"] == []  # 50 and 220 notional: far below 100,000
