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
"""

from __future__ import annotations

import glob
import gzip
import heapq
import logging
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson

log = logging.getLogger(__name__)

_NS_LINE = re.compile(r"^(\d{16,20}) (.*)$", re.S)
_CF_WS_LINE = re.compile(r"^(\d+(?:\.\d+)?): (.*)$", re.S)
_CF_HTTP_LINE = re.compile(r"^(\S+) -> (\d+(?:\.\d+)?): (.*)$", re.S)


@dataclass(frozen=True, slots=True)
class Record:
    """One recorded frame. ``snapshot_symbol`` is set for REST order book snapshots."""

    received_at: float  # seconds since the epoch
    raw: str
    snapshot_symbol: str | None = None


def _open_text(path: Path) -> Iterator[str]:
    with path.open("rb") as fh:
        magic = fh.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    # newline="\n": a frame is one line whatever "\r" it holds (no universal newlines)
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="\n") as fh:
        try:
            for line in fh:
                line = line.rstrip("\r\n")
                if line:
                    yield line
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:  # cut short: keep what it holds
            log.warning("%s: the recording ends early (%s); replaying what it holds", path, exc)


def companions(path: str | Path) -> list[Path]:
    """``path`` and the files recorded with it: cryptofeed's ``X.ws.1.0`` comes with
    ``X.http.*`` (its REST snapshots). Other recordings are one file."""
    path = Path(path)
    prefix, sep, _ = path.name.partition(".ws.")
    if not sep:
        return [path]
    return [path, *sorted(path.parent.glob(f"{glob.escape(prefix)}.http.*"))]


def read_file(path: str | Path) -> Iterator[Record]:
    """The records of one file, in file order, with snapshots attributed to a symbol."""
    last_ids: dict[str, int] = {}  # symbol → last depth update id seen (to place bare snapshots)
    at = 0.0
    for line in _open_text(Path(path)):
        m = _NS_LINE.match(line)
        if m:
            at, raw = int(m.group(1)) / 1e9, m.group(2)
        elif line[0] in "{[":
            raw = line  # a bare frame: the time of the line before
        else:
            m = _CF_HTTP_LINE.match(line)
            if m and "://" in m.group(1):
                query = parse_qs(urlsplit(m.group(1)).query)
                symbol = (query.get("symbol") or query.get("coin") or [""])[0].upper() or None
                at = float(m.group(2))
                yield Record(at, m.group(3), symbol)
                continue
            m = _CF_WS_LINE.match(line)
            if not m:
                continue  # a header line such as cryptofeed's "wss://… <-> <ts>"
            at, raw = float(m.group(1)), m.group(2)
        if _is_rest_snapshot(raw):
            yield Record(at, raw, _snapshot_symbol(raw, last_ids))
            continue
        _note_ids(raw, last_ids)
        yield Record(at, raw)


def read(paths: Iterable[str | Path]) -> Iterator[Record]:
    """Records of several files merged by receive time (e.g. cryptofeed's ws + http pair)."""
    return heapq.merge(*(read_file(p) for p in paths), key=lambda r: r.received_at)


def _is_rest_snapshot(raw: str) -> bool:
    head = raw[:200]
    return head.startswith("{") and '"lastUpdateId"' in head and '"stream"' not in head


_DEPTH_SYMBOL = re.compile(r'"s":\s*"([^"]+)"')
_DEPTH_LAST_ID = re.compile(r'"u":\s*(\d+)')


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
    update_id = int(msg.get("lastUpdateId", 0))
    return min(last_ids, key=lambda s: abs(last_ids[s] - update_id))


def detect_exchange(records: Iterable[Record], probe: int = 50) -> str | None:
    """Which exchange a recording came from, by the shape of its first frames."""
    for i, record in enumerate(records):
        if i >= probe:
            break
        head = record.raw[:40]
        if record.snapshot_symbol is not None or '"stream"' in head or '"e":"' in head:
            return "binance"
        if '"topic"' in head or '"op"' in head:
            return "bybit"
        if '"channel"' in head or record.raw.startswith("Websocket connection"):
            return "hyperliquid"
    return None


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

    def frame(self, raw: str | bytes, received_ns: int) -> None:
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
