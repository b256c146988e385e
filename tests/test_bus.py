"""The Redis bus against a real ``redis-server`` (Debian's package) on a loopback port.

One collector (a mock-feed ``Worker`` + ``BusPublisher``) and readers (``BusReader``, in this
process or in ``python -m market watch --bus`` subprocesses). Skipped when redis-server is
absent; never a mock or fakeredis.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import orjson
import pytest
import redis

from market.analytics import Candle, WhaleAlert
from market.bus import schema
from market.backoff import Backoff
from market.bus.ops import WantsServer, check_wants, read_beats
from market.bus.publisher import BusPublisher
from market.bus.reader import BusReader
from market.errors import SettingsError
from market.events import FeedStatus, Ticker, Trade
from market.settings import Settings
from market.store import MarketStore
from market.views import SessionView
from market.worker import Timing, Worker
from tests.conftest import ROOT, wait_for
from tests.helpers.cards_html import cards_of
from tests.helpers.net import free_port
from tests.helpers.redis_server import RedisServer


def fast() -> Backoff:
    """The tests' reconnect delays: 0.2 → 1 s (one per reader: a generator is not shared)."""
    return Backoff(0.2, 1.0)


class Collector:
    """A mock-feed worker and its publisher (in this process)."""

    def __init__(self, url: str, symbols: tuple[str, ...], seed: int = 7) -> None:
        settings = Settings(exchanges=("mock",), symbols=symbols, mock_seed=seed)
        self.worker = Worker(settings, MarketStore(), timing=Timing(mock_interval=0.05))
        self.publisher = BusPublisher(self.worker.store, url, backoff=Backoff(0.2, 1.0))

    def start(self) -> Collector:
        self.worker.start()
        self.publisher.start()
        return self

    def stop(self) -> None:
        self.worker.stop()
        self.publisher.stop()


def wants_server(worker: Worker) -> WantsServer:
    """``collect``'s wants handler for ``worker``."""
    return WantsServer(worker.reconfigure, worker.settings.exchanges, worker.settings.symbols)


@pytest.fixture
def started() -> Iterator[Callable[[Any], Any]]:
    """``started(obj)`` starts a Collector or BusReader and stops it at teardown."""
    things: list[Any] = []

    def start(thing: Any) -> Any:
        things.append(thing)
        return thing.start()

    yield start
    for thing in reversed(things):
        thing.stop()


SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def books(store: MarketStore) -> dict[tuple[str, str], tuple[Any, ...]]:
    snap = store.snapshot(series=False, max_trades=0)
    return {
        k: (v.update_id, v.bids[:20], v.asks[:20], v.synced, v.trades_seen, v.source)
        for k, v in snap.markets.items()
    }


def frozen_equal(collector: Collector, store: MarketStore) -> dict[tuple[str, str], Any]:
    """Stop the collector's feed (its store no longer changes), then wait until ``store``
    shows exactly its books; returns them."""
    wait_for(lambda: all(b[3] for b in books(collector.worker.store).values()), what="synced")
    collector.worker.stop()
    expected = books(collector.worker.store)
    try:
        wait_for(
            lambda: books(store) == expected, timeout=10, what="the reader at the same version"
        )
    except AssertionError:
        got = books(store)
        fields = ("update_id", "bids", "asks", "synced", "trades_seen", "source")
        diff = {
            k: [f for f, a, b in zip(fields, v, got.get(k, ()), strict=False) if a != b]
            for k, v in expected.items()
        }
        raise AssertionError(f"the reader differs from the frozen collector: {diff}") from None
    return expected


