"""Replay: recordings through the same adapters, book sync, pipeline and store, labelled
``replay``; paced by the receive times (exact delays with an injected clock and sleep).

The real recordings in ../shared/fixtures are read as they are (skipped where absent); the
expected books are rebuilt here independently, from the raw lines, with plain dicts.
"""

from __future__ import annotations

import asyncio
import gzip
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from market.errors import InvalidSymbol, SettingsError
from market.events import FeedState, Source
from market.recording import Recorder
from market.replay import CHUNK, ReplaySession, check_settings, inspect
from market.settings import Settings
from market.store import MarketStore
from market.views import StoreSnapshot
from market.worker import Timing, Worker
from tests.conftest import shared_fixture, wait_for
from tests.helpers.cli import check_line, cli, parse_lines
from tests.helpers.recordings import T0_NS, BybitStream, bybit_recording, top, write

FAST = Timing(status_interval=0.05, close_timeout=0.5)


def replay_settings(
    path: Path | str, symbols: tuple[str, ...] = (), speed: float = math.inf
) -> Settings:
    return Settings(
        exchanges=("replay",), symbols=symbols, replay_file=str(path), replay_speed=speed
    )


def replay_to_end(path: Path | str, symbols: tuple[str, ...] = ()) -> StoreSnapshot:
    worker = Worker(replay_settings(path, symbols), timing=FAST).start()
    try:
        return wait_for(lambda: finished(worker), 10.0, what="the replay to finish")
    finally:
        worker.stop()


def finished(worker: Worker) -> StoreSnapshot | None:
    snap = worker.store.snapshot(series=False)
    status = snap.statuses.get("replay")
    return snap if status is not None and status.state == "stopped" else None


def test_bybit_recording_replays_to_the_true_books(tmp_path: Path) -> None:
    path, streams = bybit_recording(tmp_path / "bybit.gz")
    snap = replay_to_end(path)
    status = snap.statuses["replay"]
    assert (status.state, status.source, status.messages, status.bad_messages, status.resyncs) == (
        "stopped", "replay", 123, 0, 0,
    )  # fmt: skip
    assert status.detail.startswith("replay finished: bybit.gz (bybit), 123 frames in ")
    assert status.symbols == ("BTCUSDT", "ETHUSDT")
    for symbol, stream in streams.items():
        view = snap.markets[("replay", symbol)]
        bids, asks, u = stream.truth()
        assert (view.source, view.synced) == ("replay", True)
        assert (list(view.bids), list(view.asks), view.update_id) == (bids, asks, u)
        assert view.book_updates == 61


def test_a_gap_waits_for_the_next_recorded_snapshot(tmp_path: Path) -> None:
    path, streams = bybit_recording(tmp_path / "gap.gz", gap=True)
    snap = replay_to_end(path)
    status = snap.statuses["replay"]
    assert (status.resyncs, status.bad_messages) == (1, 0)
    btc = snap.markets[("replay", "BTCUSDT")]
    bids, asks, u = streams["BTCUSDT"].truth()
    assert (list(btc.bids), list(btc.asks), btc.update_id, btc.resyncs) == (bids, asks, u, 1)
    # 31 deltas before the gap, none after it until the snapshot, then the snapshot and 5
    assert btc.book_updates == 1 + 30 + 1 + 5
    eth = snap.markets[("replay", "ETHUSDT")]
    assert (list(eth.bids), list(eth.asks)) == streams["ETHUSDT"].truth()[:2]
    assert eth.resyncs == 0


def test_only_the_symbols_asked_for(tmp_path: Path) -> None:
    path, streams = bybit_recording(tmp_path / "bybit.gz")
    snap = replay_to_end(path, ("eth-usdt",))
    assert set(snap.markets) == {("replay", "ETHUSDT")}
    assert snap.statuses["replay"].messages == 123  # every frame is read, one symbol is kept
    assert list(snap.markets[("replay", "ETHUSDT")].bids) == streams["ETHUSDT"].truth()[0]
    with pytest.raises(
        InvalidSymbol, match=r"SOLUSDT: not in the recording bybit.gz \(it has BTCUSDT, ETHUSDT\)"
    ):
        check_settings(replay_settings(path, ("SOLUSDT",)))
    assert check_settings(replay_settings(path)).symbols == ("BTCUSDT", "ETHUSDT")
    assert check_settings(replay_settings(path, ("ethusdt", "ETHUSDT"))).symbols == ("ETHUSDT",)


