"""Live and replay cannot drift: for each venue, ``python -m market record`` against its
loopback fake, then ``python -m market watch --replay FILE --speed max --depth 200``, and the
replayed books equal what the live client held at the end, level for level, as deep as the
venue publishes (Bybit: its 50-level window, so a level pushed out of it silently is gone in
the replay too), and equal the fake exchange's own truth."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from tests.conftest import wait_for
from tests.fakes.binance import FakeBinance
from tests.fakes.bybit import FakeBybit
from tests.fakes.hyperliquid import FakeHyperLiquid
from tests.helpers.cli import clean_env, cli, parse_lines

DEPTH = 200
BTC, ETH = "BTCUSDT", "ETHUSDT"


def record(
    tmp_path: Path,
    exchange: str,
    symbols: str,
    env: dict[str, str],
    started: Callable[[], bool],
    move: Callable[[], None],
    seconds: float = 5.0,
) -> tuple[Path, dict[str, Any]]:
    """Record ``exchange`` for ``seconds`` while ``move`` drives the fake (once it has
    ``started``); returns the file and the closing summary (the live client's books)."""
    out = tmp_path / f"{exchange}.gz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "market", "record", "--exchange", exchange, "--symbols", symbols,
         "--out", str(out), "--seconds", str(seconds), "--depth", str(DEPTH)],
        cwd=tmp_path, env=clean_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_for(started, 10.0, what=f"{exchange}: the recorder to subscribe")
        move()
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    summary = orjson.loads(stdout)
    assert summary["status"]["bad_messages"] == 0
    return out, summary


def replay(path: Path, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """The last line of each symbol of ``watch --replay --speed max --depth 200`` (the
    symbols named as they were recorded: BTCUSDT, which HyperLiquid calls BTC)."""
    proc = cli(
        ["watch", "--replay", str(path), "--speed", "max", "--depth", str(DEPTH),
         "--symbols", f"{BTC},{ETH}", "--seconds", "30", "--interval", "5"],
        tmp_path, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    last: dict[str, dict[str, Any]] = {}
    for line in parse_lines(proc.stdout):
        assert (line["exchange"], line["source"]) == ("replay", "replay")
        last[line["symbol"]] = line
    return last


def same_books(
    summary: dict[str, Any], replayed: dict[str, dict[str, Any]], truth: dict[str, Any]
) -> None:
    assert set(replayed) == set(summary["books"]) == set(truth)
    for symbol, live in summary["books"].items():
        line = replayed[symbol]
        assert line["status"]["state"] == "stopped", line["status"]
        assert live["synced"] and line["status"]["bad_messages"] == 0
        # level for level: the replay ends where the live client ended, and both on the truth
        assert line["bids"] == live["bids"], symbol
        assert line["asks"] == live["asks"], symbol
        bids, asks, _ = truth[symbol]
        assert live["bids"] == [[p, q] for p, q in bids], symbol
        assert live["asks"] == [[p, q] for p, q in asks], symbol


def pace(step: Callable[[], None], seconds: float) -> Callable[[], None]:
    def move() -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            step()
            time.sleep(0.02)  # pacing the exchange, not synchronisation

    return move


def test_binance_record_then_replay_ends_on_the_live_books(tmp_path: Path) -> None:
    with FakeBinance([BTC, ETH], seed=21) as ex:
        gapped = []

        def step() -> None:
            ex.tick(2)
            if not gapped and ex.snapshot_requests[BTC] == 1:
                ex.skip(3, BTC)  # a gap: the recorder fetches a second snapshot, inline
                gapped.append(True)

        path, summary = record(
            tmp_path, "binance", f"{BTC},{ETH}",
            {"BINANCE_WS_URL": ex.ws_url, "BINANCE_REST_URL": ex.rest_url},
            lambda: all(ex.snapshot_requests[s] >= 1 for s in (BTC, ETH)), pace(step, 2.5),
        )  # fmt: skip
        truth = {s: ex.truth(s, DEPTH) for s in (BTC, ETH)}
    assert ex.snapshot_requests[BTC] == 2 and summary["status"]["resyncs"] == 1
    same_books(summary, replay(path, tmp_path), truth)


def test_bybit_record_then_replay_keeps_the_50_level_window(tmp_path: Path) -> None:
    with FakeBybit([BTC, ETH], seed=22) as ex:
        ex.silent_trim = True  # levels leave the window unannounced: only the window drops them
        for symbol in (BTC, ETH):
            ex.fill(symbol)
        gapped = []

        def step() -> None:
            ex.tick(3)
            for symbol in (BTC, ETH):
                ex.push(symbol)  # a new best bid: the worst leaves the window, unannounced
            if not gapped:
                ex.skip(2, ETH)  # a gap in u: the recorder resubscribes, Bybit sends a snapshot
                gapped.append(True)

        path, summary = record(
            tmp_path, "bybit", f"{BTC},{ETH}", {"BYBIT_WS_URL": ex.ws_url},
            lambda: all(f"orderbook.50.{s}" in ex.subscribed() for s in (BTC, ETH)),
            pace(step, 2.5),
        )  # fmt: skip
        truth = {s: ex.truth(s, DEPTH) for s in (BTC, ETH)}
    assert ex.trimmed > 0  # some levels were pushed out silently while recording
    assert summary["status"]["resyncs"] >= 1
    same_books(summary, replay(path, tmp_path), truth)


def test_hyperliquid_record_then_replay_ends_on_the_last_image(tmp_path: Path) -> None:
    with FakeHyperLiquid(["BTC", "ETH"], seed=23) as ex:

        def step() -> None:
            ex.tick(1)
            ex.trade("BTC", "100.5", "0.25")

        path, summary = record(
            tmp_path, "hyperliquid", f"{BTC},{ETH}", {"HYPERLIQUID_WS_URL": ex.ws_url},
            lambda: {"l2Book:BTC", "l2Book:ETH"} <= ex.subscriptions(), pace(step, 2.0),
        )  # fmt: skip
        truth = {f"{c}USDT": ex.truth(c, DEPTH) for c in ("BTC", "ETH")}
    replayed = replay(path, tmp_path)
    same_books(summary, replayed, truth)
    assert replayed[BTC]["trades"] > 0
