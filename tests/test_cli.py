"""The headless CLI, run as a real subprocess: ``python -m market watch …``.

Each run gets a clean environment (no MARKET_*/BINANCE_* variables, no proxies) and an empty
working directory (so no developer's .env is read).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.conftest import wait_for
from tests.fakes.binance import FakeBinance
from tests.helpers.cli import check_line, clean_env, cli, parse_lines

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