def test_changing_symbols_restarts_the_replay(tmp_path: Path) -> None:
    path, streams = bybit_recording(tmp_path / "bybit.gz")
    worker = Worker(replay_settings(path), timing=FAST).start()
    try:
        first = wait_for(lambda: finished(worker), 10.0, what="the first pass")
        assert first.markets[("replay", "ETHUSDT")].book_updates == 61
        worker.reconfigure(symbols=("ETHUSDT",))

        def second_pass() -> StoreSnapshot | None:
            snap = finished(worker)
            eth = snap and snap.markets.get(("replay", "ETHUSDT"))
            return snap if eth and eth.book_updates == 2 * 61 else None

        snap = wait_for(second_pass, 10.0, what="the replay again, with ETHUSDT only")
    finally:
        worker.stop()
    assert set(snap.markets) == {("replay", "ETHUSDT")}
    eth = snap.markets[("replay", "ETHUSDT")]
    assert (list(eth.bids), list(eth.asks), eth.update_id) == streams["ETHUSDT"].truth()
    assert snap.statuses["replay"].messages == 123


# -- pacing, with an injected clock and sleep ------------------------------------------------------


@dataclass
class FakeHealth:
    state: FeedState = "connecting"
    detail: str = ""
    source: Source = "live"
    messages: int = 0
    bad_messages: int = 0
    resyncs: int = 0
    last_message_at: float | None = None
    bad_seen: list[str] = field(default_factory=list)

    def bad(self, exc: BaseException, raw: object, now: float, interval: float) -> None:
        self.bad_messages += 1
        self.bad_seen.append(str(raw))


def play_with_fake_time(
    settings: Settings,
) -> tuple[list[tuple[float, str]], FakeHealth, ReplaySession]:
    now = [1000.0]
    health = FakeHealth()
    sleeps: list[tuple[float, str]] = []

    async def sleep(seconds: float) -> None:
        sleeps.append((seconds, health.detail))
        now[0] += seconds
        await asyncio.sleep(0)

    async def run() -> ReplaySession:
        session = ReplaySession(
            MarketStore(), check_settings(settings), clock=lambda: now[0], sleep=sleep
        )
        task = asyncio.create_task(session.play(health))
        while not session.finished:
            await asyncio.sleep(0)
        task.cancel()
        return session

    return sleeps, health, asyncio.run(run())


def test_speed_paces_by_the_receive_times(tmp_path: Path) -> None:
    stream = BybitStream("BTCUSDT", random.Random(1))
    path = tmp_path / "paced.gz"
    rec = Recorder(path)
    for offset_s in (0, 1, 1, 3):
        rec.frame(stream.snapshot() if offset_s == 0 else stream.delta(), T0_NS + offset_s * 10**9)
    rec.close()
    sleeps, health, session = play_with_fake_time(replay_settings(path, speed=2.0))
    assert sleeps == [
        (0.5, "replay of paced.gz (bybit) at 2×: 25 % done"),
        (1.0, "replay of paced.gz (bybit) at 2×: 75 % done"),
    ]
    assert (health.state, health.source, health.messages) == ("stopped", "replay", 4)
    assert health.detail == "replay finished: paced.gz (bybit), 4 frames in 1.5 s"
    assert session.played == 4


def test_max_speed_yields_to_the_loop_every_chunk(tmp_path: Path) -> None:
    stream = BybitStream("BTCUSDT", random.Random(2))
    frames = [stream.snapshot()] + [stream.delta() for _ in range(2 * CHUNK + 10)]
    path = write(tmp_path / "fast.gz", frames, step_ns=10**9)  # 1 s apart: ignored at max
    sleeps, health, _ = play_with_fake_time(replay_settings(path))
    assert sleeps == [
        (0, f"replay of fast.gz (bybit) at max speed: {100 * CHUNK / len(frames):.0f} % done"),
        (0, f"replay of fast.gz (bybit) at max speed: {100 * 2 * CHUNK / len(frames):.0f} % done"),
    ]
    assert health.messages == len(frames)
    assert health.detail == f"replay finished: fast.gz (bybit), {len(frames)} frames in 0.0 s"


