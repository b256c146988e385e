"""Hostile and broken inputs: a clear short error or a counted skip, never a traceback, never
unbounded memory.

Settings: errors quote at most ~60 characters of a value and never a secret; a ``.env`` that
is not UTF-8 or is huge is refused naming the file (and line); bad URLs are refused naming the
variable; ``user:password@`` never reaches a log line.

Recordings (generated here at test time, nothing big is committed): a gzip bomb (1 GiB of
zeros in ~1 MB, one line with no newline), ten of them joined, a 76 MB frame, a non-integer
``lastUpdateId`` with two symbols, a 5,000-digit update id, absurd timestamps. The CLI runs
as a subprocess under a wrapper that reports its peak RSS (``RUSAGE_CHILDREN``).
"""

from __future__ import annotations

import gzip
import logging
import math
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from market.errors import SettingsError
from market.recording import (
    MAX_FRAME_BYTES,
    MAX_LINE_BYTES,
    MAX_PAUSE_S,
    Pacer,
    ReadStats,
    Recorder,
    read,
    read_file,
)
from market.redact import excerpt, redact_text, redact_url, shown
from market.settings import Settings
from market.worker import Timing, Worker
from tests.conftest import wait_for
from tests.fakes.binance import FakeBinance
from tests.helpers.cli import clean_env

T0_NS = 1_700_000_000_000_000_000
STEP_NS = 10_000_000  # 10 ms between frames
BTC, ETH = "BTCUSDT", "ETHUSDT"
RSS_LIMIT_MB = 200
SECRET = "sk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def from_env(env: dict[str, str], env_file: Path | None = None) -> Settings:
    return Settings.from_env(env, env_file=env_file)


def settings_error(env: dict[str, str], env_file: Path | None = None) -> str:
    with pytest.raises(SettingsError) as info:
        from_env(env, env_file)
    return str(info.value)


# -- settings: excerpts, secrets, .env ------------------------------------------------------------


def test_a_huge_value_is_quoted_as_a_60_character_excerpt() -> None:
    message = settings_error({"MARKET_EXCHANGE": "k" * 5_000_000})
    assert message == (
        f"MARKET_EXCHANGE={'k' * 60!r}… (5,000,000 characters): "
        "must be one of binance, bybit, hyperliquid, mock, replay"
    )
    assert excerpt("short") == "'short'"
    assert excerpt("a\nb\x00") == "'a\\nb\\x00'"  # control characters escaped, never raw


def test_a_100_mb_env_file_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    with path.open("wb") as fh:  # sparse: 100 MB on paper, nothing on disk
        fh.write(b"MARKET_EXCHANGE=")
        fh.seek(100 * 1024 * 1024)
        fh.write(b"x\n")
    assert settings_error({}, path) == f"{path}: larger than 1024 KB: not a settings file"


def test_a_long_env_value_is_quoted_as_an_excerpt(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("MARKET_FALLBACK=" + "n" * 900_000 + "\n", encoding="utf-8")
    message = settings_error({}, path)
    assert message == (
        f"MARKET_FALLBACK={'n' * 60!r}… (900,000 characters): must be one of mock, none"
    )


def test_an_env_file_that_is_not_utf8_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"MARKET_EXCHANGE=mock\n# caf\xc3\xa9 is fine\nMARKET_SYMBOLS=BTC\xff\xfe\n")
    assert settings_error({}, path) == (
        f"{path}:3: not UTF-8 text (byte 0xff at column 19); save the file as UTF-8"
    )


