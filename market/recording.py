"""Reading recordings of raw exchange traffic, whatever tool wrote them.

Formats understood (detected line by line, gzip or plain text):

- hftbacktest collector / ours: ``<receive time, ns since epoch> <raw frame>``; REST snapshots
  are the same but the frame is the bare REST body (``{"lastUpdateId": …}``); ours adds a
  ``"symbol"`` key to it, others are attributed to the file's only depth symbol, or to the
  symbol whose update ids the snapshot continues.
- cryptofeed's ``*.ws.*`` files: a first ``wss://… <-> <ts>`` line, then ``<ts>: <frame>``;
  ``*.http.*`` files: ``<url> -> <ts>: <body>`` (the symbol is in the URL). ``companions``
  finds the ``.http.`` file that goes with a ``.ws.`` one.
- bare frames, one JSON object a line with no time (e.g. test data extracted from other
  projects): each gets the time of the line before it (0 at the start).

Everything comes out as ``Record``s in receive-time order (several files are merged). A gzip
file cut short (a recorder killed before it could close the file) yields what it holds.

Hostile or broken files cost bounded memory and never raise: the file is read (and gzip
decompressed) in bounded lines, never whole. A line longer than ``MAX_LINE_BYTES`` is skipped
without being kept (read on in ``SKIP_CHUNK`` pieces); one longer than ``MAX_SKIP_BYTES`` (a
gzip bomb: 1 GiB of zeros in a 1 MB file) ends the reading of that file. A line whose time is
not a sane receive time (negative, not a number, a 400-digit number, past ``MAX_TIME_S``) is
skipped too. Skipped lines are counted (``ReadStats``) and warned about naming the line
number (the first few of each file, once per file version, then a total). ``Pacer`` turns
receive times into replay pauses, each at most ``MAX_PAUSE_S``.

The limits come from each venue's largest real message, with wide headroom:

- a REST book snapshot of 1,000 levels a side (the largest message there is) is ~60-80 KB;
  combined-stream ``depthUpdate`` diffs are 1-20 KB;
- a 200-level stream snapshot is ~15-20 KB (50 levels ~5 KB);
- whole-image books are a few KB; a list of every coin's mid ~20-40 KB; a trades backfill a
  few KB.

So ``MAX_FRAME_BYTES`` = 4 MiB is ~50x the largest of them, and 1/2 of the WebSocket
``max_size`` the live feeds accept (8 MiB); ``Recorder`` skips (counts) a frame over it, so a
recording never holds a line its reader refuses.
"""

from __future__ import annotations

import glob
import gzip
import heapq
import logging
import math
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 4 << 20  # one frame (see the module docstring for the venues' sizes)
MAX_LINE_BYTES = MAX_FRAME_BYTES + 4096  # + the time, or cryptofeed's URL and time
SKIP_CHUNK = 1 << 20  # an oversized line is read past in pieces this big, none kept
MAX_SKIP_BYTES = 128 << 20  # a line longer than this: not a recording; the file ends there
MAX_TIME_S = 4_102_444_800.0  # 2100-01-01: a later receive time is not a receive time
MAX_PAUSE_S = 5.0  # the longest pause a replay makes between two frames, whatever the times
WARNED_LINES = 3  # bad lines warned about one by one in each file, then a total

_NS_LINE = re.compile(r"^(\d{16,20}) (.*)$", re.S)
_CF_WS_LINE = re.compile(r"^(\d{1,12}(?:\.\d{1,12})?): (.*)$", re.S)
_CF_HTTP_LINE = re.compile(r"^(\S{1,4096}) -> (\d{1,12}(?:\.\d{1,12})?): (.*)$", re.S)
_TIMED = re.compile(r"^[-+.\d]")  # starts like a time: a bad one is a bad line, not a header


@dataclass(frozen=True, slots=True)
class Record:
    """One recorded frame. ``snapshot_symbol`` is set for REST order book snapshots."""

    received_at: float  # seconds since the epoch
    raw: str
    snapshot_symbol: str | None = None


@dataclass(slots=True)
class ReadStats:
    """What reading skipped (mutable; pass one to ``read``/``read_file`` to learn it)."""

    records: int = 0
    too_long: int = 0  # lines over MAX_LINE_BYTES
    bad_time: int = 0  # lines whose time is not a sane receive time
    truncated: list[str] = field(default_factory=list)  # files not read to the end, and why

    @property
    def skipped(self) -> int:
        return self.too_long + self.bad_time


# What was said about each file version (path, size, mtime): a replay reads its file several
# times (inspect, play, each restart) and should say what is wrong with it once.
# Guards _warned: {file version: [line numbers warned about, total said]}.
_warned_lock = threading.Lock()
_warned: dict[tuple[str, int, int], tuple[set[int], list[bool]]] = {}