def test_bad_frames_are_counted_and_skipped(tmp_path: Path) -> None:
    stream = BybitStream("BTCUSDT", random.Random(4))
    bad = [
        "not json",
        "[1,2]",
        '{"topic":"orderbook.50.BTCUSDT","type":"delta","data":{"s":"BTCUSDT"}}',
    ]
    frames = [stream.snapshot(), bad[0], stream.delta(), bad[1], bad[2], stream.delta()]
    path = write(tmp_path / "bad.gz", frames)
    _, health, session = play_with_fake_time(replay_settings(path))
    assert (health.messages, health.bad_messages, health.bad_seen) == (6, 3, bad)
    bids, asks, u = stream.truth()
    book = session.pipeline.syncs["BTCUSDT"].book
    assert book.top(20) == (tuple(bids), tuple(asks)) and book.update_id == u


# -- the real recordings ---------------------------------------------------------------------------


def cryptofeed_truth(
    name: str,
) -> dict[str, tuple[list[tuple[float, float]], list[tuple[float, float]], int]]:
    """Binance's procedure on plain dicts, from the raw lines of cryptofeed's two files."""
    ws = [
        x
        for x in shared_fixture(f"{name}.ws.1.0").read_text(encoding="utf-8").splitlines()[1:]
        if x
    ]
    http = [
        x for x in shared_fixture(f"{name}.http.0.0").read_text(encoding="utf-8").splitlines() if x
    ]
    items: list[tuple[float, int, Any]] = []
    for line in ws:
        ts, _, raw = line.partition(": ")
        data = orjson.loads(raw)["data"]
        if data.get("e") == "depthUpdate":
            items.append((float(ts), 1, data))
    for line in http:
        url, _, rest = line.partition(" -> ")
        ts, _, body = rest.partition(": ")
        symbol = url.split("symbol=")[1].split("&")[0]
        items.append((float(ts), 0, (symbol, orjson.loads(body))))
    items.sort(key=lambda item: (item[0], item[1]))
    books: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
    ids: dict[str, int] = {}
    pending: dict[str, list[dict[str, Any]]] = {}
    for _, kind, item in items:
        if kind == 0:
            symbol, body = item
            books[symbol] = (
                {float(p): float(q) for p, q in body["bids"]},
                {float(p): float(q) for p, q in body["asks"]},
            )
            ids[symbol] = body["lastUpdateId"]
            diffs, pending[symbol] = pending.pop(symbol, []), []
        else:
            symbol = item["s"]
            if symbol not in ids:
                pending.setdefault(symbol, []).append(item)
                continue
            diffs = [item]
        for diff in diffs:
            if diff["u"] <= ids[symbol]:
                continue
            assert diff["U"] <= ids[symbol] + 1, "no gap in these recordings"
            for side, key in zip(books[symbol], ("b", "a"), strict=True):
                for p, q in diff[key]:
                    if float(q):
                        side[float(p)] = float(q)
                    else:
                        side.pop(float(p), None)
            ids[symbol] = diff["u"]
    return {s: (top(b, 20, True), top(a, 20, False), ids[s]) for s, (b, a) in books.items()}


# (frames, bad frames: none — bookTicker frames are known and give no events —, REST
# snapshots) as read from the files
CRYPTOFEED = {"cryptofeed_BINANCE": (265, 0, 4), "cryptofeed_BINANCE_US": (480, 0, 4)}


