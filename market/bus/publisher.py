"""BusPublisher: a thread that copies a collector's ``MarketStore`` onto Redis.

Every ``interval`` (100 ms) it asks the store for what changed (``bus_views``: one copy under
the lock, trades only since the last publication) and, per market it owns, publishes in one
pipelined round trip: the book (when it changed), new trades with the session figures, the last
two candles, new whale alerts and the ticker. Every ``heartbeat`` (1 s) it refreshes the
ownership of its markets, writes its heartbeat (feed statuses, book ages, refusals) and reads
the readers' wants. Publishing never happens under the store's lock.

Late joiners: before each publication the market's latest-value hash gets the new book and
ticker, and either fresh trades, candles and alerts images (at most once a second, and as soon
as the market goes quiet) or, while those lag, the new parts on the list beside the hash
(``schema.since_key``). A reader that subscribes, then reads both, misses nothing published
before its subscription and gets everything after it on the channel.

Ownership: ``SET own:<exchange>:<symbol> <id> NX PX ttl`` in a Lua script that also refreshes
it when already ours and increments the market's epoch when newly acquired. A second
collector for the same market is refused: it does not publish that market and reports the
owner's id in its heartbeat; it takes the market over only once the owner's key has expired
(the owner stopped refreshing it), under a higher epoch, so readers never mix two books.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace

import msgspec
import redis

from market.analytics import Candle, WhaleAlert
from market.backoff import Backoff
from market.bus import schema
from market.bus.link import Link, LinkState, describe
from market.events import Ticker, Trade
from market.store import SESSION_CANDLES, MarketStore
from market.views import MarketKey, MarketView, SessionView, StoreSnapshot

log = logging.getLogger(__name__)

PUBLISH_INTERVAL_S = 0.1
HEARTBEAT_INTERVAL_S = 1.0
OWNER_TTL_S = 10.0  # ten missed heartbeats before another collector may take over
IMAGE_INTERVAL_S = 1.0  # the latest-value trades and candles images, at most this often
IMAGE_TRADES = 100  # trades kept in a market's latest-value image (a late joiner's tape)
IMAGE_TTL_S = 3600.0  # a market's latest-value hash outlives its last update by this
BEAT_TTL_S = 60.0  # a collector's heartbeat key outlives it by this (status shows its age)

# KEYS: owner, epoch; ARGV: id, ttl ms. Returns {1, epoch} when ours, {0, owner} when not.
_OWN = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, redis.call('INCR', KEYS[2])}
end
return {0, cur}
"""
# KEYS: owner; ARGV: id. Deletes the key when ours (a clean stop hands the market over at once).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

WantsHandler = Callable[[Mapping[str, tuple[str, ...]]], list[schema.Refusal]]


