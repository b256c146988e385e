"""Recording: the real worker records the loopback fake Binance; the file replays to the book
the exchange had.

``Recorder`` writes ``<receive ns> <raw frame>`` gzip lines (the hftbacktest collector's
format) with the REST snapshots inline as bare JSON carrying a ``"symbol"`` key; the worker
writes each line when it handles the frame, so the file holds exactly the pipeline's input in
its order, and a replay at max speed ends on the same books, update ids and counters.
"""

from __future__ import annotations

import gzip
import math
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from market.recording import Record, Recorder, read, read_file
from market.settings import Settings
from market.views import StoreSnapshot
from market.worker import Timing, Worker
from tests.conftest import wait_for
from tests.fakes.binance import FakeBinance
from tests.helpers.cli import check_line, clean_env, cli, parse_lines

BTC, ETH = "BTCUSDT", "ETHUSDT"
FAST = Timing(
    backoff_initial=0.05, backoff_cap=0.4, backoff_jitter=0.0, status_interval=0.05,
    snapshot_retry_initial=0.05, snapshot_retry_cap=0.4, snapshot_too_old_retry=0.05,
    resync_calm=1.0, close_timeout=0.5,
)  # fmt: skip
NS_LINE = re.compile(r"^(\d{19}) (\{.*\})$")


def live_settings(ex: FakeBinance, symbols: tuple[str, ...]) -> Settings:
    return Settings(
        exchanges=("binance",), symbols=symbols, fallback="none", connection_timeout=5.0,
    ).with_urls(BINANCE_WS_URL=ex.ws_url, BINANCE_REST_URL=ex.rest_url)


def matches(ex: FakeBinance, snap: StoreSnapshot, exchange: str, symbol: str) -> bool:
    bids, asks, update_id = ex.truth(symbol)
    view = snap.markets.get((exchange, symbol))
    return (
        view is not None and view.synced and view.update_id == update_id
        and list(view.bids) == bids and list(view.asks) == asks
    )  # fmt: skip


def replay_to_end(path: Path, symbols: tuple[str, ...] = ()) -> StoreSnapshot:
    """Replay ``path`` at max speed in a real Worker; the store once the replay is over."""
    worker = Worker(
        Settings(
            exchanges=("replay",), symbols=symbols, replay_file=str(path), replay_speed=math.inf
        ),
        timing=FAST,
    ).start()
    try:

        def over() -> StoreSnapshot | None:
            snap = worker.store.snapshot(series=False)
            status = snap.statuses.get("replay")
            return snap if status is not None and status.state == "stopped" else None

        return wait_for(over, 10.0, what="the replay to finish")
    finally:
        worker.stop()


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance([BTC, ETH], seed=11) as ex:
        yield ex