class _Reader:
    """One file's bounded lines, and the warnings about what is skipped."""

    def __init__(self, path: Path, stats: ReadStats) -> None:
        self.path = path
        self.stats = stats
        self.number = 0  # line number (1-based) of the last line read
        self.skipped = 0  # lines skipped in this file
        try:
            st = path.stat()
            key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        except OSError:
            key = (str(path), -1, -1)
        with _warned_lock:
            said = _warned.get(key)
            if said is None:
                if len(_warned) >= 1024:
                    _warned.clear()
                said = _warned[key] = (set(), [False])
        self._said_lines, self._said_total = said

    def skip(self, reason: str) -> None:
        self.skipped += 1
        if self.skipped <= WARNED_LINES:
            with _warned_lock:
                new = self.number not in self._said_lines
                self._said_lines.add(self.number)
            if new:
                log.warning("%s:%d: %s; line skipped", self.path, self.number, reason)

    def lines(self) -> Iterator[str]:
        """Lines as text (bad UTF-8 replaced), without their line end; empty lines dropped."""
        path = self.path
        with path.open("rb") as fh:
            magic = fh.read(2)
        try:
            if magic == b"\x1f\x8b":
                with gzip.open(path, "rb") as gz:
                    yield from self._lines(gz.readline)
            else:
                with path.open("rb") as fh:
                    yield from self._lines(fh.readline)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:  # cut short: keep what it holds
            log.warning("%s: the recording ends early (%s); replaying what it holds", path, exc)
        # the end of the file (not a reader that stopped early): the total, once
        if self.skipped > WARNED_LINES:
            with _warned_lock:
                new = not self._said_total[0]
                self._said_total[0] = True
            if new:
                log.warning("%s: %d bad lines skipped in all", path, self.skipped)

    def _lines(self, readline: Callable[[int], bytes]) -> Iterator[str]:
        # "\n" only ends a line: a frame is one line whatever "\r" it holds
        while True:
            line = readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            self.number += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                size = len(line)
                del line  # never kept: read past the rest in pieces
                while True:
                    chunk = readline(SKIP_CHUNK)
                    size += len(chunk)
                    if not chunk or chunk.endswith(b"\n"):
                        break
                    if size > MAX_SKIP_BYTES:
                        why = f"line {self.number} is longer than {MAX_SKIP_BYTES >> 20} MiB"
                        self.stats.too_long += 1
                        self.stats.truncated.append(f"{self.path}: {why}")
                        with _warned_lock:
                            new = -self.number not in self._said_lines
                            self._said_lines.add(-self.number)
                        if new:
                            log.warning(
                                "%s: %s: not a recording; the rest is not read", self.path, why
                            )
                        return
                self.stats.too_long += 1
                self.skip(f"a line of {size:,} bytes (more than {MAX_LINE_BYTES:,})")
                continue
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if text:
                yield text


def companions(path: str | Path) -> list[Path]:
    """``path`` and the files recorded with it: cryptofeed's ``X.ws.1.0`` comes with
    ``X.http.*`` (its REST snapshots). Other recordings are one file."""
    path = Path(path)
    prefix, sep, _ = path.name.partition(".ws.")
    if not sep:
        return [path]
    return [path, *sorted(path.parent.glob(f"{glob.escape(prefix)}.http.*"))]


def _time(text: str) -> float | None:
    """Seconds since the epoch from a recorded time; None when it is not a sane one."""
    try:
        at = float(text)
    except ValueError:
        return None
    return at if 0.0 <= at <= MAX_TIME_S else None


def read_file(path: str | Path, stats: ReadStats | None = None) -> Iterator[Record]:
    """The records of one file, in file order, with snapshots attributed to a symbol; bad
    lines are skipped and counted in ``stats``."""
    stats = ReadStats() if stats is None else stats
    reader = _Reader(Path(path), stats)
    last_ids: dict[str, int] = {}  # symbol → last depth update id seen (to place bare snapshots)
    at = 0.0
    for line in reader.lines():
        m = _NS_LINE.match(line) if line[0].isdigit() else None
        if m:
            line_at = int(m.group(1)) / 1e9
            if line_at > MAX_TIME_S:
                stats.bad_time += 1
                reader.skip(f"bad receive time {m.group(1)[:24]!r}")
                continue
            at, raw = line_at, m.group(2)
        elif line[0] in "{[":
            raw = line  # a bare frame: the time of the line before
        else:
            m = _CF_HTTP_LINE.match(line)
            if m and "://" in m.group(1):
                http_at = _time(m.group(2))
                if http_at is None:
                    stats.bad_time += 1
                    reader.skip(f"bad receive time {m.group(2)[:24]!r}")
                    continue
                query = parse_qs(urlsplit(m.group(1)).query)
                symbol = (query.get("symbol") or query.get("coin") or [""])[0].upper() or None
                at = http_at
                stats.records += 1
                yield Record(at, m.group(3), symbol)
                continue
            m = _CF_WS_LINE.match(line)
            ws_at = None if m is None else _time(m.group(1))
            if m is None or ws_at is None:
                if m is not None or _TIMED.match(line):
                    stats.bad_time += 1
                    reader.skip(f"bad receive time {line.partition(' ')[0][:24]!r}")
                continue  # otherwise a header line such as cryptofeed's "wss://… <-> <ts>"
            at, raw = ws_at, m.group(2)
        stats.records += 1
        if _is_rest_snapshot(raw):
            yield Record(at, raw, _snapshot_symbol(raw, last_ids))
            continue
        _note_ids(raw, last_ids)
        yield Record(at, raw)