def test_reader_top20_equals_collector_at_same_version(
    redis_server: RedisServer, started: Callable[[Any], Any]
) -> None:
    collector = started(Collector(redis_server.url, SYMBOLS))
    store = MarketStore()
    reader = started(BusReader(redis_server.url, store, SYMBOLS, backoff=fast()))
    wait_for(lambda: len(books(store)) == 3, what="three markets on the reader")
    expected = frozen_equal(collector, store)
    assert set(expected) == {("mock", s) for s in SYMBOLS}
    for key, (uid, bids, asks, synced, _, source) in expected.items():
        assert synced and len(bids) == 20 and len(asks) == 20 and uid > 0, key
        assert source == "simulated"
    a = collector.worker.store.snapshot()
    b = store.snapshot()
    for key in expected:
        va, vb = a.markets[key], b.markets[key]
        assert vb.session.vwap == va.session.vwap and vb.session.cvd == va.session.cvd
        assert vb.session.trades == va.session.trades
        assert vb.session.candles == va.session.candles
        assert vb.trades[-5:] == va.trades[-5:]
    assert reader.info().garbage == 0 and reader.info().refused_version == 0


def test_late_joiner_gets_the_current_book_at_once(
    redis_server: RedisServer, started: Callable[[Any], Any]
) -> None:
    collector = started(Collector(redis_server.url, SYMBOLS))
    wait_for(lambda: all(b[3] for b in books(collector.worker.store).values()) and
             len(books(collector.worker.store)) == 3, what="collector synced")  # fmt: skip
    time.sleep(0.3)  # at least one publication of the synced books
    collector.worker.stop()  # nothing changes from now on: no new publication will come
    expected = books(collector.worker.store)

    def image_seen(symbol: str) -> int:
        data = redis_server.send("HGET", schema.market_key("mock", symbol), "trades")
        msg = schema.decode(data) if data else None
        return msg.seen if isinstance(msg, schema.Trades) else -1

    # the publisher writes a market's tape image as soon as it goes quiet
    wait_for(lambda: all(image_seen(s) == expected[("mock", s)][4] for s in SYMBOLS), what="img")
    store = MarketStore()
    started(BusReader(redis_server.url, store, SYMBOLS, backoff=fast()))
    # only the latest-value hashes can deliver these: the feed publishes nothing new
    wait_for(lambda: books(store) == expected, timeout=5, what="the late joiner's books")


def test_late_joiner_while_the_images_lag_misses_nothing(
    redis_server: RedisServer, started: Callable[[Any], Any]
) -> None:
    """Trades published between two tape images (written at most once a second) reach a reader
    that joins before the next image, though nothing is published after it joins."""
    market = ("mock", "BTCUSDT")
    collector = MarketStore()
    collector.update_book(*market, ((100.0, 1.0),), ((101.0, 1.0),), 1, time.time())

    def add_trade(n: int) -> None:
        now = time.time()
        trade = Trade(*market, 100.5, 0.25, "buy", int(now * 1000), str(n), now)
        collector.add_trades(*market, [trade])

    def image_seen() -> int:
        data = redis_server.send("HGET", schema.market_key(*market), "trades")
        msg = schema.decode(data) if data else None
        return msg.seen if isinstance(msg, schema.Trades) else -1

    channel = redis.Redis.from_url(redis_server.url).pubsub()  # type: ignore[no-untyped-call]
    channel.subscribe(schema.symbol_channel("BTCUSDT"))

    def published_seen() -> int | None:
        message = channel.get_message(timeout=0.05)
        if message is None or message["type"] != "message":
            return None
        tick = schema.decode(message["data"])
        assert isinstance(tick, schema.Tick)
        return next((p.seen for p in tick.parts if isinstance(p, schema.Trades)), None)

    add_trade(1)
    # publications every 0.8 s, images every other one: the second publication lags its image
    started(BusPublisher(collector, redis_server.url, interval=0.8, backoff=fast()))
    assert wait_for(published_seen, what="the first publication") == 1
    assert image_seen() == 1
    add_trade(2)
    add_trade(3)
    assert wait_for(published_seen, what="the second publication") == 3
    assert image_seen() == 1  # the tape image lags: a reader joining now must not stay behind
    channel.close()
    store = MarketStore()
    started(BusReader(redis_server.url, store, ("BTCUSDT",), backoff=fast()))
    wait_for(lambda: books(store) == books(collector), timeout=5, what="the late joiner's books")
    assert store.snapshot().markets[market].trades == collector.snapshot().markets[market].trades