def test_a_recording_of_the_fake_exchange_replays_to_its_exact_books(
    fake: FakeBinance, tmp_path: Path
) -> None:
    path = tmp_path / "binance.gz"
    recorder = Recorder(path)
    worker = Worker(live_settings(fake, (BTC, ETH)), timing=FAST)
    worker.recorder = recorder
    worker.start()
    try:
        wait_for(
            lambda: (
                all(fake.snapshot_requests[s] == 1 for s in (BTC, ETH))
                and all(
                    matches(fake, worker.store.snapshot(series=False), "binance", s)
                    for s in (BTC, ETH)
                )
            ),
            what="both books synced",
        )
        for _ in range(20):
            fake.tick(3)
        fake.trade(BTC, "100.25000000", "0.50000000", buyer_is_maker=True)
        fake.skip(2, BTC)  # a gap: the worker fetches a second BTC snapshot, recorded inline
        fake.tick(2)
        wait_for(lambda: fake.snapshot_requests[BTC] == 2, what="the BTC resync snapshot")

        def settled() -> bool:
            snap = worker.store.snapshot(series=False)
            if all(matches(fake, snap, "binance", s) for s in (BTC, ETH)):
                return True
            fake.tick(1)  # keep the stream moving until the resynced book catches up
            return False

        wait_for(settled, 5.0, interval=0.05, what="books == truth after the resync")
        live = worker.store.snapshot(series=False)
        live_status = wait_for(
            lambda: (
                (s := worker.store.snapshot(series=False).statuses["binance"]).messages
                == recorder.frames - recorder.snapshots
                and s
            ),
            what="the status to count every frame",
        )
    finally:
        worker.stop()
        recorder.close()
    truth = {s: fake.truth(s) for s in (BTC, ETH)}

    # the file: one `<19-digit ns> <frame>` line per frame received, the 3 snapshots inline
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    assert len(lines) == recorder.frames == live_status.messages + 3
    stamps = []
    for line in lines:
        m = NS_LINE.match(line)
        assert m, line[:80]
        stamps.append(int(m.group(1)))
    assert stamps == sorted(stamps)
    snapshots = [
        orjson.loads(line.split(" ", 1)[1]) for line in lines if '"lastUpdateId"' in line[:60]
    ]
    assert [s["symbol"] for s in snapshots].count(BTC) == 2
    assert [s["symbol"] for s in snapshots].count(ETH) == 1
    assert recorder.snapshots == 3
    records = list(read_file(path))
    assert [r.snapshot_symbol for r in records if r.snapshot_symbol] == [
        s["symbol"] for s in snapshots
    ]

    # the replay at max speed ends on the exchange's books, with the same counters
    snap = replay_to_end(path)
    status = snap.statuses["replay"]
    assert (status.state, status.source) == ("stopped", "replay")
    assert status.detail.startswith("replay finished: binance.gz (binance)")
    assert (status.messages, status.bad_messages, status.resyncs) == (live_status.messages, 0, 1)
    assert status.resyncs == live_status.resyncs
    for symbol in (BTC, ETH):
        view = snap.markets[("replay", symbol)]
        bids, asks, update_id = truth[symbol]
        assert view.source == "replay" and view.synced
        assert (list(view.bids), list(view.asks), view.update_id) == (bids, asks, update_id)
        assert view.book_updates == live.markets[("binance", symbol)].book_updates
    btc = snap.markets[("replay", BTC)]
    assert btc.trades_seen == 1
    assert [(t.price, t.qty, t.side) for t in btc.trades] == [(100.25, 0.5, "sell")]


def test_recorder_lines_and_reading_them_back(tmp_path: Path) -> None:
    path = tmp_path / "r.gz"
    rec = Recorder(path)
    rec.frame('{"a":\r\n1}', 1_700_000_000_123_456_789)  # JSON whitespace: still one line
    rec.frame(b'{"b":2}', 1_700_000_000_223_456_789)
    rec.snapshot(
        b'{"lastUpdateId":7,"bids":[["1.0","2.0"]],"asks":[]}', "BTCUSDT", 1_700_000_000_323_456_789
    )
    rec.snapshot(b"not json", "BTCUSDT", 1_700_000_000_423_456_789)  # nothing to replay: skipped
    rec.close()
    rec.close()  # idempotent
    with gzip.open(path, "rb") as fh:
        assert fh.read() == (
            b'1700000000123456789 {"a":  1}\n'
            b'1700000000223456789 {"b":2}\n'
            b'1700000000323456789 {"lastUpdateId":7,"bids":[["1.0","2.0"]],"asks":[],'
            b'"symbol":"BTCUSDT"}\n'
        )
    assert (rec.frames, rec.snapshots) == (3, 1)
    assert list(read_file(path)) == [
        Record(1_700_000_000_123_456_789 / 1e9, '{"a":  1}'),
        Record(1_700_000_000_223_456_789 / 1e9, '{"b":2}'),
        Record(
            1_700_000_000_323_456_789 / 1e9,
            '{"lastUpdateId":7,"bids":[["1.0","2.0"]],"asks":[],"symbol":"BTCUSDT"}',
            "BTCUSDT",
        ),
    ]  # fmt: skip


def test_a_recording_cut_short_yields_what_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    rec = Recorder(path)
    written = [f'{{"n":{i},"pad":"{"x" * 50}"}}' for i in range(3000)]
    for i, raw in enumerate(written):
        rec.frame(raw, 1_700_000_000_000_000_000 + i)
    rec.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a recorder killed mid-write
    records = list(read_file(path))
    assert 0 < len(records) < len(written)
    assert [r.raw for r in records] == written[: len(records)]