def test_a_bad_env_line_holding_a_key_is_never_quoted(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(f"MARKET_EXCHANGE=mock\nBINANCE_API_SECRET: {SECRET}\n", encoding="utf-8")
    message = settings_error({}, path)
    assert message == (
        f"{path}:2: expected KEY=VALUE, got a line starting BINANCE_API_SECRET "
        "(60 characters, the rest not shown)"
    )
    path.write_text(f"{SECRET}\n", encoding="utf-8")  # a key pasted on its own
    assert settings_error({}, path) == (
        f"{path}:1: expected KEY=VALUE, got a line of 40 characters "
        "(not shown: it may hold a secret)"
    )


def test_secret_variables_are_never_quoted() -> None:
    assert shown("BINANCE_API_KEY", SECRET) == "(a value, not shown: a secret)"
    assert shown("REDIS_PASSWORD", "hunter2") == "(a value, not shown: a secret)"
    assert shown("MARKET_SYMBOLS", "BTCUSDT") == "'BTCUSDT'"


# -- settings: URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        (
            "BINANCE_WS_URL",
            "wss://stream.binance.com:99999",
            "the port must be a number in 1-65535",
        ),
        ("BINANCE_WS_URL", "wss://stream.binance.com:abc", "the port must be a number in 1-65535"),
        ("BINANCE_REST_URL", "https://api.binance.com:0", "the port must be a number in 1-65535"),
        ("BYBIT_WS_URL", "wss://stream.bybit.com/v5/public/spot#x", "a base URL has no #fragment"),
        ("HYPERLIQUID_WS_URL", "wss://api.hyperliquid.xyz/ws#", "a base URL has no #fragment"),
        (
            "BYBIT_REST_URL",
            "https://api.bybit .com",
            "a space or control character in a URL (must be a http/https:// URL with a host)",
        ),
        (
            "HYPERLIQUID_REST_URL",
            "https://api.hyperliquid.xyz/\x07",
            "a space or control character in a URL (must be a http/https:// URL with a host)",
        ),
        (
            "HYPERLIQUID_REST_URL",
            "wss://api.hyperliquid.xyz",
            "must be a http/https:// URL with a host",
        ),
        ("BINANCE_WS_URL", "https://stream.binance.com", "must be a ws/wss:// URL with a host"),
    ],
)
def test_bad_urls_are_refused_naming_the_variable(name: str, value: str, reason: str) -> None:
    assert settings_error({name: value}) == f"{name}={value!r}: {reason}"


def test_a_huge_url_is_refused_with_an_excerpt() -> None:
    value = "wss://" + "a" * 3000 + ".example"
    assert settings_error({"BINANCE_WS_URL": value}) == (
        f"BINANCE_WS_URL={value[:60]!r}… (3,014 characters): longer than 2048 characters"
    )


def test_url_credentials_are_masked_in_errors_and_logs() -> None:
    message = settings_error({"BINANCE_WS_URL": "http://alice:hunter2@example.test"})
    assert (
        message == "BINANCE_WS_URL='http://***@example.test': must be a ws/wss:// URL with a host"
    )
    assert redact_url("wss://alice:hunter2@h.test:9443/ws?x=1&apiKey=k3y") == (
        "wss://***@h.test:9443/ws?x=1&apiKey=***"
    )
    assert (
        redact_url("https://api.binance.com/api/v3/depth") == "https://api.binance.com/api/v3/depth"
    )
    assert redact_text("InvalidURI: wss://bob:pw@[::1 isn't a valid URI") == (
        "InvalidURI: wss://***@[::1 isn't a valid URI"
    )


def test_the_connect_log_line_has_no_password(caplog: pytest.LogCaptureFixture) -> None:
    with FakeBinance([BTC], seed=1) as ex:
        url = ex.ws_url.replace("ws://", "ws://alice:hunter2@", 1)
        settings = from_env({"BINANCE_WS_URL": url, "BINANCE_REST_URL": ex.rest_url,
                             "MARKET_FALLBACK": "none"})  # fmt: skip
        caplog.set_level(logging.INFO, logger="market")
        worker = Worker(settings, timing=Timing(status_interval=0.05, close_timeout=0.5)).start()
        try:
            wait_for(
                lambda: any("connected to" in r.getMessage() for r in caplog.records),
                10.0,
                what="the connect log line",
            )
        finally:
            worker.stop()
    lines = [r.getMessage() for r in caplog.records]
    assert not [line for line in lines if "hunter2" in line or "alice" in line]
    host = ex.ws_url.removeprefix("ws://")
    assert f"binance: connected to ws://***@{host}/stream" in lines


# -- recordings: building hostile files ----------------------------------------------------------


def _diff(symbol: str, first: int | str, last: int | str, bid: str, qty: int) -> str:
    data = (
        f'{{"e":"depthUpdate","E":1700000000000,"s":"{symbol}","U":{first},"u":{last},'
        f'"b":[["{bid}","{qty}"]],"a":[]}}'
    )
    return f'{{"stream":"{symbol.lower()}@depth@100ms","data":{data}}}'