def test_garbage_counted_and_skipped_unknown_version_refused(
    redis_server: RedisServer, started: Callable[[Any], Any]
) -> None:
    collector = started(Collector(redis_server.url, ("BTCUSDT",)))
    store = MarketStore()
    reader = started(BusReader(redis_server.url, store, ("BTCUSDT",), backoff=fast()))
    wait_for(lambda: reader.info().received > 5, what="messages")
    channel = schema.symbol_channel("BTCUSDT")
    redis_server.send("PUBLISH", channel, b"\x93garbage\xc1")
    redis_server.send("PUBLISH", channel, b"not msgpack at all")
    wait_for(lambda: reader.info().garbage == 2, what="two garbage messages counted")
    v2 = msgspec.msgpack.encode({"v": 3, "kind": "book", "x": "mock", "s": "BTCUSDT", "new": 1})
    redis_server.send("PUBLISH", channel, v2)
    wait_for(lambda: reader.info().refused_version == 1, what="a v3 message refused")
    assert reader.info().note == (
        "refused bus message version 3 (kind book): this reader knows version 2"
    )
    # shown on every view: the feed status says it (from the collector's next heartbeat)
    wait_for(
        lambda: (
            store.snapshot(series=False)
            .statuses["mock"]
            .detail.endswith(
                " · bus: refused bus message version 3 (kind book): this reader knows version 2"
            )
        ),
        what="the refusal in the feed status",
    )
    # the reader goes on: the feed's next books still arrive and match the collector's
    before = reader.info().received
    wait_for(lambda: reader.info().received > before + 5, what="messages after the garbage")
    frozen_equal(collector, store)
    assert reader.info().garbage == 2


def test_second_collector_refused_never_two_books(
    redis_server: RedisServer, started: Callable[[Any], Any]
) -> None:
    first = started(Collector(redis_server.url, ("BTCUSDT",), seed=1))
    wait_for(lambda: first.publisher.published > 3, what="the first collector publishing")
    second = started(Collector(redis_server.url, ("BTCUSDT",), seed=2))
    key = ("mock", "BTCUSDT")
    wait_for(lambda: second.publisher.refused.get(key) == first.publisher.id, what="refusal")
    store = MarketStore()
    reader = started(BusReader(redis_server.url, store, ("BTCUSDT",), backoff=fast()))
    wait_for(lambda: len(books(store)) == 1, what="the book on the reader")
    # the reader shows the first collector's book exactly, never the second's
    frozen_equal(first, store)
    assert second.publisher.refused == {key: first.publisher.id}
    beats = [c.beat for c in reader.info().collectors if c.beat.c == second.publisher.id]
    assert beats and beats[0].refused == (("mock", "BTCUSDT", first.publisher.id),)
    assert beats[0].owned == ()


def _watch(url: str, symbols: str, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "market", "watch", "--bus", url, "--symbols", symbols,
         "--seconds", str(seconds), "--interval", "0.2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "STALE_AFTER_SECONDS": "4"},
    )  # fmt: skip