def test_bare_snapshots_are_attributed_by_symbol_or_update_ids(tmp_path: Path) -> None:
    """hftbacktest's Binance collector writes the REST body as it is (no symbol): it belongs to
    the symbol whose diff ids it continues."""
    lines = [
        '1700000000000000000 {"stream":"aaausdt@depth@100ms","data":{"e":"depthUpdate","E":1,'
        '"s":"AAAUSDT","U":10,"u":12,"b":[],"a":[]}}',
        '1700000000100000000 {"stream":"bbbusdt@depth@100ms","data":{"e":"depthUpdate","E":1,'
        '"s":"BBBUSDT","U":900000,"u":900004,"b":[],"a":[]}}',
        '1700000000200000000 {"lastUpdateId":900002,"bids":[],"asks":[]}',
        '1700000000300000000 {"lastUpdateId":11,"bids":[],"asks":[]}',
        '1700000000400000000 {"lastUpdateId":5,"bids":[],"asks":[],"symbol":"cccusdt"}',
        "not a frame at all",
        '{"bare":"frame"}',
    ]
    path = tmp_path / "hft.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    records = list(read_file(path))
    assert [(r.received_at, r.snapshot_symbol) for r in records] == [
        (1_700_000_000.0, None), (1_700_000_000.1, None), (1_700_000_000.2, "BBBUSDT"),
        (1_700_000_000.3, "AAAUSDT"), (1_700_000_000.4, "CCCUSDT"),
        (1_700_000_000.4, None),  # a bare frame: the time of the line before
    ]  # fmt: skip
    assert list(read([path])) == records


# -- the CLI ------------------------------------------------------------------------------------


def test_record_cli_then_replay_cli_ends_on_the_exchange_book(tmp_path: Path) -> None:
    out = tmp_path / "rec.gz"
    with FakeBinance([BTC, ETH], seed=5) as ex:
        proc = subprocess.Popen(
            [sys.executable, "-m", "market", "record", "--exchange", "binance", "--symbols",
             "btcusdt,ETHUSDT", "--out", str(out), "--seconds", "4"],
            cwd=tmp_path, env=clean_env(BINANCE_WS_URL=ex.ws_url, BINANCE_REST_URL=ex.rest_url),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            started = time.monotonic()
            wait_for(
                lambda: all(ex.snapshot_requests[s] == 1 for s in (BTC, ETH)), 5.0, what="snapshots"
            )
            n_ticks = 0
            while time.monotonic() < started + 2.0:  # the exchange moves; then 2 s of quiet
                ex.tick(2)
                n_ticks += 1
                time.sleep(0.02)  # pacing the exchange, not synchronisation
            stdout, stderr = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        truth = {s: ex.truth(s) for s in (BTC, ETH)}
    assert proc.returncode == 0, stderr
    summary = orjson.loads(stdout)
    assert summary["out"] == str(out) and summary["exchange"] == "binance"
    assert summary["symbols"] == [BTC, ETH]
    assert summary["snapshots"] == 2
    assert summary["frames"] == summary["status"]["messages"] + 2 == 2 * 2 * n_ticks + 2
    assert summary["status"]["bad_messages"] == 0

    replayed = cli(["watch", "--replay", str(out), "--speed", "max", "--seconds", "20"], tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    lines = parse_lines(replayed.stdout)
    last = {line["symbol"]: line for line in lines[-2:]}
    assert set(last) == {BTC, ETH}
    for line in lines:
        check_line(line)
        assert (line["exchange"], line["source"]) == ("replay", "replay")
    for symbol, (bids, asks, _) in truth.items():
        line = last[symbol]
        assert line["bids"] == [[p, q] for p, q in bids]
        assert line["asks"] == [[p, q] for p, q in asks]
        assert line["status"]["state"] == "stopped"
        assert line["status"]["detail"].startswith("replay finished: rec.gz (binance)")
        assert line["status"]["messages"] == summary["status"]["messages"]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--exchange", "mock", "--out", "{out}"], ["mock", "record takes one of"]),
        (
            ["--exchange", "binance,bybit", "--out", "{out}"],
            ["binance,bybit", "record takes one of"],
        ),
        (["--exchange", "replay", "--out", "{out}"], ["replay", "record takes one of"]),
        (["--exchange", "binance", "--symbols", "BTC$", "--out", "{out}"], ["--symbols", "BTC$"]),
        (["--exchange", "binance", "--seconds", "0", "--out", "{out}"], ["--seconds"]),
        (
            ["--exchange", "binance", "--out", "/nonexistent/dir/x.gz"],
            ["--out", "/nonexistent/dir"],
        ),
        (["--exchange", "binance"], ["--out", "required"]),
    ],
)
def test_record_refuses_bad_arguments_with_one_line(
    tmp_path: Path, args: list[str], names: list[str]
) -> None:
    argv = ["record", *(a.replace("{out}", str(tmp_path / "x.gz")) for a in args)]
    proc = cli(argv, tmp_path, timeout=15)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    for name in names:
        assert name in proc.stderr, (name, proc.stderr)
    assert not (tmp_path / "x.gz").exists()


