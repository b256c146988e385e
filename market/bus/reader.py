"""BusReader: a thread that fills a local ``MarketStore`` from the bus, so the same pages and
CLI lines render it.

On every (re)connection it subscribes the control channel and its symbols' channels first,
then reads the collectors' heartbeats and each market's latest-value hash with the list of
what its trades, candles and alerts images lag (a late joiner has the current book and tape at
once), then follows the channels. Messages of one market carry the owner's epoch and the
collector's store version: anything not newer than what the reader already has (an older
owner, a message that crossed the image) is dropped, so two collectors' books never mix.

Nothing stale is shown as live: when the owner of a market has sent no heartbeat for
``down_after`` (well within ``STALE_AFTER_SECONDS``), or the reader cannot reach Redis for
that long, its books turn ``synced=False`` with "collector down …" (values kept, not shown as
live) and its feed statuses say so; they come back by themselves with the collector.
A message of an unknown version is refused with a status; garbage is counted and skipped.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import redis

from market.analytics import Candle, WhaleAlert
from market.backoff import Backoff
from market.bus import schema
from market.bus.link import Link, LinkState, down_after, redacted
from market.bus.publisher import new_id
from market.errors import InvalidSymbol
from market.events import FeedStatus
from market.store import SESSION_CANDLES, MarketStore
from market.symbols import validate_symbol
from market.views import MarketKey, SessionView

log = logging.getLogger(__name__)

HOUSEKEEPING_S = 0.25
HEARTBEAT_S = 1.0
SUBSCRIBE_WAIT_S = 10.0
READER_TTL_S = 10.0  # a reader's heartbeat and wants expire this long after it stops
ALERTS_KEPT = 20  # per market, as the collector's session keeps them


@dataclass(slots=True)
class _Market:
    collector: str = ""
    epoch: int = 0
    seqs: dict[str, int] = field(default_factory=dict)  # kind → last applied seq (this epoch)
    book: schema.Book | None = None
    seen: int = 0
    session: SessionView = field(default_factory=SessionView)  # figures; candles, alerts below
    candles: dict[int, Candle] = field(default_factory=dict)
    alerts: deque[WhaleAlert] = field(default_factory=lambda: deque(maxlen=ALERTS_KEPT))
    down: bool = False


@dataclass(frozen=True, slots=True)
class CollectorSeen:
    beat: schema.Heartbeat
    seen_at: float  # local time the heartbeat arrived (or was read)


@dataclass(frozen=True, slots=True)
class ReaderInfo:
    """The reader's view of the bus, for the Feeds page, statuses and ``status``."""

    id: str
    url: str
    link: LinkState
    symbols: tuple[str, ...]
    received: int
    garbage: int
    refused_version: int
    dropped: int
    note: str  # the last version refusal, or ""
    collectors: tuple[CollectorSeen, ...]
    down_after: float
    wants_refused: tuple[tuple[str, str], ...]  # (symbol, reason) refused to this reader


