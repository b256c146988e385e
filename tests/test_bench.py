"""The ingest benchmark runs on recordings of the three exchanges; its figures are printed,
never asserted (only the counts, which are exact, and the shape of its JSON)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import orjson
import pytest

from market.bench import STAGES, bench, run
from market.recording import Recorder
from market.venues import SESSIONS
from tests.conftest import shared_fixture
from tests.fakes.server import TrueBook
from tests.helpers.cli import cli
from tests.helpers.recordings import T0_NS, bybit_recording, write

DESIGN_KEYS = {"events", "events_per_s", "us_per_event", "stages"}


def binance_recording(path: Path, diffs: int = 50) -> Path:
    book = TrueBook("BTCUSDT", random.Random(9))
    rec = Recorder(path)
    rec.snapshot(orjson.dumps(book.snapshot()), "BTCUSDT", T0_NS)
    for i in range(diffs):
        frame = {"stream": "btcusdt@depth@100ms", "data": book.diff(1_700_000_000_000 + i)}
        rec.frame(orjson.dumps(frame), T0_NS + (i + 1) * 100_000_000)
    rec.frame('{"result":null,"id":1}', T0_NS + (diffs + 1) * 100_000_000)  # a reply: no event
    rec.close()
    return path


def hyperliquid_recording(path: Path, images: int = 30) -> Path:
    frames = ["Websocket connection established."]
    for i in range(images):
        bids = [{"px": f"{100 - j - i % 3}.0", "sz": f"{j + 1}.5", "n": 1} for j in range(20)]
        asks = [{"px": f"{101 + j}.0", "sz": f"{j + 2}.5", "n": 2} for j in range(20)]
        frames.append(
            json.dumps(
                {
                    "channel": "l2Book",
                    "data": {"coin": "BTC", "time": 1_700_000_000_000 + i, "levels": [bids, asks]},
                }
            )
        )
    frames.append(json.dumps({"channel": "trades", "data": [
        {"coin": "BTC", "side": "B", "px": "100.5", "sz": "0.1", "time": 5, "hash": "0x1",
         "tid": 1, "users": []}]}))  # fmt: skip
    return write(path, frames)


def check(
    result: dict[str, object], exchange: str, events: int, frames: int, snapshots: int
) -> None:
    assert set(result) >= DESIGN_KEYS
    assert (result["exchange"], result["events"], result["frames"], result["snapshots"]) == (
        exchange, events, frames, snapshots,
    )  # fmt: skip
    stages = result["stages"]
    assert isinstance(stages, dict) and tuple(stages) == STAGES
    assert all(isinstance(v, float) and v >= 0 for v in stages.values())
    assert isinstance(result["events_per_s"], float) and result["events_per_s"] > 0
    assert isinstance(result["us_per_event"], float) and result["us_per_event"] > 0


def test_binance_recording(tmp_path: Path) -> None:
    path = binance_recording(tmp_path / "b.gz")
    result = bench([path], repeat=2)
    check(result, "binance", 50, 51, 1)
    assert isinstance(result["us_per_snapshot"], float)


def test_bybit_recording(tmp_path: Path) -> None:
    path, _ = bybit_recording(tmp_path / "y.gz")
    result = bench([path], repeat=2)
    check(result, "bybit", 2 + 120, 123, 0)  # snapshots on the stream are depth events
    assert result["us_per_snapshot"] is None


def test_hyperliquid_recording(tmp_path: Path) -> None:
    path = hyperliquid_recording(tmp_path / "h.gz")
    check(bench([path], repeat=2), "hyperliquid", 30, 32, 0)


def test_both_passes_count_every_depth_event_once(tmp_path: Path) -> None:
    path = binance_recording(tmp_path / "b.gz", diffs=7)
    plain = run(SESSIONS["binance"], [path], ["BTCUSDT"])
    timed = run(SESSIONS["binance"], [path], ["BTCUSDT"], timed=True)
    for result in (plain, timed):
        assert (result["events"], result["frames"], result["snapshots"], result["bad"]) == (
            7, 8, 1, 0,
        )  # fmt: skip
        assert result["ns"] > 0
    assert "stages" not in plain
    # the stage hook splits the timed pass's time, all of it
    assert set(timed["stages"]) == set(STAGES)
    assert sum(timed["stages"].values()) == timed["ns"]


@pytest.mark.fixtures
def test_cryptofeed_recording_with_its_snapshots() -> None:
    path = shared_fixture("cryptofeed_BINANCE.ws.1.0")
    check(bench([path], repeat=1), "binance", 177, 265, 4)
    # the same when both files are named
    check(
        bench([path, path.with_name("cryptofeed_BINANCE.http.0.0")], repeat=1),
        "binance",
        177,
        265,
        4,
    )


def test_cli_json_and_text(tmp_path: Path) -> None:
    path = hyperliquid_recording(tmp_path / "h.gz")
    proc = cli(["bench", str(path), "--json", "--repeat", "2"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = orjson.loads(proc.stdout)
    check(result, "hyperliquid", 30, 32, 0)
    proc = cli(["bench", str(path), "--repeat", "1"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()
    assert first == "hyperliquid recording h.gz: 30 depth events in 32 frames"
    assert second.startswith("pipeline: ") and "depth events/s" in second and "decode" in second


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["bench"], ["FILE"]),
        (["bench", "{dir}/missing.gz"], ["missing.gz"]),
        (["bench", "{junk}"], ["junk.txt", "not a recording"]),
        (["bench", "{junk}", "--repeat", "0"], ["--repeat"]),
    ],
)
def test_cli_refuses_bad_arguments_with_one_line(
    tmp_path: Path, args: list[str], names: list[str]
) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("nothing\n", encoding="utf-8")
    argv = [a.replace("{dir}", str(tmp_path)).replace("{junk}", str(junk)) for a in args]
    proc = cli(argv, tmp_path, timeout=15)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    for name in names:
        assert name in proc.stderr, (name, proc.stderr)