def test_two_reader_processes_agree_with_the_collector(
    redis_server: RedisServer, started: Callable[[Any], Any]
) -> None:
    collector = started(Collector(redis_server.url, SYMBOLS))
    wait_for(lambda: len(books(collector.worker.store)) == 3, what="collector markets")
    procs = [_watch(redis_server.url, ",".join(SYMBOLS), 12) for _ in range(2)]
    try:

        def watching() -> bool:
            _, readers, _ = read_beats(redis.Redis.from_url(redis_server.url))
            return sum(b.role == "watch" and b.received > 20 for b in readers) == 2

        wait_for(watching, timeout=20, what="two watch processes reading the bus")
        wait_for(lambda: all(b[3] for b in books(collector.worker.store).values()), what="sync")
        collector.worker.stop()
        frozen = books(collector.worker.store)
        outs = [p.communicate(timeout=30)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for out in outs:
        last: dict[tuple[str, str], dict[str, Any]] = {}
        for line in out.splitlines():
            row = orjson.loads(line)
            last[(row["exchange"], row["symbol"])] = row
        assert set(last) == set(frozen)
        for key, row in last.items():
            _, bids, asks, _, trades, source = frozen[key]
            assert row["bids"] == [list(level) for level in bids]
            assert row["asks"] == [list(level) for level in asks]
            assert row["trades"] == trades and row["source"] == source == "simulated"
    assert _same_last(outs[0], outs[1])


def _same_last(a: bytes, b: bytes) -> bool:
    def last(out: bytes) -> dict[str, Any]:
        rows = [orjson.loads(line) for line in out.splitlines()]
        return {r["symbol"]: (r["bids"], r["asks"], r["trades"]) for r in rows}

    return last(a) == last(b)


def _collect(url: str, symbols: str, seconds: float = 60) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "market", "collect", "--exchange", "mock", "--symbols", symbols,
         "--bus", url, "--seconds", str(seconds)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "MOCK_SEED": "3"},
    )  # fmt: skip


def _state(store: MarketStore, key: tuple[str, str]) -> tuple[bool, str]:
    view = store.snapshot(series=False, max_trades=0).markets.get(key)
    return (False, "") if view is None else (view.synced, view.detail)


STALE = 4.0


def test_collector_killed_readers_show_down_then_resume(
    redis_server: RedisServer, started: Callable[[Any], Any]
) -> None:
    proc = _collect(redis_server.url, "BTCUSDT")
    restarted: subprocess.Popen[bytes] | None = None
    try:
        store = MarketStore()
        reader = started(
            BusReader(redis_server.url, store, ("BTCUSDT",), stale_after=STALE, backoff=fast())
        )
        key = ("mock", "BTCUSDT")
        wait_for(lambda: _state(store, key)[0], timeout=20, what="a live book from the collector")
        last = books(store)[key]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed = time.monotonic()
        wait_for(lambda: not _state(store, key)[0], timeout=STALE + 2, what="collector down")
        assert time.monotonic() - killed <= STALE
        _, detail = _state(store, key)
        assert detail.startswith("collector down: no heartbeat for"), detail
        kept = books(store)[key]
        assert kept[0] >= last[0] and len(kept[1]) == len(kept[2]) == 20  # kept, not cleared
        status = store.snapshot(series=False).statuses["mock"]
        assert status.state == "reconnecting" and status.detail.startswith("collector down")
        restarted = _collect(redis_server.url, "BTCUSDT")
        # the dead collector's ownership expires (10 s), the new one takes over, readers resume
        wait_for(lambda: _state(store, key)[0], timeout=25, what="the reader resumed")
        uid = books(store)[key][0]
        wait_for(lambda: books(store)[key][0] != uid, what="new books after the restart")
        assert store.snapshot(series=False).statuses["mock"].state == "simulated"
        assert reader.info().garbage == 0
    finally:
        for p in (proc, restarted):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(10)


def test_redis_restarted_both_sides_recover(
    redis_server: RedisServer, started: Callable[[Any], Any]
) -> None:
    collector = started(Collector(redis_server.url, ("BTCUSDT",)))
    store = MarketStore()
    reader = started(
        BusReader(redis_server.url, store, ("BTCUSDT",), stale_after=STALE, backoff=fast())
    )
    key = ("mock", "BTCUSDT")
    wait_for(lambda: _state(store, key)[0], what="a live book")
    redis_server.stop()
    stopped = time.monotonic()
    wait_for(lambda: not _state(store, key)[0], timeout=STALE + 2, what="down while Redis is")
    assert time.monotonic() - stopped <= STALE
    assert "collector down" in _state(store, key)[1]
    wait_for(lambda: reader.info().link.state == "reconnecting", what="reader reconnecting")
    wait_for(lambda: collector.publisher.link.state == "reconnecting", what="collector too")
    assert reader.info().link.detail.startswith("bus: ")
    redis_server.start()  # same port, empty (no persistence)
    wait_for(lambda: _state(store, key)[0], timeout=15, what="the reader live again")
    uid = books(store)[key][0]
    wait_for(lambda: books(store)[key][0] > uid, what="books flowing again")
    assert collector.publisher.link.state == "connected"
    assert collector.publisher.link.reconnects >= 1 and reader.info().link.reconnects >= 1
    frozen_equal(collector, store)