@pytest.mark.fixtures
@pytest.mark.parametrize("name", sorted(CRYPTOFEED))
def test_cryptofeed_binance_recordings_replay_to_the_procedures_books(name: str) -> None:
    truth = cryptofeed_truth(name)
    path = shared_fixture(f"{name}.ws.1.0")  # its .http.0.0 snapshots come along
    info = inspect(path)
    frames, bad, snapshots = CRYPTOFEED[name]
    assert (info.exchange, info.frames, info.snapshots) == (
        "binance",
        frames + snapshots,
        snapshots,
    )
    assert set(info.symbols) == set(truth)
    snap = replay_to_end(path)
    status = snap.statuses["replay"]
    assert (status.messages, status.bad_messages, status.resyncs) == (frames, bad, 0)
    for symbol, (bids, asks, update_id) in truth.items():
        view = snap.markets[("replay", symbol)]
        assert (view.source, view.synced) == ("replay", True)
        assert (list(view.bids), list(view.asks), view.update_id) == (bids, asks, update_id), symbol


@pytest.mark.fixtures
def test_hftbacktest_hyperliquid_recording_replays_directly() -> None:
    path = shared_fixture("hftbacktest_hyperliquid_btc_20250126.gz")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = [line.split(" ", 1) for line in fh.read().splitlines() if line]
    frames = [(int(ns), orjson.loads(raw)) for ns, raw in lines]
    books = [f for _, f in frames if f["channel"] == "l2Book"]
    last = books[-1]["data"]
    bids = [(float(lv["px"]), float(lv["sz"])) for lv in last["levels"][0]][:20]
    asks = [(float(lv["px"]), float(lv["sz"])) for lv in last["levels"][1]][:20]
    tids = {t["tid"] for _, f in frames if f["channel"] == "trades" for t in f["data"]}
    snap = replay_to_end(path, ("BTCUSDT",))  # the user's name of HyperLiquid's BTC
    status = snap.statuses["replay"]
    assert (status.messages, status.bad_messages, len(books)) == (55, 0, 46)
    view = snap.markets[("replay", "BTCUSDT")]
    assert (list(view.bids), list(view.asks), view.update_id) == (bids, asks, last["time"])
    assert view.trades_seen == len(tids)  # trades seen twice are dropped, as live
    assert status.detail.startswith(
        "replay finished: hftbacktest_hyperliquid_btc_20250126.gz (hyperliquid)"
    )


@pytest.mark.fixtures
def test_gocryptotrader_bybit_frames_replay_without_timestamps() -> None:
    path = shared_fixture("bybit_v5_spot_orderbook50_BTCUSDT_snapshot_delta.gocryptotrader.jsonl")
    snapshot, delta = (orjson.loads(line) for line in path.read_text(encoding="utf-8").splitlines())
    bids = {float(p): float(q) for p, q in snapshot["data"]["b"]}
    asks = {float(p): float(q) for p, q in snapshot["data"]["a"]}
    for side, key in ((bids, "b"), (asks, "a")):
        for p, q in delta["data"][key]:
            if float(q):
                side[float(p)] = float(q)
            else:
                side.pop(float(p), None)
    snap = replay_to_end(path)
    view = snap.markets[("replay", "BTCUSDT")]
    assert (list(view.bids), list(view.asks), view.update_id) == (
        top(bids, 20, True), top(asks, 20, False), 2876701,
    )  # fmt: skip


# -- settings and the CLI --------------------------------------------------------------------------


def test_settings_for_a_replay(tmp_path: Path) -> None:
    path = write(tmp_path / "r.gz", [BybitStream("BTCUSDT", random.Random(5)).snapshot()])
    env = {"MARKET_EXCHANGE": "replay", "MARKET_REPLAY_FILE": str(path)}
    settings = Settings.from_env(env, None)
    assert (settings.exchanges, settings.symbols, settings.replay_speed) == (("replay",), (), 1.0)
    assert Settings.from_env({**env, "MARKET_SYMBOLS": "btcusdt"}, None).symbols == ("BTCUSDT",)
    assert Settings.from_env({**env, "MARKET_REPLAY_SPEED": "max"}, None).replay_speed == math.inf
    assert Settings.from_env({**env, "MARKET_REPLAY_SPEED": "10"}, None).replay_speed == 10.0
    refusals = {
        "MARKET_REPLAY_FILE is not set": {"MARKET_EXCHANGE": "replay"},
        "MARKET_REPLAY_FILE=": {**env, "MARKET_REPLAY_FILE": str(tmp_path / "nope.gz")},
        "replay cannot be combined": {**env, "MARKET_EXCHANGE": "replay,binance"},
        "MARKET_REPLAY_SPEED='0'": {**env, "MARKET_REPLAY_SPEED": "0"},
        "MARKET_REPLAY_SPEED='fast'": {**env, "MARKET_REPLAY_SPEED": "fast"},
    }
    for message, bad_env in refusals.items():
        with pytest.raises(SettingsError, match=message):
            Settings.from_env(bad_env, None)
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\nworld\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="not a recording of Binance, Bybit or HyperLiquid"):
        Worker(replay_settings(junk))
    with pytest.raises(SettingsError, match="replay cannot be combined"):
        Worker(Settings(exchanges=("replay", "mock"), replay_file=str(path)))