def test_a_bybit_recording_with_a_gap_replays_to_the_exchange_books(tmp_path: Path) -> None:
    """Bybit sends its books on the stream: the resubscription after a gap brings a snapshot
    that is recorded like any frame, and the replay heals from it the same way."""
    from tests.fakes.bybit import FakeBybit

    path = tmp_path / "bybit.gz"
    recorder = Recorder(path)
    symbols = (BTC, ETH)
    with FakeBybit(symbols, seed=4) as ex:
        settings = Settings(
            exchanges=("bybit",), symbols=symbols, fallback="none", connection_timeout=5.0,
        ).with_urls(BYBIT_WS_URL=ex.ws_url)
        worker = Worker(settings, timing=FAST)
        worker.recorder = recorder
        worker.start()
        try:

            def exact() -> bool:
                snap = worker.store.snapshot(series=False)
                for s in symbols:
                    bids, asks, u = ex.truth(s)
                    v = snap.markets.get(("bybit", s))
                    if not (v and v.synced and v.update_id == u and list(v.bids) == bids):
                        return False
                    if list(v.asks) != asks:
                        return False
                return True

            wait_for(exact, what="both books from their snapshots")
            ex.tick(30)
            ex.skip(2, BTC)  # a gap in u: the worker resubscribes, Bybit sends a new snapshot
            ex.tick(5)

            def healed() -> bool:
                if exact() and worker.store.snapshot(series=False).statuses["bybit"].resyncs:
                    return True
                ex.tick(1)
                return False

            wait_for(healed, 5.0, interval=0.05, what="the BTC book healed after the gap")
            live = wait_for(
                lambda: (
                    (s := worker.store.snapshot(series=False).statuses["bybit"]).messages
                    == recorder.frames
                    and s
                ),
                what="every frame counted",
            )
        finally:
            worker.stop()
            recorder.close()
        truth = {s: ex.truth(s) for s in symbols}
    snap = replay_to_end(path)
    status = snap.statuses["replay"]
    assert status.detail.startswith("replay finished: bybit.gz (bybit)")
    assert (status.messages, status.bad_messages) == (live.messages, 0)
    assert status.resyncs == live.resyncs == 1
    for symbol in symbols:
        view = snap.markets[("replay", symbol)]
        bids, asks, u = truth[symbol]
        assert (list(view.bids), list(view.asks), view.update_id) == (bids, asks, u), symbol


def test_record_of_a_refusing_exchange_says_so_and_exits_1(tmp_path: Path) -> None:
    out = tmp_path / "none.gz"
    with FakeBinance([BTC]) as ex:
        ex.refuse(451)
        env = clean_env(BINANCE_WS_URL=ex.ws_url, BINANCE_REST_URL=ex.rest_url)
        proc = subprocess.run(
            [sys.executable, "-m", "market", "record", "--exchange", "binance", "--symbols", BTC,
             "--out", str(out), "--seconds", "1.5"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=20,
        )  # fmt: skip
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    summary = orjson.loads(proc.stdout)
    assert (summary["frames"], summary["snapshots"]) == (0, 0)
    assert summary["status"]["state"] == "blocked"
    # the worker's own warning (logging) may come first; the last line says why
    assert proc.stderr.splitlines()[-1].startswith(
        "python -m market record: nothing recorded: HTTP 451"
    )
    assert list(read_file(out)) == []  # an empty, valid recording