def test_reader_wants_a_symbol_the_collector_subscribes_it_or_refuses(
    redis_server: RedisServer, started: Callable[[Any], Any]
) -> None:
    collector = Collector(redis_server.url, ("BTCUSDT",))
    collector.publisher.on_wants = wants_server(collector.worker)
    started(collector)
    store = MarketStore()
    reader = started(
        BusReader(redis_server.url, store, ("BTCUSDT", "ETHUSDT", "BAD$X"), backoff=fast())
    )
    wait_for(lambda: collector.worker.settings.symbols == ("BTCUSDT", "ETHUSDT"), what="union")
    wait_for(lambda: _state(store, ("mock", "ETHUSDT"))[0], what="the wanted symbol's book")
    reason = "invalid symbol: 'BAD$X': only letters, digits and '-' are allowed"
    wait_for(lambda: reader.info().wants_refused == (("BAD$X", reason),), what="refusal")
    wait_for(lambda: _state(store, ("mock", "BAD$X"))[1] == f"refused by the collector: {reason}")
    assert not _state(store, ("mock", "BAD$X"))[0]


def test_messages_carry_the_structs_and_hostile_ones_are_refused() -> None:
    trade = Trade("mock", "BTCUSDT", 100.5, 0.25, "buy", 1_700_000_000_000, "7", 1.7e9)
    alert = WhaleAlert(1_700_000_000_000, "mock", "BTCUSDT", "buy", 100.5, 2000.0, 201_000.0)
    env = {"c": "c1", "e": 1, "seq": 3, "x": "mock", "s": "BTCUSDT"}
    tick = schema.Tick(x="mock", s="BTCUSDT", parts=(
        schema.Trades(**env, src="simulated", trades=(trade,), seen=1, session=SessionView()),
        schema.Candles(**env, candles=(Candle(0, 1.0, 2.0, 0.5, 1.5, 3.0, 2, 4.5),)),
        schema.Alerts(**env, alerts=(alert,)),
        schema.TickerPart(**env, ticker=Ticker("mock", "BTCUSDT", last=100.5)),
    ))  # fmt: skip
    assert schema.decode(schema.encode(tick)) == tick  # the structs themselves, back equal
    beat = schema.Heartbeat(
        c="c1", host="h", pid=1, started=0.0, sent=10.0, interval=1.0, exchanges=("mock",),
        symbols=("BTCUSDT",), statuses=(FeedStatus("mock", "simulated", messages=5),), owned=(),
    )  # fmt: skip
    assert schema.decode(schema.encode(beat)) == beat

    def raw(message: schema.Message) -> dict[str, Any]:
        return msgspec.msgpack.decode(schema.encode(message))  # type: ignore[no-any-return]

    hostile = raw(tick)
    hostile["parts"][0]["trades"][0]["price"] = "1e400"  # a string where a number goes
    bad_side = raw(tick)
    bad_side["parts"][0]["trades"][0]["side"] = "hold"
    stray = raw(tick)
    stray["parts"][0]["trades"][0]["symbol"] = "ETHUSDT"  # another market's trade
    stray_ticker = raw(tick)
    stray_ticker["parts"][3]["ticker"]["exchange"] = "other"
    bad_state = raw(beat)
    bad_state["statuses"][0]["state"] = "fine"
    for message in (hostile, bad_side, stray, stray_ticker, bad_state):
        with pytest.raises(schema.Garbage):
            schema.decode(msgspec.msgpack.encode(message))
    with pytest.raises(schema.UnknownVersion):
        schema.decode(msgspec.msgpack.encode({**raw(beat), "v": 3, "statuses": "new"}))