def test_watch_replay_prints_replay_lines_and_ends_with_the_recording(tmp_path: Path) -> None:
    path, streams = bybit_recording(tmp_path / "bybit.gz")
    proc = cli(
        ["watch", "--replay", str(path), "--speed", "max", "--seconds", "30", "--depth", "5"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = parse_lines(proc.stdout)
    assert [line["symbol"] for line in lines] == [
        "BTCUSDT",
        "ETHUSDT",
    ]  # over at once: the last lines
    for line in lines:
        check_line(line, depth=5)
        assert (line["exchange"], line["source"], line["status"]["state"]) == (
            "replay",
            "replay",
            "stopped",
        )
        bids, asks, _ = streams[line["symbol"]].truth(5)
        assert line["bids"] == [[p, q] for p, q in bids]
        assert line["asks"] == [[p, q] for p, q in asks]
        assert line["status"]["messages"] == 123


def test_watch_replay_at_recorded_speed_shows_progress(tmp_path: Path) -> None:
    stream = BybitStream("BTCUSDT", random.Random(6))
    path = write(
        tmp_path / "slow.gz",
        [stream.snapshot()] + [stream.delta() for _ in range(20)],
        step_ns=50_000_000,
    )
    proc = cli(["watch", "--replay", str(path), "--interval", "0.3", "--seconds", "30"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = parse_lines(proc.stdout)
    assert len(lines) >= 3  # the 1 s recording at 1×: lines while it plays, then the last one
    assert lines[0]["status"]["state"] == "live"
    assert "replay of slow.gz (bybit) at 1×: " in lines[0]["status"]["detail"]
    assert lines[-1]["status"]["state"] == "stopped"
    assert lines[-1]["bids"] == [[p, q] for p, q in stream.truth()[0]]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--replay", "{dir}/missing.gz"], ["--replay", "missing.gz"]),
        (["--replay", "{rec}", "--speed", "0"], ["--speed", "'0'"]),
        (["--replay", "{rec}", "--speed", "warp"], ["--speed", "warp"]),
        (["--replay", "{rec}", "--exchange", "binance"], ["--replay", "--exchange"]),
        (["--replay", "{rec}", "--symbols", "SOLUSDT"], ["SOLUSDT", "not in the recording"]),
        (["--replay", "{junk}"], ["junk.txt", "not a recording"]),
        (["--exchange", "replay"], ["MARKET_REPLAY_FILE"]),
        (["--exchange", "mock", "--speed", "10"], ["--speed", "replay"]),
        (["--exchange", "replay,bybit"], ["replay cannot be combined"]),
    ],
)
def test_watch_replay_refuses_bad_arguments_with_one_line(
    tmp_path: Path, args: list[str], names: list[str]
) -> None:
    rec = write(tmp_path / "rec.gz", [BybitStream("BTCUSDT", random.Random(7)).snapshot()])
    junk = tmp_path / "junk.txt"
    junk.write_text("nothing to see\n", encoding="utf-8")
    subst = {"{dir}": str(tmp_path), "{rec}": str(rec), "{junk}": str(junk)}
    argv = ["watch", "--seconds", "5"]
    for arg in args:
        for key, value in subst.items():
            arg = arg.replace(key, value)
        argv.append(arg)
    proc = cli(argv, tmp_path, timeout=15)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    for name in names:
        assert name in proc.stderr, (name, proc.stderr)