def new_id(kind: str) -> str:
    return f"{kind}-{socket.gethostname()[:20]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class BusPublisher:
    """Publishes ``store`` to the bus at ``url`` until ``stop()``; ``state`` says how."""

    def __init__(
        self,
        store: MarketStore,
        url: str,
        *,
        collector_id: str | None = None,
        interval: float = PUBLISH_INTERVAL_S,
        heartbeat: float = HEARTBEAT_INTERVAL_S,
        owner_ttl: float = OWNER_TTL_S,
        on_wants: WantsHandler | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.url = url
        self.id = collector_id or new_id("collector")
        self.interval = interval
        self.heartbeat_interval = heartbeat
        self.owner_ttl = owner_ttl
        self.on_wants = on_wants
        self.clock = clock
        self.started_at = clock()
        self._link = Link(url, "bus publisher", backoff=backoff, clock=clock)
        self._stop = self._link.stopping
        # Guards refused and wants_refused (read by other threads); the loop holds it briefly.
        self._lock = threading.Lock()
        self.published = 0
        self.errors = 0
        self.refused: dict[MarketKey, str] = {}  # market → owner (another collector)
        self.wants_refused: list[schema.Refusal] = []
        # loop thread only
        self._epoch: dict[MarketKey, int] = {}
        self._owned_at = -1e18  # when ownership was last confirmed (monotonic)
        self._book_sig: dict[MarketKey, tuple[object, ...]] = {}
        self._seen: dict[MarketKey, int] = {}
        self._alert_last: dict[MarketKey, WhaleAlert] = {}
        self._ticker: dict[MarketKey, Ticker] = {}
        self._recent: dict[MarketKey, deque[Trade]] = {}
        self._image_dirty: set[MarketKey] = set()
        self._candles: dict[MarketKey, dict[int, Candle]] = {}
        self._alerts_image: dict[MarketKey, tuple[WhaleAlert, ...]] = {}
        self._up_since: dict[str, float] = {}
        self._seq = 0

    # -- control --------------------------------------------------------------------------------

    @property
    def link(self) -> LinkState:
        return self._link.status

    def start(self) -> BusPublisher:
        self._link.start(self._serve, on_stop=self._release)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop publishing, hand the markets over (ownership keys deleted), join the thread."""
        self._link.stop(timeout)

    # -- one connection -------------------------------------------------------------------------

    def _forget(self) -> None:
        self._epoch.clear()
        self._owned_at = -1e18
        self._book_sig.clear()
        self._ticker.clear()
        self._image_dirty = set(self._recent)

    def _serve(self, r: redis.Redis) -> None:
        """Publish on this connection until stopped (a Redis error ends it)."""
        self._forget()  # Redis may have restarted empty: write every image again
        own = r.register_script(_OWN)
        next_beat = 0.0
        next_image = 0.0
        while not self._stop.is_set():
            tick = time.monotonic()
            if tick >= next_beat:
                self._beat(r, own)
                next_beat = tick + self.heartbeat_interval
            images = tick >= next_image
            if images:
                next_image = tick + IMAGE_INTERVAL_S
            self._publish(r, images)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - tick)))

    # -- heartbeat, ownership, wants ----------------------------------------------------------

    def _beat(self, r: redis.Redis, own: redis.commands.core.Script) -> None:
        snap = self.store.bus_views(self._seen, candles=0, max_trades=0)
        keys = sorted(snap.markets)
        ttl_ms = str(int(self.owner_ttl * 1000))
        pipe = r.pipeline(transaction=False)
        for x, s in keys:
            own(keys=[schema.owner_key(x, s), schema.epoch_key(x, s)], args=[self.id, ttl_ms],
                client=pipe)  # fmt: skip
        confirmed = time.monotonic()
        results = pipe.execute() if keys else []
        refused: dict[MarketKey, str] = {}
        for key, (ok, value) in zip(keys, results, strict=True):
            if ok == 1:
                epoch = int(value)
                if self._epoch.get(key) != epoch:
                    self._book_sig.pop(key, None)  # a new epoch starts with a whole image
                    self._ticker.pop(key, None)
                    self._image_dirty.add(key)
                self._epoch[key] = epoch
            else:
                self._epoch.pop(key, None)
                refused[key] = value.decode() if isinstance(value, bytes) else str(value)
        for state in (self._epoch, self._book_sig, self._seen, self._alert_last, self._ticker,
                      self._recent, self._candles, self._alerts_image):  # fmt: skip
            for key in [k for k in state if k not in snap.markets]:
                del state[key]  # a market the worker dropped: its memory goes too
        self._image_dirty &= set(snap.markets)
        self._owned_at = confirmed
        for key, owner in refused.items():
            if self.refused.get(key) != owner:
                log.warning("bus: %s %s is published by collector %s: refused", *key, owner)
        wants = self._read_wants(r)
        wants_refused = self.on_wants(wants) if self.on_wants is not None else []
        with self._lock:
            self.refused = refused
            self.wants_refused = wants_refused
        beat = self._heartbeat(snap, refused, wants_refused)
        data = schema.encode(beat)
        pipe = r.pipeline(transaction=False)
        pipe.set(schema.collector_key(self.id), data, px=int(BEAT_TTL_S * 1000))
        pipe.publish(schema.CONTROL_CHANNEL, data)
        pipe.execute()

    def _read_wants(self, r: redis.Redis) -> dict[str, tuple[str, ...]]:
        names = list(r.scan_iter(match=schema.WANTS_MATCH, count=500))
        if not names:
            return {}
        wants: dict[str, tuple[str, ...]] = {}
        for data in r.mget(names):
            if not isinstance(data, bytes):
                continue  # expired between SCAN and MGET
            try:
                msg = schema.decode(data)
            except (schema.Garbage, schema.UnknownVersion):
                continue
            if isinstance(msg, schema.Want):
                wants[msg.r] = msg.symbols
        return wants

    def _heartbeat(
        self,
        snap: StoreSnapshot,
        refused: Mapping[MarketKey, str],
        wants_refused: list[schema.Refusal],
    ) -> schema.Heartbeat:
        now = snap.taken_at
        for name, status in snap.statuses.items():
            if status.state in ("live", "simulated"):
                self._up_since.setdefault(name, now)
            else:
                self._up_since.pop(name, None)
        for name in [n for n in self._up_since if n not in snap.statuses]:
            del self._up_since[name]
        exchanges = tuple(sorted(snap.statuses))
        symbols = tuple(dict.fromkeys(s for _, s in sorted(snap.markets)))
        book_at = tuple(
            (x, s, v.updated_at)
            for (x, s), v in sorted(snap.markets.items())
            if v.updated_at is not None and (x, s) in self._epoch
        )
        return schema.Heartbeat(
            c=self.id, host=socket.gethostname()[:40], pid=os.getpid(), started=self.started_at,
            sent=now, interval=self.heartbeat_interval, exchanges=exchanges, symbols=symbols,
            statuses=tuple(s for _, s in sorted(snap.statuses.items())),
            up_since=tuple(sorted(self._up_since.items())), owned=tuple(sorted(self._epoch)),
            refused=tuple((x, s, o) for (x, s), o in sorted(refused.items())),
            book_at=book_at, wants=tuple(wants_refused), published=self.published,
            publish_errors=self.errors,
        )  # fmt: skip

    # -- market data --------------------------------------------------------------------------

    def _publish(self, r: redis.Redis, images: bool) -> None:
        if time.monotonic() - self._owned_at > self.owner_ttl * 0.8:
            return  # ownership not confirmed lately: another collector may own these now
        snap = self.store.bus_views(
            self._seen, candles=SESSION_CANDLES if images else 2, every=images
        )
        self._seq = snap.version
        pipe = r.pipeline(transaction=False)
        count = 0
        for key, view in snap.markets.items():
            epoch = self._epoch.get(key)
            if epoch is None:
                if view.trades_seen:
                    self._seen[key] = view.trades_seen  # not ours: do not pile up its trades
                continue
            count += self._market(pipe, key, view, epoch, snap.taken_at, images)
        if len(pipe):
            pipe.execute()
            self.published += count

    def _market(
        self,
        pipe: redis.client.Pipeline,
        key: MarketKey,
        view: MarketView,
        epoch: int,
        now: float,
        images: bool,
    ) -> int:
        x, s = key
        channel = schema.symbol_channel(s)
        hkey = schema.market_key(x, s)
        seq = self._seq
        parts: list[schema.Part] = []
        sig = (view.update_id, view.book_updates, view.synced, view.detail, view.source,
               view.resyncs, view.bids, view.asks)  # fmt: skip
        if self._book_sig.get(key) != sig:
            self._book_sig[key] = sig
            book = schema.Book(
                c=self.id, e=epoch, seq=seq, x=x, s=s, src=view.source, bids=view.bids[:20],
                asks=view.asks[:20], uid=view.update_id, at=view.updated_at, sent=now,
                synced=view.synced, detail=view.detail, bu=view.book_updates, rs=view.resyncs,
            )  # fmt: skip
            parts.append(book)
            pipe.hset(hkey, "book", schema.encode(book))
        session = view.session
        if view.trades or self._seen.get(key, 0) != view.trades_seen:
            self._seen[key] = view.trades_seen
            trades = view.trades
            recent = self._recent.setdefault(key, deque(maxlen=IMAGE_TRADES))
            recent.extend(trades)
            self._image_dirty.add(key)
            parts.append(schema.Trades(
                c=self.id, e=epoch, seq=seq, x=x, s=s, src=view.source, trades=trades,
                seen=view.trades_seen, session=_figures(view.session),
            ))  # fmt: skip
            if session.candles:
                parts.append(schema.Candles(
                    c=self.id, e=epoch, seq=seq, x=x, s=s,
                    candles=session.candles[-2:],
                ))  # fmt: skip
        if session.alerts and session.alerts[-1] is not self._alert_last.get(key):
            last = self._alert_last.get(key)
            new = session.alerts
            for i in range(len(new) - 1, -1, -1):
                if new[i] is last:
                    new = new[i + 1 :]
                    break
            self._alert_last[key] = session.alerts[-1]
            parts.append(schema.Alerts(
                c=self.id, e=epoch, seq=seq, x=x, s=s,
                alerts=new,
            ))  # fmt: skip
        ticker = view.ticker
        if ticker is not None and self._ticker.get(key) is not ticker:
            self._ticker[key] = ticker
            tick = schema.TickerPart(c=self.id, e=epoch, seq=seq, x=x, s=s, ticker=ticker)
            parts.append(tick)
            pipe.hset(hkey, "ticker", schema.encode(tick))
        if session.candles or session.alerts:  # copied: new trades, or an image tick
            candles = self._candles.setdefault(key, {})
            if images:
                candles.clear()
            for c in session.candles:
                candles[c.open_ms] = c
            while len(candles) > SESSION_CANDLES:
                del candles[min(candles)]
            self._alerts_image[key] = session.alerts
        # Everything a late joiner reads is written before the tick is published: a reader
        # that subscribes after the PUBLISH reads this cycle's parts from the hash or the list.
        since = schema.since_key(hkey)
        if key in self._image_dirty and (images or not view.trades):
            # once a second, and as soon as a market goes quiet: a late joiner's tape is whole
            self._image_dirty.discard(key)
            pipe.hset(hkey, mapping={
                "trades": schema.encode(schema.Trades(
                    c=self.id, e=epoch, seq=seq, x=x, s=s, src=view.source,
                    trades=tuple(self._recent.get(key, ())), seen=view.trades_seen,
                    session=_figures(view.session), full=True,
                )),
                "candles": schema.encode(schema.Candles(
                    c=self.id, e=epoch, seq=seq, x=x, s=s, full=True,
                    candles=tuple(sorted(self._candles.get(key, {}).values(),
                                         key=lambda c: c.open_ms)),
                )),
                "alerts": schema.encode(schema.Alerts(
                    c=self.id, e=epoch, seq=seq, x=x, s=s, full=True,
                    alerts=self._alerts_image.get(key, ()),
                )),
            })  # fmt: skip
            pipe.expire(hkey, int(IMAGE_TTL_S))
            pipe.delete(since)  # after the images, which hold all it held
        else:
            # the images lag (rewritten at most once a second): what they miss goes on the
            # market's list, so a reader joining in between misses nothing (nor stays behind
            # for good when the market then goes quiet)
            lagging = tuple(p for p in parts if not isinstance(p, schema.Book | schema.TickerPart))
            if lagging:
                pipe.rpush(since, schema.encode(schema.Tick(x=x, s=s, parts=lagging)))
                pipe.ltrim(since, -schema.SINCE_KEPT, -1)
                pipe.expire(since, int(IMAGE_TTL_S))
        if parts:
            pipe.publish(channel, schema.encode(schema.Tick(x=x, s=s, parts=tuple(parts))))
        return 1 if parts else 0

    def _release(self, r: redis.Redis) -> None:
        """A clean stop: delete our ownership keys so another collector takes over at once."""
        try:
            release = r.register_script(_RELEASE)
            pipe = r.pipeline(transaction=False)
            for x, s in self._epoch:
                release(keys=[schema.owner_key(x, s)], args=[self.id], client=pipe)
            pipe.delete(schema.collector_key(self.id))
            snap = self.store.bus_views(self._seen, candles=0, max_trades=0)
            beat = self._heartbeat(snap, {}, [])
            pipe.publish(
                schema.CONTROL_CHANNEL, schema.encode(msgspec.structs.replace(beat, bye=True))
            )
            pipe.execute()
        except (redis.RedisError, OSError) as exc:
            log.info("bus publisher: could not release ownership (%s)", describe(exc))


def _figures(session: SessionView) -> SessionView:
    """The session's figures without its candles and alerts (published in their own parts)."""
    return replace(session, candles=(), alerts=()) if session.candles or session.alerts else session