def test_check_wants() -> None:
    symbols, refused = check_wants("r1", ("eth-usdt", "ETHUSDT", "x y", "SOLUSDT"))
    assert symbols == ("ETHUSDT", "SOLUSDT")
    reason = "invalid symbol: 'x y': only letters, digits and '-' are allowed"
    assert refused == [schema.Refusal("r1", "x y", reason)]


def test_wants_over_the_limit_refused_with_the_workers_reason(
    redis_server: RedisServer, started: Callable[[Any], Any]
) -> None:
    collector = Collector(redis_server.url, ("BTCUSDT",))
    collector.publisher.on_wants = wants_server(collector.worker)
    started(collector)
    many = tuple(f"S{i:03d}USDT" for i in range(200))  # with BTCUSDT: 201 > MAX_SYMBOLS
    reader = started(BusReader(redis_server.url, MarketStore(), many, backoff=fast()))
    reason = "refused by the collector: 201 symbols: at most 200 at once"
    wait_for(lambda: len(reader.info().wants_refused) == 200, what="refusals")
    assert set(reader.info().wants_refused) == {(s, reason) for s in many}
    assert collector.worker.settings.symbols == ("BTCUSDT",)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "market", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_status_cli(redis_server: RedisServer, started: Callable[[Any], Any]) -> None:
    collector = started(Collector(redis_server.url, ("BTCUSDT",)))
    store = MarketStore()
    reader = started(BusReader(redis_server.url, store, ("BTCUSDT",), backoff=fast()))
    wait_for(lambda: _state(store, ("mock", "BTCUSDT"))[0], what="a live book")
    wait_for(lambda: len(read_beats(redis.Redis.from_url(redis_server.url))[1]) == 1, what="rhb")

    def rated() -> bool:
        beats = read_beats(redis.Redis.from_url(redis_server.url))[0]
        return bool(beats) and beats[0].statuses[0].msg_rate > 0

    wait_for(rated, what="a heartbeat with the feed's message rate")
    done = _cli("status", "--bus", redis_server.url)
    assert done.returncode == 0, done.stderr
    out = orjson.loads(done.stdout)
    assert out["state"] == "connected" and out["redis_used_memory"] > 0
    [c] = out["collectors"]
    assert c["id"] == collector.publisher.id and c["alive"] is True
    [feed] = c["exchanges"]
    assert feed["exchange"] == "mock" and feed["state"] == "simulated"
    assert feed["uptime_s"] >= 0 and feed["messages_per_s"] > 0
    assert 0 <= feed["last_message_age_s"] < 5
    [market] = c["markets"]
    assert market["symbol"] == "BTCUSDT" and 0 <= market["book_age_s"] < 5
    [r] = out["readers"]
    assert r["id"] == reader.id and r["symbols"] == ["BTCUSDT"] and r["heartbeat_age_s"] < 5


def test_status_cli_refusals() -> None:
    port = free_port()  # nothing listens there
    done = _cli("status", "--bus", f"redis://127.0.0.1:{port}/0")
    assert done.returncode == 1
    out = orjson.loads(done.stdout)
    assert out["state"] == "unreachable" and out["collectors"] == []
    done = _cli("status", env={"MARKET_BUS": ""})
    assert done.returncode == 2 and "no bus: pass --bus" in done.stderr
    done = _cli("collect", "--exchange", "mock", "--bus", "http://u:secret@h/0", "--seconds", "1")
    assert done.returncode == 2
    assert done.stderr.strip().endswith("must be a redis://HOST[:PORT][/DB] URL")
    assert "secret" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_market_bus_setting() -> None:
    assert Settings.from_env({"MARKET_BUS": "redis://127.0.0.1:6379/2"}, None).bus == (
        "redis://127.0.0.1:6379/2"
    )
    assert Settings.from_env({"MARKET_BUS": "none"}, None).bus is None
    assert Settings.from_env({}, None).bus is None
    with pytest.raises(SettingsError, match=r"^MARKET_BUS='redis://h': the database must be"):
        Settings.from_env({"MARKET_BUS": "redis://:pw@h/x"}, None)
    with pytest.raises(SettingsError, match="MARKET_BUS") as exc:
        Settings.from_env({"MARKET_BUS": "postgresql://u:hunter2@db/1"}, None)
    assert "hunter2" not in str(exc.value)


