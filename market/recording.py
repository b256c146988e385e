"""Reading recordings of raw exchange traffic, whatever tool wrote them.

Formats understood (detected line by line, gzip or plain text):

- hftbacktest collector / ours: ``<receive time, ns since epoch> <raw frame>``; REST snapshots
  are the same but the frame is the bare REST body (``{"lastUpdateId": …}``); ours adds a
  ``"symbol"`` key to it, others are attributed to the file's only depth symbol, or to the
  symbol whose update ids the snapshot continues.
- cryptofeed's ``*.ws.*`` files: a first ``wss://… <-> <ts>`` line, then ``<ts>: <frame>``;
  ``*.http.*`` files: ``<url> -> <ts>: <body>`` (the symbol is in the URL).

Everything comes out as ``Record``s in receive-time order (several files are merged).
"""

from __future__ import annotations

import gzip
import heapq
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson

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
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:  # type: ignore[operator]
        for line in fh:
            line = line.rstrip("\r\n")
            if line:
                yield line


def read_file(path: str | Path) -> Iterator[Record]:
    """The records of one file, in file order, with snapshots attributed to a symbol."""
    last_ids: dict[str, int] = {}  # symbol → last depth update id seen (to place bare snapshots)
    for line in _open_text(Path(path)):
        m = _NS_LINE.match(line)
        if m:
            at, raw = int(m.group(1)) / 1e9, m.group(2)
        else:
            m = _CF_HTTP_LINE.match(line)
            if m and "://" in m.group(1):
                query = parse_qs(urlsplit(m.group(1)).query)
                symbol = (query.get("symbol") or query.get("coin") or [""])[0].upper() or None
                yield Record(float(m.group(2)), m.group(3), symbol)
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


def _note_ids(raw: str, last_ids: dict[str, int]) -> None:
    if "depthUpdate" not in raw:
        return
    try:
        msg = orjson.loads(raw)
        data = msg.get("data", msg)
        last_ids[str(data["s"]).upper()] = int(data["u"])
    except Exception:  # a bad frame stays in the recording; the replay counts it
        return


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
        self._fh = gzip.open(self.path, "wt", encoding="utf-8", compresslevel=5)
        self.frames = 0

    def frame(self, raw: str | bytes, received_ns: int) -> None:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        self._fh.write(f"{received_ns} {text.replace(chr(10), ' ')}\n")
        self.frames += 1

    def snapshot(self, body: bytes, symbol: str, received_ns: int) -> None:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if isinstance(payload, dict):
            payload["symbol"] = symbol
            self.frame(orjson.dumps(payload), received_ns)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
