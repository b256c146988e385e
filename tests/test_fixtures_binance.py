"""Conformance: replay real Binance / Binance.US recordings through the parser and SnapshotSync.

The recordings live in ../shared/fixtures (see its README; never copied into this repository)
and these tests skip where that folder is absent.

    ws file    first line ``wss://… <-> <connect ts>``, then ``<receive ts>: <frame>``
    http file  ``<url> -> <receive ts>: <body>`` (the REST depth snapshots)

The check of the rebuilt books is Binance's own: a ``bookTicker`` frame carries the update id
``u`` of the book it describes. bookTicker is pushed in real time while depth diffs are batched
every 100 ms, so a ticker usually arrives *before* the diff that brings the book to its id; each
ticker is therefore compared with the book at the moment the book's update id equals its ``u``
(tickers whose id falls inside a diff's range, or before the snapshot, cannot be compared).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from market.book import OrderBook
from market.errors import BadMessage
from market.events import BookDelta, BookSnapshot
from market.sync import SnapshotSync
from market.venues import binance
from tests.conftest import shared_fixture

pytestmark = pytest.mark.fixtures

RECORDINGS = {
    # name: (REST base, the counts stated by the fixtures README)
    "cryptofeed_BINANCE": (
        "https://api.binance.com",
        {"depthUpdate": 177, "bookTicker": 84, "aggTrade": 2, "kline": 2, "snapshots": 4},
    ),
    "cryptofeed_BINANCE_US": (
        "https://api.binance.us",
        {"depthUpdate": 336, "bookTicker": 128, "aggTrade": 11, "kline": 5, "snapshots": 4},
    ),
}
PER_SYMBOL_DIFFS = {"NKNUSDT": 150, "LRCBTC": 15, "BLZETH": 10, "RUNEEUR": 2}  # README, BINANCE


@dataclass
class Recording:
    url: str
    connected_at: float
    frames: list[tuple[float, str]]  # (receive ts, raw frame)
    snapshots: list[tuple[str, float, str]]  # (url, receive ts, body)


def read_recording(name: str) -> Recording:
    ws_path = shared_fixture(f"{name}.ws.1.0")
    http_path = shared_fixture(f"{name}.http.0.0")
    lines = ws_path.read_text(encoding="utf-8").splitlines()
    url, sep, connected = lines[0].rpartition(" <-> ")
    assert sep and url.startswith("wss://"), lines[0][:80]
    frames = []
    for line in lines[1:]:
        if not line.strip():
            continue
        ts, sep, raw = line.partition(": ")
        assert sep, line[:80]
        frames.append((float(ts), raw))
    snapshots = []
    for line in http_path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        snap_url, sep, rest = line.partition(" -> ")
        ts, sep2, body = rest.partition(": ")
        assert sep and sep2, line[:80]
        snapshots.append((snap_url, float(ts), body))
    return Recording(url, float(connected), frames, snapshots)


def symbol_of(url: str) -> str:
    query = url.split("?", 1)[1]
    params = dict(part.split("=", 1) for part in query.split("&"))
    return params["symbol"]


def payload(raw: str) -> dict[str, Any]:
    data = orjson.loads(raw)["data"]
    assert isinstance(data, dict)
    return data


@dataclass
class Replay:
    syncs: dict[str, SnapshotSync] = field(default_factory=dict)
    # (symbol, update id) → (best bid, best ask) each time the book held that id
    states: dict[tuple[str, int], tuple[Any, Any]] = field(default_factory=dict)
    first_applied: dict[str, BookDelta] = field(default_factory=dict)
    snapshot_ids: dict[str, int] = field(default_factory=dict)
    tickers: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def sync(self, symbol: str) -> SnapshotSync:
        return self.syncs.setdefault(symbol, SnapshotSync(OrderBook(symbol)))

    def record(self, sync: SnapshotSync) -> None:
        book = sync.book
        self.states[(book.symbol, book.update_id)] = (book.best_bid(), book.best_ask())


def replay_in_time_order(rec: Recording) -> Replay:
    """Feed frames and snapshots in the order they were received (no gap, no crossed book:
    SnapshotSync raises on either, which fails the test)."""
    events: list[tuple[float, int, Any]] = [(ts, 1, raw) for ts, raw in rec.frames]
    events += [(ts, 0, (url, body)) for url, ts, body in rec.snapshots]
    events.sort(key=lambda e: (e[0], e[1]))
    out = Replay()
    for ts, kind, item in events:
        if kind == 0:
            url, body = item
            symbol = symbol_of(url)
            snap = binance.parse_snapshot(body, symbol, ts)
            sync = out.sync(symbol)
            out.snapshot_ids[symbol] = snap.update_id
            assert sync.on_snapshot(snap), f"{symbol}: snapshot older than the buffered diffs"
            out.record(sync)
            out.counts["snapshots"] = out.counts.get("snapshots", 0) + 1
            continue
        data = payload(item)
        if "e" not in data:  # bookTicker frames have no event type
            assert set(data) == {"u", "s", "b", "B", "a", "A"}, data
            out.tickers.append(data)
            out.counts["bookTicker"] = out.counts.get("bookTicker", 0) + 1
            continue
        out.counts[data["e"]] = out.counts.get(data["e"], 0) + 1
        parsed = binance.parse(item, ts)
        if data["e"] != "depthUpdate":
            assert parsed == [], data["e"]  # aggTrade and kline: streams we do not use
            continue
        (delta,) = parsed
        assert isinstance(delta, BookDelta)
        sync = out.sync(delta.symbol)
        if sync.on_delta(delta):
            out.first_applied.setdefault(delta.symbol, delta)
            out.record(sync)
    return out


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_recording_rebuilds_exact_books(name: str) -> None:
    rest_base, expected_counts = RECORDINGS[name]
    rec = read_recording(name)
    out = replay_in_time_order(rec)

    assert out.counts == expected_counts
    symbols = {symbol_of(url) for url, _, _ in rec.snapshots}
    assert set(out.syncs) == symbols and len(symbols) == 4
    for url, _, _ in rec.snapshots:
        assert url == binance.snapshot_url(rest_base, symbol_of(url))  # our REST request, exactly
        assert f"{symbol_of(url).lower()}@depth@100ms" in rec.url  # and our depth stream name

    for symbol, sync in out.syncs.items():
        assert sync.synced, symbol
        assert not sync.book.is_crossed()
        # the first applied diff brackets lastUpdateId + 1
        first = out.first_applied[symbol]
        snap_id = out.snapshot_ids[symbol]
        assert first.first_id <= snap_id + 1 <= first.last_id, (symbol, first, snap_id)
        # the book ends on the last diff of the recording
        last_u = max(
            payload(raw)["u"]
            for _, raw in rec.frames
            if payload(raw).get("e") == "depthUpdate" and payload(raw)["s"] == symbol
        )
        assert sync.book.update_id == last_u

    matched = 0
    mismatches = []
    for ticker in out.tickers:
        state = out.states.get((ticker["s"], ticker["u"]))
        if state is None:
            continue  # the book never held exactly this id (inside a batched diff, or pre-snapshot)
        expected = (
            (float(ticker["b"]), float(ticker["B"])),
            (float(ticker["a"]), float(ticker["A"])),
        )
        if state == expected:
            matched += 1
        else:
            mismatches.append((ticker, state))
    comparable = sum(1 for t in out.tickers if (t["s"], t["u"]) in out.states)
    assert mismatches == []
    assert matched > 0
    assert matched == comparable


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_tickers_that_cannot_be_compared_fall_inside_a_diff_or_before_the_snapshot(
    name: str,
) -> None:
    """Every bookTicker id is accounted for: the book held it, or it lies strictly inside one
    applied diff's range, or at or before the snapshot the book was built from, or after the
    last diff (the recording stopped before the diff carrying it arrived)."""
    rec = read_recording(name)
    out = replay_in_time_order(rec)
    ranges: dict[str, list[tuple[int, int]]] = {}
    for _, raw in rec.frames:
        data = payload(raw)
        if data.get("e") == "depthUpdate":
            ranges.setdefault(data["s"], []).append((data["U"], data["u"]))
    late: list[dict[str, Any]] = []
    for ticker in out.tickers:
        symbol, u = ticker["s"], ticker["u"]
        if (symbol, u) in out.states or u <= out.snapshot_ids[symbol]:
            continue
        if u > ranges[symbol][-1][1]:
            late.append(ticker)
            continue
        inside = [r for r in ranges[symbol] if r[0] <= u < r[1]]
        assert len(inside) == 1, (ticker, inside)
    # tickers past the last diff can only be the last ones of their symbol
    for symbol in {t["s"] for t in late}:
        mine = [t for t in out.tickers if t["s"] == symbol]
        tail = [t for t in late if t["s"] == symbol]
        assert mine[-len(tail) :] == tail


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_whole_recording_at_once_gives_the_same_books(name: str) -> None:
    """Buffer every diff first, then apply the snapshots (Binance's procedure allows it): the
    books equal those of the replay in receive order."""
    rec = read_recording(name)
    in_order = replay_in_time_order(rec)
    whole: dict[str, SnapshotSync] = {}
    for ts, raw in rec.frames:
        for event in parse_depth(raw, ts):
            whole.setdefault(event.symbol, SnapshotSync(OrderBook(event.symbol))).on_delta(event)
    for url, ts, body in rec.snapshots:
        symbol = symbol_of(url)
        assert whole[symbol].on_snapshot(binance.parse_snapshot(body, symbol, ts))
    assert set(whole) == set(in_order.syncs)
    for symbol, sync in whole.items():
        other = in_order.syncs[symbol].book
        assert sync.book.levels() == other.levels(), symbol
        assert sync.book.update_id == other.update_id
        assert sync.book.top(20) == other.top(20)


def parse_depth(raw: str, ts: float) -> list[BookDelta]:
    try:
        events = binance.parse(raw, ts)
    except BadMessage:
        assert "@bookTicker" in raw[:40]  # the only frames of these recordings without "e"
        return []
    return [e for e in events if isinstance(e, BookDelta)]


def test_per_symbol_diff_counts() -> None:
    rec = read_recording("cryptofeed_BINANCE")
    counts: dict[str, int] = {}
    for ts, raw in rec.frames:
        for event in parse_depth(raw, ts):
            counts[event.symbol] = counts.get(event.symbol, 0) + 1
    assert counts == PER_SYMBOL_DIFFS


def test_first_nknusdt_diff_parses_exactly() -> None:
    rec = read_recording("cryptofeed_BINANCE")
    ts, raw = next((ts, raw) for ts, raw in rec.frames if "nknusdt@depth" in raw)
    assert ts == 1633998512.0633569
    assert binance.parse(raw, ts) == [
        BookDelta(
            exchange="binance",
            symbol="NKNUSDT",
            bids=((0.3513, 6195.0), (0.3475, 5548.0), (0.3464, 6222.0)),
            asks=(),
            first_id=499869750,
            last_id=499869752,
            ts_ms=1633998512068,
            received_at=1633998512.0633569,
        )
    ]


def test_nknusdt_snapshot_parses_and_drops_the_first_diff() -> None:
    rec = read_recording("cryptofeed_BINANCE")
    _, ts, body = next(s for s in rec.snapshots if symbol_of(s[0]) == "NKNUSDT")
    snap = binance.parse_snapshot(body, "NKNUSDT", ts)
    assert isinstance(snap, BookSnapshot)
    assert snap.update_id == 499869752
    assert snap.bids[:3] == ((0.3521, 672.0), (0.352, 1144.0), (0.3519, 3260.0))
    raw_body = orjson.loads(body)
    assert len(snap.bids) == len(raw_body["bids"]) and len(snap.asks) == len(raw_body["asks"])
    assert snap.asks[0] == (float(raw_body["asks"][0][0]), float(raw_body["asks"][0][1]))

    diffs = [e for t, raw in rec.frames if "nknusdt@depth" in raw for e in binance.parse(raw, t)]
    first, second = diffs[0], diffs[1]
    assert (second.first_id, second.last_id) == (499869753, 499869754)  # type: ignore[union-attr]

    sync = SnapshotSync(OrderBook("NKNUSDT"))
    assert sync.on_delta(first) is False  # type: ignore[arg-type]
    assert sync.buffered == 1
    assert sync.on_snapshot(snap)
    # u = 499869752 <= lastUpdateId: dropped; the book is exactly the snapshot
    assert sync.buffered == 0
    assert sync.book.update_id == 499869752
    assert sync.book.levels() == (dict(snap.bids), dict(snap.asks))
    # the next diff brackets lastUpdateId + 1 = 499869753 and applies
    assert sync.on_delta(second) is True  # type: ignore[arg-type]
    assert sync.book.update_id == 499869754
    bids, asks = sync.book.levels()
    assert bids[0.3517] == 4265.0
    assert asks[0.3529] == 10968.0


def test_first_binance_us_frame_parses_exactly_and_equals_its_snapshot_id() -> None:
    rec = read_recording("cryptofeed_BINANCE_US")
    ts, raw = rec.frames[0]
    assert binance.parse(raw, ts) == [
        BookDelta(
            exchange="binance",
            symbol="COMPUSDT",
            bids=(),
            asks=((297.32, 19.08719),),
            first_id=113129219,
            last_id=113129219,
            ts_ms=1633998274793,  # the exchange's clock is ~70 ms ahead of the receive time
            received_at=1633998274.723671,
        )
    ]
    url, snap_ts, body = rec.snapshots[0]
    assert symbol_of(url) == "COMPUSDT"
    snap = binance.parse_snapshot(body, "COMPUSDT", snap_ts)
    assert snap.update_id == 113129219  # u == lastUpdateId: the diff is dropped, not applied
    sync = SnapshotSync(OrderBook("COMPUSDT"))
    for event in binance.parse(raw, ts):
        sync.on_delta(event)  # type: ignore[arg-type]
    assert sync.on_snapshot(snap)
    assert sync.book.levels() == (dict(snap.bids), dict(snap.asks))


def test_unused_streams_give_no_events() -> None:
    rec = read_recording("cryptofeed_BINANCE_US")
    unused = [
        (ts, raw) for ts, raw in rec.frames if '"e":"aggTrade"' in raw or '"e":"kline"' in raw
    ]
    assert len(unused) == 11 + 5  # README: 11 aggTrade, 5 kline
    for ts, raw in unused:
        assert binance.parse(raw, ts) == []


def test_recordings_are_in_receive_order() -> None:
    for name in RECORDINGS:
        rec = read_recording(name)
        times = [ts for ts, _ in rec.frames]
        assert times == sorted(times)
        assert rec.connected_at <= times[0]


def test_shared_fixture_path_is_outside_the_repository() -> None:
    path = shared_fixture("cryptofeed_BINANCE.ws.1.0")
    root = Path(__file__).resolve().parent.parent
    assert root not in path.resolve().parents