# -- the dashboard as a reader (MARKET_BUS) ----------------------------------------------------


@pytest.fixture
def bus_page(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, RedisServer]]:
    from streamlit.testing.v1 import AppTest

    from app.runtime import stop_workers

    monkeypatch.setenv("MARKET_BUS", redis_server.url)
    monkeypatch.setenv("MARKET_EXCHANGE", "binance")  # never connected: the bus is read
    monkeypatch.setenv("MARKET_SYMBOLS", "BTCUSDT")
    monkeypatch.chdir(ROOT)
    stop_workers()
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=30)
    try:
        yield at, redis_server
    finally:
        stop_workers()


def test_dashboard_reads_the_bus_with_no_exchange_connection(
    bus_page: tuple[Any, RedisServer], started: Callable[[Any], Any]
) -> None:
    from app.runtime import get_worker
    from market.bus.feed import BusFeed

    at, server = bus_page
    collector = started(Collector(server.url, ("BTCUSDT",)))
    at.run()
    feed = get_worker()
    assert isinstance(feed, BusFeed)
    key = ("mock", "BTCUSDT")
    wait_for(lambda: _state(feed.store, key)[0], what="the collector's book on the dashboard")
    assert feed.settings.exchanges == ("mock",)  # the collector's, not MARKET_EXCHANGE
    wait_for(
        lambda: feed.store.snapshot(series=False, max_trades=0).markets[key].session.trades > 0,
        what='a trade on the dashboard (the session cards show "—" until one)',
    )
    at.run()
    assert not at.exception and not at.error
    status = [h.value for h in at.html if 'class="statusbar' in h.value]
    assert status and 'data-state="simulated"' in status[0]
    # the market page's cards render the bus's book and session figures
    assert len(cards_of(at)) >= 6 and all(m.value != "—" for m in cards_of(at))
    snap = feed.store.snapshot(series=False).statuses
    assert "binance" not in snap and snap["mock"].state == "simulated"
    # the Feeds page: the collector, its feed, the book's age and this dashboard as a reader
    at.switch_page("views/feeds.py").run()
    assert not at.exception
    frames = [df.value for df in at.dataframe]
    assert frames[0]["collector"].tolist() == [collector.publisher.id]
    assert frames[0]["state"].tolist() == ["simulated"]
    assert frames[1]["symbol"].tolist() == ["BTCUSDT"]
    assert feed.reader.id in frames[2]["reader"].tolist()
    # asking for a symbol through the sidebar asks the collector over the bus
    collector.publisher.on_wants = wants_server(collector.worker)
    feed.reconfigure(symbols=("BTCUSDT", "ETHUSDT"))
    wait_for(lambda: _state(feed.store, ("mock", "ETHUSDT"))[0], what="the wanted symbol")
    assert collector.worker.settings.symbols == ("BTCUSDT", "ETHUSDT")


def test_feeds_page_single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without MARKET_BUS the Feeds page shows this process's worker: feeds and book ages."""
    from streamlit.testing.v1 import AppTest

    from app.runtime import get_worker, stop_workers

    monkeypatch.delenv("MARKET_BUS", raising=False)
    monkeypatch.setenv("MARKET_EXCHANGE", "mock")
    monkeypatch.setenv("MARKET_SYMBOLS", "BTCUSDT,ETHUSDT")
    monkeypatch.chdir(ROOT)
    stop_workers()
    try:
        at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=30)
        at.run()
        worker = get_worker()
        wait_for(lambda: all(b[3] for b in books(worker.store).values()) and
                 len(books(worker.store)) == 2, what="two synced books")  # fmt: skip
        at.switch_page("views/feeds.py").run()
        assert not at.exception and not at.error
        feeds, markets = (df.value for df in at.dataframe[:2])
        assert feeds["exchange"].tolist() == ["mock"] and feeds["state"].tolist() == ["simulated"]
        assert markets["symbol"].tolist() == ["BTCUSDT", "ETHUSDT"]
        assert markets["synced"].tolist() == [True, True]
        assert all(0 <= age < 5 for age in markets["book age (s)"])
    finally:
        stop_workers()