def read(paths: Iterable[str | Path], stats: ReadStats | None = None) -> Iterator[Record]:
    """Records of several files merged by receive time (e.g. cryptofeed's ws + http pair)."""
    return heapq.merge(*(read_file(p, stats) for p in paths), key=lambda r: r.received_at)


class Pacer:
    """When each frame of a replay at ``speed`` is due: ``pause(received_at)`` is how long to
    sleep before handling it, never more than ``max_pause`` (a gap in the recording, or a
    time far off, is played as a ``max_pause`` pause and the clock moves on from there).
    ``speed`` inf: never a pause."""

    def __init__(
        self, speed: float, clock: Callable[[], float], max_pause: float = MAX_PAUSE_S
    ) -> None:
        self.speed = speed
        self.clock = clock
        self.max_pause = max_pause
        self._origin: tuple[float, float] | None = None  # (wall time, record time) of a frame

    def pause(self, received_at: float) -> float:
        if math.isinf(self.speed) or not math.isfinite(received_at):
            return 0.0
        now = self.clock()
        if self._origin is None:
            self._origin = (now, received_at)
            return 0.0
        wall, first = self._origin
        wait = wall + (received_at - first) / self.speed - now
        if wait > self.max_pause:  # start over from this frame, due max_pause from now
            self._origin = (now + self.max_pause, received_at)
            return self.max_pause
        return max(0.0, wait)


def _is_rest_snapshot(raw: str) -> bool:
    head = raw[:200]
    return head.startswith("{") and '"lastUpdateId"' in head and '"stream"' not in head


_DEPTH_SYMBOL = re.compile(r'"s":\s*"([^"]+)"')
_DEPTH_LAST_ID = re.compile(r'"u":\s*(\d{1,19})\b')  # an id, not a 5,000-digit number


def _note_ids(raw: str, last_ids: dict[str, int]) -> None:
    """Remember each symbol's last diff id (a regex, not a second JSON decode of each frame);
    a frame it cannot read stays in the recording and the replay counts it as bad."""
    if "depthUpdate" not in raw:
        return
    symbol = _DEPTH_SYMBOL.search(raw)
    last_id = _DEPTH_LAST_ID.search(raw)
    if symbol is not None and last_id is not None:
        last_ids[symbol.group(1).upper()] = int(last_id.group(1))


def _snapshot_symbol(raw: str, last_ids: dict[str, int]) -> str | None:
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if isinstance(msg, dict) and isinstance(msg.get("symbol"), str):
        return str(msg["symbol"]).upper()
    if len(last_ids) == 1:
        return next(iter(last_ids))
    if not last_ids or not isinstance(msg, dict):
        return None
    # update ids are per symbol and far apart: the nearest sequence is the owner
    update_id = msg.get("lastUpdateId")
    if type(update_id) is not int:  # "abc", 1.5, a bool: not a snapshot to place
        return None
    return min(last_ids, key=lambda s: abs(last_ids[s] - update_id))


def _size(raw: str | bytes) -> int:
    return len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "replace"))


class Recorder:
    """Writes frames as received, gzip text, ``<ns since epoch> <raw frame>`` a line
    (the hftbacktest collector's format). REST snapshots are written the same way, their
    bare JSON body with a ``"symbol"`` key added so a multi-symbol file replays unambiguously.
    Only the worker's loop thread writes; ``close()`` flushes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh = gzip.open(  # noqa: SIM115 - open for the recorder's life, closed by close()
            self.path, "wt", encoding="utf-8", compresslevel=5, newline="\n"
        )
        self.frames = 0  # every line written, snapshots included
        self.snapshots = 0
        self.oversized = 0  # frames over MAX_FRAME_BYTES, not written

    def frame(self, raw: str | bytes, received_ns: int) -> None:
        if len(raw) > MAX_FRAME_BYTES // 4 and _size(raw) > MAX_FRAME_BYTES:
            # the reader would skip it: counted, not written
            self.oversized += 1
            return
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if "\n" in text or "\r" in text:  # JSON whitespace only: a frame stays one line
            text = text.replace("\r", " ").replace("\n", " ")
        self._fh.write(f"{received_ns} {text}\n")
        self.frames += 1

    def snapshot(self, body: bytes | str, symbol: str, received_ns: int) -> None:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if isinstance(payload, dict):
            payload["symbol"] = symbol
            self.frame(orjson.dumps(payload), received_ns)
            self.snapshots += 1

    def flush(self) -> None:
        if not self._fh.closed:
            self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