def binance_lines(n: int = 20, middle: list[str] | None = None) -> list[str]:
    """Two symbols, each: a diff, its REST snapshot (ours: with "symbol"), then ``n`` diffs
    setting the best bid's quantity to 1..n; ``middle`` lines go half-way through."""
    frames = [
        _diff(BTC, 101, 101, "100.0", 1),
        _diff(ETH, 5001, 5001, "10.0", 1),
        '{"lastUpdateId":100,"bids":[["100.0","1"]],"asks":[["101.0","2"]],"symbol":"BTCUSDT"}',
        '{"lastUpdateId":5000,"bids":[["10.0","3"]],"asks":[["11.0","4"]],"symbol":"ETHUSDT"}',
    ]
    lines = [f"{T0_NS + i * STEP_NS} {frame}" for i, frame in enumerate(frames)]
    at = T0_NS + len(frames) * STEP_NS
    for i in range(n):
        if i == n // 2 and middle:
            lines += middle
        lines.append(f"{at} {_diff(BTC, 102 + i, 102 + i, '100.5', i + 1)}")
        lines.append(f"{at} {_diff(ETH, 5002 + i, 5002 + i, '10.5', i + 1)}")
        at += STEP_NS
    return lines


def write_gz(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", newline="\n") as fh:
        for line in lines:
            fh.write(line + "\n")
    return path


def zeros_gzip_member(gib: int = 1) -> bytes:
    """One gzip member of ``gib`` GiB of zeros (~1 MB), built from one compressed MiB: after
    a full flush each MiB compresses to the same bytes."""
    mib = b"\0" * (1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    c.compress(mib)
    c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(mib) + c.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(1024 * gib):
        crc = zlib.crc32(mib, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    size = (gib << 30) & 0xFFFFFFFF
    return header + block * (1024 * gib) + c.flush() + struct.pack("<II", crc, size)


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    member = zeros_gzip_member()
    one, ten = folder / "zeros.gz", folder / "zeros10.gz"
    one.write_bytes(member)
    ten.write_bytes(member * 10)
    return one, ten


@pytest.fixture(scope="module")
def big_frame(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Binance recording with one 76 MB frame half-way (written in pieces)."""
    path = tmp_path_factory.mktemp("big") / "big_frame.gz"
    lines = binance_lines(20)
    with gzip.open(path, "wb", compresslevel=1) as fh:
        for i, line in enumerate(lines):
            if i == len(lines) // 2:
                head = _diff(BTC, 1, 2, "1", 1)[:-2] + ',"pad":"'
                fh.write(f"{T0_NS + 10 * STEP_NS} {head}".encode())
                piece = b"x" * (1 << 20)
                for _ in range(76):
                    fh.write(piece)
                fh.write(b'"}}\n')
            fh.write(line.encode() + b"\n")
    return path


WRAPPER = """
import json, resource, subprocess, sys
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"rc": p.returncode, "peak_mb": peak / 1024, "out": p.stdout, "err": p.stderr}))
"""


def run_cli(args: list[str], cwd: Path, timeout: float = 180.0) -> dict[str, Any]:
    """``python -m market ARGS`` in a wrapper process that reports the child's peak RSS."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, sys.executable, "-m", "market", *args],
        cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = orjson.loads(proc.stdout)
    result["seconds"] = time.monotonic() - started
    return result


def assert_clean(result: dict[str, Any], rc: int) -> list[str]:
    """Exit ``rc``, no traceback, a few short stderr lines, peak RSS under the limit."""
    err: str = result["err"]
    assert result["rc"] == rc, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    lines = err.splitlines()
    assert len(lines) <= 4, lines
    assert all(len(line) <= 300 for line in lines), lines
    assert result["peak_mb"] < RSS_LIMIT_MB, result["peak_mb"]
    return lines


def watch(path: Path, speed: str = "max", seconds: str = "60") -> list[str]:
    """The CLI line; ``seconds`` is a ceiling: a replay at max speed ends the watch itself."""
    return ["watch", "--replay", str(path), "--speed", speed, "--seconds", seconds,
            "--interval", "1"]  # fmt: skip


def last_books(stdout: str) -> dict[str, dict[str, Any]]:
    last: dict[str, dict[str, Any]] = {}
    for raw in stdout.splitlines():
        line = orjson.loads(raw)
        last[line["symbol"]] = line
    return last


def assert_books_played(stdout: str, n: int = 20) -> None:
    """Every diff of ``binance_lines(n)`` was applied: best bids at quantity n."""
    last = last_books(stdout)
    assert set(last) == {BTC, ETH}
    assert last[BTC]["bids"][0] == [100.5, n] and last[ETH]["bids"][0] == [10.5, n]
    assert last[BTC]["asks"][0] == [101.0, 2] and last[ETH]["asks"][0] == [11.0, 4]
    assert {line["source"] for line in last.values()} == {"replay"}


# -- recordings: in-process reading ----------------------------------------------------------------


def test_an_oversized_line_is_skipped_counted_and_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rec.txt"
    big = f'{T0_NS} {{"pad":"{"y" * MAX_LINE_BYTES}"}}'
    path.write_text(f'{T0_NS} {{"a":1}}\n{big}\n{T0_NS + 1000} {{"b":2}}\n', encoding="utf-8")
    stats = ReadStats()
    with caplog.at_level(logging.WARNING, logger="market.recording"):
        records = list(read_file(path, stats))
    assert [(r.received_at, r.raw) for r in records] == [
        (1_700_000_000.0, '{"a":1}'),
        (1_700_000_000.000001, '{"b":2}'),
    ]
    assert (stats.records, stats.too_long, stats.bad_time, stats.truncated) == (2, 1, 0, [])
    size = len(big) + 1
    assert caplog.messages == [
        f"{path}:2: a line of {size:,} bytes (more than {MAX_LINE_BYTES:,}); line skipped",
    ]
    caplog.clear()
    again = ReadStats()
    assert list(read([path], again)) == records  # counted again, warned once per file
    assert (again.too_long, caplog.messages) == (1, [])


def test_many_bad_lines_warn_a_few_then_a_total(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [f"{T0_NS} {{}}"] + [f"-{i} {{}}" for i in range(1000)]
    path = write_gz(tmp_path / "bad.gz", lines)
    with caplog.at_level(logging.WARNING, logger="market.recording"):
        assert len(list(read_file(path))) == 1
        assert len(list(read_file(path))) == 1
    assert caplog.messages == [
        f"{path}:2: bad receive time '-0'; line skipped",
        f"{path}:3: bad receive time '-1'; line skipped",
        f"{path}:4: bad receive time '-2'; line skipped",
        f"{path}: 1000 bad lines skipped in all",
    ]


def test_bad_receive_times_are_skipped_and_counted(tmp_path: Path) -> None:
    good = '{"e":"trade"}'
    lines = [
        f"{T0_NS} {good}",
        f"{'9' * 400} {good}",  # 400 digits
        f"-{T0_NS} {good}",  # negative
        f"{T0_NS}.5 {good}",  # not an integer
        f"{'9' * 5000}: {good}",  # cryptofeed style, 5,000 digits
        f"1e400: {good}",
        f"99999999999999999999 {good}",  # year 5138
        f"{T0_NS + STEP_NS} {good}",
        f"1700000001.25: {good}",  # cryptofeed's seconds
    ]
    path = write_gz(tmp_path / "times.gz", lines)
    stats = ReadStats()
    records = list(read_file(path, stats))
    assert [r.received_at for r in records] == [1_700_000_000.0, 1_700_000_000.01, 1_700_000_001.25]
    assert (stats.records, stats.bad_time, stats.too_long) == (3, 6, 0)


def test_a_gzip_bomb_ends_the_file_without_keeping_it(bombs: tuple[Path, Path]) -> None:
    for path in bombs:
        stats = ReadStats()
        assert list(read_file(path, stats)) == []
        assert stats.too_long == 1
        assert stats.truncated == [f"{path}: line 1 is longer than 128 MiB"]


def test_update_ids_that_are_not_ids_do_not_raise(tmp_path: Path) -> None:
    lines = binance_lines(4)
    lines += [
        f"{T0_NS + 90 * STEP_NS} " + '{"lastUpdateId":"abc","bids":[],"asks":[]}',
        f"{T0_NS + 91 * STEP_NS} " + '{"lastUpdateId":1.5,"bids":[],"asks":[]}',
        f"{T0_NS + 92 * STEP_NS} " + _diff(BTC, 1, "9" * 5000, "1", 1),
        f"{T0_NS + 93 * STEP_NS} " + '{"lastUpdateId":104,"bids":[],"asks":[]}',
    ]
    records = list(read_file(write_gz(tmp_path / "ids.gz", lines)))
    assert [r.snapshot_symbol for r in records[-4:]] == [None, None, None, BTC]


def test_the_recorder_never_writes_a_frame_the_reader_would_skip(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "rec.gz")
    rec.frame('{"a":1}', T0_NS)
    rec.frame('{"p":"' + "z" * MAX_FRAME_BYTES + '"}', T0_NS + 1)
    rec.frame('{"b":2}', T0_NS + 2)
    rec.close()
    assert (rec.frames, rec.oversized) == (2, 1)
    assert [r.raw for r in read_file(tmp_path / "rec.gz")] == ['{"a":1}', '{"b":2}']


def test_replay_pauses_are_capped() -> None:
    now = [100.0]
    pacer = Pacer(1.0, lambda: now[0])
    assert pacer.pause(1_000.0) == 0.0  # the first frame: the origin
    assert pacer.pause(1_002.0) == 2.0
    now[0] = 102.0
    assert pacer.pause(1_000_000_000.0) == MAX_PAUSE_S  # years later: one capped pause
    now[0] = 107.0
    assert pacer.pause(1_000_000_001.0) == 1.0  # then the pace of the recording again
    assert pacer.pause(999.0) == 0.0  # back in time: no pause
    fast = Pacer(10.0, lambda: now[0])
    assert (fast.pause(0.0), fast.pause(20.0), fast.pause(100.0)) == (0.0, 2.0, MAX_PAUSE_S)
    assert Pacer(math.inf, lambda: now[0]).pause(5e9) == 0.0


# -- recordings: the CLI end to end ----------------------------------------------------------------


@pytest.mark.parametrize("which", [0, 1], ids=["1GiB-zeros", "ten-joined"])
@pytest.mark.parametrize("command", ["watch", "bench"])
def test_gzip_bombs_are_refused_in_bounded_memory(
    bombs: tuple[Path, Path], which: int, command: str, tmp_path: Path
) -> None:
    path = bombs[which]
    args = watch(path) if command == "watch" else ["bench", str(path)]
    lines = assert_clean(run_cli(args, tmp_path), 2)
    assert lines[-1].startswith(f"python -m market {command}: error: {path}: not a recording")


def test_a_76_mb_frame_is_skipped_and_the_rest_replayed(big_frame: Path, tmp_path: Path) -> None:
    result = run_cli(watch(big_frame), tmp_path)
    lines = assert_clean(result, 0)
    assert [line.partition(" market.recording: ")[2] for line in lines] == [
        f"{big_frame}:23: a line of 79,691,932 bytes (more than 4,198,400); line skipped"
    ]
    assert_books_played(result["out"])
    bench = run_cli(["bench", str(big_frame), "--json", "--repeat", "1"], tmp_path)
    assert_clean(bench, 0)
    figures = orjson.loads(bench["out"])
    assert (figures["frames"], figures["snapshots"], figures["events"]) == (42, 2, 42)


def test_a_non_integer_last_update_id_with_two_symbols(tmp_path: Path) -> None:
    bad = f"{T0_NS + 11 * STEP_NS} " + '{"lastUpdateId":"12x","bids":[],"asks":[]}'
    path = write_gz(tmp_path / "ids.gz", binance_lines(20, middle=[bad]))
    result = run_cli(watch(path), tmp_path)
    assert_clean(result, 0)
    assert_books_played(result["out"])
    assert_clean(run_cli(["bench", str(path), "--repeat", "1"], tmp_path), 0)


def test_a_5000_digit_update_id(tmp_path: Path) -> None:
    huge = "9" * 5000
    bad = f"{T0_NS + 11 * STEP_NS} " + _diff(BTC, huge, huge, "1", 1)
    path = write_gz(tmp_path / "ids.gz", binance_lines(20, middle=[bad]))
    result = run_cli(watch(path), tmp_path)
    assert_clean(result, 0)
    assert_books_played(result["out"])
    assert_clean(run_cli(["bench", str(path), "--repeat", "1"], tmp_path), 0)


def test_a_400_digit_timestamp_does_not_stall_speed_1(tmp_path: Path) -> None:
    bad = [f"{'7' * 400} " + _diff(BTC, 1, 1, "1", 1), f"{'7' * 400}: " + _diff(ETH, 1, 1, "1", 1)]
    path = write_gz(tmp_path / "times.gz", binance_lines(20, middle=bad))
    result = run_cli(watch(path, speed="1", seconds="30"), tmp_path)
    lines = assert_clean(result, 0)
    assert [line.partition(" market.recording: ")[2] for line in lines] == [
        f"{path}:25: bad receive time '{'7' * 24}'; line skipped",
        f"{path}:26: bad receive time '{'7' * 24}'; line skipped",
    ]
    assert_books_played(result["out"])
    last = last_books(result["out"])
    assert last[BTC]["status"]["state"] == "stopped"  # over by itself: 0.24 s of frames
    assert result["seconds"] < 25  # not the 30 of --seconds (interpreter start included)


def test_bench_streams_a_recording_of_large_frames(tmp_path: Path) -> None:
    """80 frames just under the 4 MiB limit (320 MB of text): read as it is played, never
    held whole. (Fails while ``bench`` loads every record into a list: ~350 MB.)"""
    path = tmp_path / "large_frames.gz"
    pad = "x" * (MAX_FRAME_BYTES - 1000)
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as fh:
        fh.write(binance_lines(0)[2] + "\n")  # BTC's snapshot
        for i in range(80):
            diff = _diff(BTC, 101 + i, 101 + i, "100.5", i + 1)[:-2] + f',"pad":"{pad}"}}}}'
            fh.write(f"{T0_NS + (i + 5) * STEP_NS} {diff}\n")
    result = run_cli(watch(path, seconds="120"), tmp_path)  # ends with the replay
    assert_clean(result, 0)
    assert last_books(result["out"])[BTC]["bids"][0] == [100.5, 80]
    bench = run_cli(["bench", str(path), "--json", "--repeat", "1"], tmp_path)
    assert_clean(bench, 0)
    figures = orjson.loads(bench["out"])
    assert (figures["frames"], figures["snapshots"], figures["events"]) == (80, 1, 80)


# -- the dashboard: a failed replay start is remembered ----------------------------------------


def test_the_page_does_not_reread_a_bad_recording_on_every_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    from app.runtime import stop_workers
    from market import recording

    path = tmp_path / "bad.gz"
    write_gz(path, ['{"hello":"world"}'])  # a gzip file, but no exchange's frames
    reads: list[Path] = []
    real_init = recording._Reader.__init__

    def counting_init(self: Any, file: Path, stats: ReadStats) -> None:
        if file == path:
            reads.append(file)
        real_init(self, file, stats)

    monkeypatch.setattr(recording._Reader, "__init__", counting_init)
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("MARKET_SYMBOLS", "MARKET_REPLAY_SPEED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MARKET_EXCHANGE", "replay")
    monkeypatch.setenv("MARKET_REPLAY_FILE", str(path))
    stop_workers()
    main = str(Path(__file__).resolve().parent.parent / "app" / "main.py")
    try:
        at = AppTest.from_file(main, default_timeout=30.0).run()
        assert len(at.error) == 1
        shown_first = at.error[0].value
        assert shown_first.startswith(f"The market feed cannot start: {path}: ")
        first_reads = len(reads)
        assert first_reads >= 1
        for _ in range(3):  # page loads: the same error, the file not read again
            at = AppTest.from_file(main, default_timeout=30.0).run()
            assert [e.value for e in at.error] == [shown_first]
        assert len(reads) == first_reads
        write_gz(path, ['{"hello":"again"}', '{"still":"no frames"}'])  # the file changed
        at = AppTest.from_file(main, default_timeout=30.0).run()
        assert [e.value for e in at.error] == [shown_first]
        assert len(reads) > first_reads  # read again, once
    finally:
        stop_workers()


def test_a_huge_symbol_list_is_refused_quickly(tmp_path: Path) -> None:
    value = ",".join(f"S{i}" for i in range(120_000))  # just under the 1 MB of a .env
    path = tmp_path / ".env"
    path.write_text(f"MARKET_SYMBOLS={value}\n")
    started = time.monotonic()
    message = settings_error({}, path)
    assert time.monotonic() - started < 10  # linear: the old list dedupe took minutes
    assert message == (
        f"MARKET_SYMBOLS={value[:60]!r}… ({len(value):,} characters): "
        "120,000 symbols: at most 200 at once"
    )


def test_a_timestamp_years_ahead_pauses_at_most_max_pause(tmp_path: Path) -> None:
    """A sane-looking time in 2098 half-way: ``--speed 1`` waits ``MAX_PAUSE_S`` there, not
    75 years. (Fails until the replay paces with ``recording.Pacer``.)"""
    ahead = f"{4_070_000_000 * 10**9} " + _diff(BTC, 1, 1, "1", 1)  # u=1: an old diff, dropped
    path = write_gz(tmp_path / "ahead.gz", binance_lines(20, middle=[ahead]))
    result = run_cli(watch(path, speed="1", seconds="40"), tmp_path)
    assert_clean(result, 0)
    assert_books_played(result["out"])
    assert last_books(result["out"])[BTC]["status"]["state"] == "stopped"
    assert result["seconds"] < 35  # 0.24 s of frames + one 5 s pause + the interpreter's start