def test_collector_stopped_cleanly_readers_down_at_once(
    redis_server: RedisServer, started: Callable[[Any], Any]
) -> None:
    collector = started(Collector(redis_server.url, ("BTCUSDT",)))
    store = MarketStore()
    started(BusReader(redis_server.url, store, ("BTCUSDT",), backoff=fast()))  # 30 s limit
    key = ("mock", "BTCUSDT")
    wait_for(lambda: _state(store, key)[0], what="a live book")
    collector.stop()
    # its last heartbeat says bye: down at once, not after the 15 s without heartbeats
    wait_for(lambda: _state(store, key) == (False, "collector down: stopped"), timeout=3)
    assert redis_server.send("EXISTS", schema.owner_key(*key)) == 0  # handed over
    status = store.snapshot(series=False).statuses["mock"]
    assert status.state == "reconnecting" and status.detail == "collector down: stopped"


def test_readers_equal_the_collector_under_load(
    redis_server: RedisServer, started: Callable[[Any], Any]
) -> None:
    """40 busy markets (about 10 book updates and several trades a second each), two readers:
    both show exactly the collector's top-20 books and trade counts once it is frozen."""
    symbols = tuple(f"L{i:02d}USDT" for i in range(40))
    collector = started(Collector(redis_server.url, symbols))
    stores = [MarketStore(), MarketStore()]
    readers = [started(BusReader(redis_server.url, s, symbols, backoff=fast())) for s in stores]
    wait_for(lambda: all(len(books(s)) == 40 for s in stores), timeout=20, what="40 markets")
    wait_for(lambda: all(r.info().received > 400 for r in readers), timeout=30, what="traffic")
    expected = frozen_equal(collector, stores[0])
    wait_for(lambda: books(stores[1]) == expected, what="the second reader")
    assert all(synced and len(bids) == 20 for _, bids, _, synced, _, _ in expected.values())
    assert [r.info().garbage for r in readers] == [0, 0]


def test_live_binance_books_over_the_bus_equal_the_exchange_truth(
    redis_server: RedisServer, started: Callable[[Any], Any]
) -> None:
    """The collector on the loopback fake Binance (REST snapshot + diffs): a reader's top 20
    is the exchange's true top 20 exactly, labelled live."""
    from tests.fakes.binance import FakeBinance

    symbols = ("BTCUSDT", "ETHUSDT")
    with FakeBinance(symbols) as ex:
        settings = Settings(
            exchanges=("binance",), symbols=symbols, fallback="none", connection_timeout=5.0,
        ).with_urls(BINANCE_WS_URL=ex.ws_url, BINANCE_REST_URL=ex.rest_url)
        worker = Worker(settings, MarketStore())
        publisher = BusPublisher(worker.store, redis_server.url, backoff=fast())

        class Live:
            def start(self) -> Live:
                worker.start()
                publisher.start()
                return self

            def stop(self) -> None:
                worker.stop()
                publisher.stop()

        started(Live())
        store = MarketStore()
        started(BusReader(redis_server.url, store, symbols, backoff=fast()))
        wait_for(lambda: len(books(store)) == 2 and all(b[3] for b in books(store).values()),
                 timeout=20, what="both books synced on the reader")  # fmt: skip
        ex.tick(30)

        def equal_truth() -> bool:
            for symbol in symbols:
                bids, asks, update_id = ex.truth(symbol)
                got = books(store).get(("binance", symbol))
                if got is None or got[:4] != (update_id, tuple(bids), tuple(asks), True):
                    return False
            return True

        wait_for(equal_truth, timeout=10, what="the reader's books == the exchange's truth")
        for symbol in symbols:
            assert books(store)[("binance", symbol)][5] == "live"
            assert len(books(store)[("binance", symbol)][1]) == 20