class BusReader:
    """Follows the bus at ``url`` for ``symbols`` into ``store`` until ``stop()``."""

    def __init__(
        self,
        url: str,
        store: MarketStore,
        symbols: Iterable[str],
        *,
        stale_after: float = 30.0,
        reader_id: str | None = None,
        role: str = "reader",
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.store = store
        self.id = reader_id or new_id(role)
        self.role = role
        self.stale_after = stale_after
        self.down_after = down_after(stale_after)
        self.clock = clock
        self.started_at = clock()
        self._link = Link(url, "bus reader", backoff=backoff, clock=clock)
        self._stop = self._link.stopping
        # Guards _symbols, _collectors, _refusals and the counters (read by others).
        self._lock = threading.Lock()
        self._symbols = _normalized(symbols)
        self._collectors: dict[str, CollectorSeen] = {}
        self._refusals: dict[str, str] = {}
        self.received = 0
        self.garbage = 0
        self.refused_version = 0
        self.dropped = 0
        self._note = ""
        # loop thread only
        self._markets: dict[MarketKey, _Market] = {}
        self._subscribed: tuple[str, ...] = ()
        self._garbage_logged = -1e18
        self._next_beat = 0.0
        self._status_from: dict[str, str] = {}  # exchange → collector whose status is shown
        self._shown: dict[str, FeedStatus] = {}  # exchange → the status last put in the store

    # -- control --------------------------------------------------------------------------------

    def start(self) -> BusReader:
        # the books still go stale while the bus is away
        self._link.start(self._serve, idle=self._check_down, idle_every=HOUSEKEEPING_S)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._link.stop(timeout)

    @property
    def symbols(self) -> tuple[str, ...]:
        with self._lock:
            return self._symbols

    def want(self, symbols: Iterable[str]) -> None:
        """Follow these symbols from now on (asked of the collectors over the bus)."""
        with self._lock:
            self._symbols = _normalized(symbols)

    def exchanges(self) -> tuple[str, ...]:
        """Every exchange a live collector serves, sorted."""
        now = self.clock()
        with self._lock:
            seen = list(self._collectors.values())
        names = {x for c in seen if now - c.seen_at <= self.down_after for x in c.beat.exchanges}
        return tuple(sorted(names))

    def info(self) -> ReaderInfo:
        link = self._link.status
        with self._lock:
            return ReaderInfo(
                id=self.id, url=redacted(self.url), link=link, symbols=self._symbols,
                received=self.received, garbage=self.garbage,
                refused_version=self.refused_version, dropped=self.dropped, note=self._note,
                collectors=tuple(self._collectors.values()), down_after=self.down_after,
                wants_refused=tuple(sorted(self._refusals.items())),
            )  # fmt: skip

    # -- one connection -------------------------------------------------------------------------

    def _serve(self, r: redis.Redis) -> None:
        """Follow the bus on this connection until stopped (a Redis error ends it)."""
        pubsub = r.pubsub()  # type: ignore[no-untyped-call]
        try:
            self._follow(r, pubsub)
        finally:
            self._subscribed = ()
            pubsub.close()

    def _follow(self, r: redis.Redis, pubsub: redis.client.PubSub) -> None:
        for st in self._markets.values():  # a new connection: whatever comes next is fresh
            st.seqs.clear()
            st.epoch = 0
        self._next_beat = 0.0
        pubsub.subscribe(schema.CONTROL_CHANNEL)
        self._confirmed(pubsub, {schema.CONTROL_CHANNEL})
        self._resubscribe(r, pubsub)
        next_house = 0.0
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=HOUSEKEEPING_S)
            if message is not None and message.get("type") == "message":
                self._on(message["data"])
            tick = time.monotonic()
            if tick >= next_house:
                next_house = tick + HOUSEKEEPING_S
                self._housekeeping(r, pubsub)

    def _housekeeping(self, r: redis.Redis, pubsub: redis.client.PubSub) -> None:
        if self.symbols != self._subscribed:
            self._resubscribe(r, pubsub)
        self._check_down()
        if time.monotonic() >= self._next_beat:
            self._next_beat = time.monotonic() + HEARTBEAT_S
            self._beat(r)

    def _beat(self, r: redis.Redis) -> None:
        now = self.clock()
        state = self._link.status.state
        with self._lock:
            beat = schema.ReaderBeat(
                r=self.id, host=socket.gethostname()[:40], pid=os.getpid(),
                started=self.started_at, sent=now, symbols=self._symbols,
                state=state, received=self.received, garbage=self.garbage,
                refused=self.refused_version, role=self.role,
            )  # fmt: skip
            want = schema.Want(r=self.id, symbols=self._symbols)
        ttl = int(READER_TTL_S * 1000)
        pipe = r.pipeline(transaction=False)
        pipe.set(schema.reader_key(self.id), schema.encode(beat), px=ttl)
        pipe.set(schema.want_key(self.id), schema.encode(want), px=ttl)
        pipe.execute()

    def _resubscribe(self, r: redis.Redis, pubsub: redis.client.PubSub) -> None:
        wanted = self.symbols
        old = set(self._subscribed)
        added = [s for s in wanted if s not in old]
        removed = [s for s in old if s not in wanted]
        if removed:
            channels = [schema.symbol_channel(s) for s in removed]
            pubsub.unsubscribe(*channels)  # type: ignore[no-untyped-call]
            for key in [k for k in self._markets if k[1] in removed]:
                del self._markets[key]
                self.store.remove_market(*key)
        if added:
            channels = [schema.symbol_channel(s) for s in added]
            pubsub.subscribe(*channels)
            self._confirmed(pubsub, set(channels))
        self._subscribed = wanted
        self._next_beat = 0.0  # say what we want at once
        self._load(r, set(added) if self._markets or old else set(wanted))

    def _confirmed(self, pubsub: redis.client.PubSub, channels: set[str]) -> None:
        """Wait until Redis confirms the subscriptions: only then is a latest-value image read
        after it sure to be followed by every later publication (none falls in between)."""
        pending = {c.encode() for c in channels}
        deadline = time.monotonic() + SUBSCRIBE_WAIT_S
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise redis.TimeoutError(f"no subscription confirmed in {SUBSCRIBE_WAIT_S:g} s")
            message = pubsub.get_message(timeout=min(left, 0.5))
            if message is None:
                continue
            if message["type"] == "subscribe":
                pending.discard(message["channel"])
            elif message["type"] == "message":
                self._on(message["data"])

    def _load(self, r: redis.Redis, symbols: set[str]) -> None:
        """The collectors' heartbeats, then the latest-value hash of each market wanted."""
        names = list(r.scan_iter(match=schema.COLLECTORS_MATCH, count=500))
        now = self.clock()
        for data in r.mget(names) if names else []:
            if isinstance(data, bytes):
                self._on(data, read_at=now)
        if not symbols:
            return
        keys = [
            k for k in r.scan_iter(match=schema.PREFIX + "v:*", count=1000)
            if k.decode(errors="replace").rsplit(":", 1)[-1] in symbols
        ]  # fmt: skip
        pipe = r.pipeline(transaction=False)
        for key in keys:
            # the list before the hash: images rewritten in between hold all the list held
            pipe.lrange(schema.since_key(key.decode(errors="replace")), -schema.SINCE_KEPT, -1)
            pipe.hgetall(key)
        replies = pipe.execute() if keys else []
        for since, fields in zip(replies[::2], replies[1::2], strict=True):
            for name in (b"book", b"ticker", b"candles", b"alerts", b"trades"):
                data = fields.get(name)
                if data is not None:
                    self._on(data)
            for data in since:  # what the images lag, oldest first (older parts are dropped)
                self._on(data)

    # -- messages -----------------------------------------------------------------------------

    def _on(self, data: bytes, read_at: float | None = None) -> None:
        try:
            msg = schema.decode(data)
        except schema.UnknownVersion as exc:
            with self._lock:
                self.refused_version += 1
                self._note = f"refused {exc}: this reader knows version {schema.VERSION}"
            return
        except schema.Garbage as exc:
            with self._lock:
                self.garbage += 1
            now = time.monotonic()
            if now - self._garbage_logged > 10.0:
                self._garbage_logged = now
                log.warning("bus reader: garbage message skipped: %.120s", exc)
            return
        with self._lock:
            self.received += 1
        if isinstance(msg, schema.Tick):
            for part in msg.parts:
                self._on_part(part)
        elif isinstance(msg, schema.Heartbeat):
            self._on_heartbeat(msg, read_at)
        elif isinstance(msg, schema.Part):
            self._on_part(msg)  # a latest-value image

    def _on_part(self, msg: schema.Part) -> None:
        if isinstance(msg, schema.TickerPart):
            if self._accept(msg, "ticker") is not None:
                self.store.update_ticker(msg.x, msg.s, msg.ticker)
        else:
            self._on_market(msg)

    def _accept(self, msg: schema.Part, kind: str, same: bool = False) -> _Market | None:
        """The market's state when ``msg`` is newer than what was applied (None: dropped)."""
        if msg.s not in self.symbols:
            return None
        key = (msg.x, msg.s)
        st = self._markets.get(key)
        if st is None:
            st = self._markets[key] = _Market()
        if msg.e < st.epoch:
            with self._lock:
                self.dropped += 1  # an older owner's message: never mixed in
            return None
        if msg.e > st.epoch or msg.c != st.collector:
            st.epoch, st.collector = msg.e, msg.c
            st.seqs.clear()
        last = st.seqs.get(kind, -1)
        if msg.seq < last or (msg.seq == last and not same):
            with self._lock:
                self.dropped += 1
            return None
        st.seqs[kind] = msg.seq
        return st

    def _on_market(self, msg: schema.Book | schema.Trades | schema.Candles | schema.Alerts) -> None:
        st = self._accept(msg, type(msg).__name__, same=isinstance(msg, schema.Candles))
        if st is None:
            return
        x, s = msg.x, msg.s
        if isinstance(msg, schema.Book):
            st.book = msg
            self._put_book(st, msg)
            return
        if isinstance(msg, schema.Trades):
            reset = msg.full or msg.seen < st.seen
            st.seen = msg.seen
            st.session = msg.session
            self.store.put_trades(x, s, msg.trades, msg.seen, self._session(st), reset=reset)
            return
        if isinstance(msg, schema.Candles):
            if msg.full:
                st.candles = {c.open_ms: c for c in msg.candles}
            else:
                for c in msg.candles:
                    st.candles[c.open_ms] = c
                while len(st.candles) > SESSION_CANDLES:
                    del st.candles[min(st.candles)]
        else:
            alerts = msg.alerts
            if msg.full:  # the image (a late join, a reconnection): replaces, no duplicates
                known = set(st.alerts)
                self.store.add_alerts(a for a in alerts if a not in known)
                st.alerts.clear()
            else:
                self.store.add_alerts(alerts)
            st.alerts.extend(alerts)
        self.store.put_session(x, s, self._session(st))

    def _put_book(self, st: _Market, b: schema.Book) -> None:
        st.down = False
        self.store.put_book(
            b.x, b.s, source=b.src, bids=b.bids, asks=b.asks, update_id=b.uid, at=b.at,
            synced=b.synced, detail=b.detail, book_updates=b.bu, resyncs=b.rs,
        )  # fmt: skip
        if not self._alive(b.c):
            self._mark_down(b.x, b.s, st)

    def _session(self, st: _Market) -> SessionView:
        candles = tuple(sorted(st.candles.values(), key=lambda c: c.open_ms))
        return replace(st.session, candles=candles, alerts=tuple(st.alerts))

    def _on_heartbeat(self, beat: schema.Heartbeat, read_at: float | None) -> None:
        now = self.clock()
        seen_at = now if read_at is None else read_at - max(0.0, read_at - beat.sent)
        if beat.bye:
            seen_at = -math.inf  # stopped cleanly: down now, not after the heartbeats stop
        with self._lock:
            previous = self._collectors.get(beat.c)
            if previous is not None and previous.beat.sent > beat.sent:
                return
            self._collectors[beat.c] = CollectorSeen(beat, seen_at)
            for collector in [c for c, v in self._collectors.items() if now - v.beat.sent > 3600]:
                del self._collectors[collector]
            for refusal in beat.wants:
                if refusal.reader == self.id:
                    self._refusals[refusal.symbol] = refusal.reason
        alive = now - seen_at <= self.down_after
        if beat.bye:
            self._check_down()
            return
        wanted = set(self.symbols)
        for status in beat.statuses:
            x = status.exchange
            shown = self._status_from.get(x)
            if shown is not None and shown != beat.c and self._alive(shown):
                continue  # another live collector's status of this exchange is shown
            self._status_from[x] = beat.c
            feed = status  # absolute times: as the collector sent it
            note = self.info().note
            if note:  # e.g. a newer collector's messages refused: say so on every view
                feed = replace(feed, detail=f"{feed.detail} · bus: {note}")
            if not alive:
                feed = self._down_status(feed, now - seen_at)
            self._shown[x] = feed
            self.store.set_status(feed)
        owned = {(x, s) for x, s in beat.owned}
        for refusal in beat.wants:
            if refusal.reader == self.id and refusal.symbol in wanted:
                for x in beat.exchanges:
                    if (x, refusal.symbol) not in self._markets:
                        self.store.mark_unsynced(
                            x, refusal.symbol, f"refused by the collector: {refusal.reason}",
                            resync=False,
                        )  # fmt: skip
        if alive:  # books shown down while this collector was silent come back
            for key, st in self._markets.items():
                if st.down and st.collector == beat.c and key in owned and st.book is not None:
                    self._put_book(st, st.book)

    # -- staleness ----------------------------------------------------------------------------

    def _alive(self, collector: str) -> bool:
        with self._lock:
            seen = self._collectors.get(collector)
        return seen is not None and self.clock() - seen.seen_at <= self.down_after

    def _why_down(self, silent: float) -> str:
        info = self.info()
        bus = "" if info.link.state == "connected" else f"; {info.link.detail or 'unreachable'}"
        note = f"; {info.note}" if info.note else ""
        if math.isnan(silent):
            age = "never heard"
        elif math.isinf(silent):
            age = "stopped"
        else:
            age = f"no heartbeat for {silent:.0f} s"
        return f"collector down: {age}{bus}{note}"

    def _down_status(self, status: FeedStatus, silent: float) -> FeedStatus:
        return replace(status, state="reconnecting", detail=self._why_down(silent))

    def _mark_down(self, x: str, s: str, st: _Market) -> None:
        with self._lock:
            seen = self._collectors.get(st.collector)
        silent = math.nan if seen is None else self.clock() - seen.seen_at
        st.down = True
        self.store.set_stale(x, s, self._why_down(silent))

    def _check_down(self) -> None:
        now = self.clock()
        for key, st in self._markets.items():
            if not st.down and not self._alive(st.collector):
                self._mark_down(*key, st)
        with self._lock:
            collectors = dict(self._collectors)
        for x, collector in self._status_from.items():
            seen = collectors.get(collector)
            status = self._shown.get(x)
            if status is None or seen is None:
                continue
            silent = now - seen.seen_at
            if silent > self.down_after and not status.detail.startswith("collector down"):
                self._shown[x] = self._down_status(status, silent)
                self.store.set_status(self._shown[x])


def _normalized(symbols: Iterable[str]) -> tuple[str, ...]:
    """The collectors' names (``btc-usdt`` → ``BTCUSDT``); a non-symbol is kept as given, to
    be refused by the collector with the reason."""
    out: list[str] = []
    for raw in symbols:
        try:
            name = validate_symbol(raw).replace("-", "") or raw
        except InvalidSymbol:
            name = raw
        if name not in out:
            out.append(name)
    return tuple(out)
