"""What every venue module shares: the ``Venue`` declaration, the actions a session asks for,
the ``Session`` base, the validators of the exchanges' numbers, and msgspec's typed levels.

A venue module is, top to bottom: a short declarative header (URLs, limits, pings, symbol
form), pure parse functions, a sans-I/O ``Session`` in the style of h11 and websockets'
``protocol.py``, and its ``VENUE`` declaration, which the registry (``market/venues/__init__``)
lists::

    session.opened(now)                → actions     (the connection is open: subscribe…)
    session.receive(frame, now)        → events, actions
    session.snapshot(symbol, body, now) → events, actions   (a REST body we fetched)
    session.changed(added, removed, now) → actions   (live symbol changes)
    session.rebuild(symbol, reason, now) → actions   (a book must be rebuilt)
    session.timer(token, now)          → events, actions   (a ``Later`` came due)

No asyncio, no sockets, no clock of its own: ``market.connection`` carries the actions out on
a live connection, ``market.replay`` on a recording (where ``Send`` and ``FetchSnapshot`` do
nothing: the recording holds what came of them), and every behaviour is tested with strings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Protocol

import msgspec
import orjson

from market.analytics import MINUTE_MS, Candle
from market.errors import BadMessage
from market.events import Event, Levels
from market.settings import Settings, UrlSetting
from market.sync import SequencedSync, Sync
from market.urls import HTTP_SCHEMES, WS_SCHEMES

_INF = math.inf

# -- actions: what a session asks its runner to do (a small closed set) ------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send these frames on the open connection (in order, paced by ``send_interval``)."""

    frames: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class FetchSnapshot:
    """GET ``url`` (a REST book for ``symbol``); the body goes to ``session.snapshot``."""

    symbol: str
    url: str


@dataclass(frozen=True, slots=True)
class Resubscribe:
    """Ask the stream for ``symbol`` again (its ``frames``): the venue answers with a book."""

    symbol: str
    frames: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Leave this connection and connect again."""

    reason: str


@dataclass(frozen=True, slots=True)
class NotListed:
    """The venue does not serve ``symbol``: say so on its market and never retry it blindly."""

    symbol: str
    detail: str


@dataclass(frozen=True, slots=True)
class Rename:
    """The venue spells a watched symbol ``new`` (HyperLiquid's ``kPEPE`` for ``KPEPE``)."""

    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Later:
    """Call ``session.timer(token, now)`` in ``delay`` s, if this connection is still open."""

    delay: float
    token: str


@dataclass(frozen=True, slots=True)
class Status:
    """Show ``detail`` on the feed's status line (a refusal worth a human's attention)."""

    detail: str


Action = Send | FetchSnapshot | Resubscribe | Reconnect | NotListed | Rename | Later | Status
NO_ACTIONS: tuple[Action, ...] = ()
Output = tuple[list[Event], Sequence[Action]]


class Session:
    """One venue's protocol for one connection's life and the symbols it carries.

    ``symbols`` are the venue's names (``BTC`` on HyperLiquid), in the order watched; the
    runner keeps them in step with its pipeline through ``changed``. ``unlisted`` holds the
    symbols the venue refused, with why.
    """

    exchange: ClassVar[str]
    sync_factory: ClassVar[Callable[..., Sync]] = SequencedSync
    ping_frame: ClassVar[bytes | None] = None  # an application ping, where the venue wants one
    ping_interval: ClassVar[float] = _INF
    send_interval: ClassVar[float] = 0.0  # pause after each frame we send
    max_age: ClassVar[float] = _INF  # the venue closes connections older than this
    max_age_note: ClassVar[str] = "the venue closes older connections"
    syncing: ClassVar[str] = "syncing: waiting for the book"  # an unsynced market, after connect
    max_frame_bytes: ClassVar[int] = 1 << 20  # the largest WebSocket frame accepted
    max_rest_bytes: ClassVar[int] = 4 << 20  # the largest REST body accepted

    def __init__(self, settings: Settings, symbols: Iterable[str] = ()) -> None:
        self.settings = settings
        self.symbols: dict[str, None] = dict.fromkeys(symbols)
        self.unlisted: dict[str, str] = {}

    @staticmethod
    def parse(raw: str | bytes, received_at: float) -> list[Event]:
        """The venue's frame parser (pure): events, replies as ``ServerNotice``s."""
        raise NotImplementedError

    @staticmethod
    def venue_symbol(symbol: str) -> str:
        """The venue's name of the user's ``symbol``; ``InvalidSymbol`` when it cannot be."""
        return symbol

    def url(self) -> str:
        raise NotImplementedError

    def opened(self, now: float) -> Sequence[Action]:
        """A connection is open: ask for every book."""
        return NO_ACTIONS

    def closed(self) -> None:
        """The connection is gone: forget what belonged to it (pending requests…)."""

    def receive(self, frame: str | bytes, now: float) -> Output:
        """One frame → events for the pipeline and actions; ``BadMessage`` when malformed."""
        raise NotImplementedError

    def snapshot(self, symbol: str, body: bytes | str, now: float) -> Output:
        """The REST book of ``symbol`` we fetched (``FetchSnapshot``)."""
        raise BadMessage(f"{self.exchange} has no REST snapshots")

    def refused(self, symbol: str, status: int, body: bytes) -> Sequence[Action]:
        """A REST request for ``symbol`` got HTTP ``status``: actions, or () to retry later."""
        return NO_ACTIONS

    def refusal(self, status: int, body: bytes) -> str:
        """A short reason for a refused REST request, for the status line."""
        return f"HTTP {status}"

    def changed(self, added: list[str], removed: list[str], now: float) -> Sequence[Action]:
        """Symbols added and removed while connected."""
        for symbol in removed:
            self.symbols.pop(symbol, None)
            self.unlisted.pop(symbol, None)
        self.symbols.update(dict.fromkeys(added))
        return NO_ACTIONS

    def rebuild(self, symbol: str, reason: str) -> Sequence[Action]:
        """What to do to get ``symbol``'s book again (the runner paces it)."""
        return NO_ACTIONS

    def timer(self, token: str, now: float) -> Output:
        return [], NO_ACTIONS

    @staticmethod
    def klines_request(
        base_url: str, symbol: str, now_ms: int, limit: int, ws_url: str
    ) -> KlineRequest | None:
        """The REST request for ``symbol``'s (the venue's name) recent one-minute candles, or
        None where the venue has none; ``ws_url`` tells a venue's market kind where it must."""
        return None

    @staticmethod
    def parse_klines(raw: bytes | str) -> list[Kline]:
        """The response of ``klines_request``: candles, oldest first; ``BadMessage`` if odd."""
        raise BadMessage("no candles over REST on this venue")

    def not_listed(self, symbol: str, detail: str) -> list[Action]:
        """Remember a refused symbol once; the action that says so, or nothing."""
        if symbol not in self.symbols or symbol in self.unlisted:
            return []
        self.unlisted[symbol] = detail
        return [NotListed(symbol, detail)]


# -- the declaration: what the rest of the house knows of a venue -----------------------------


class Simulator(Protocol):
    """A simulated venue's markets: their first events, then each step's."""

    def start(self, now: float) -> list[Event]: ...
    def step(self, now: float) -> list[Event]: ...


MarketKind = str  # "spot", "linear" (USDⓈ-margined perpetuals), "perp"


@dataclass(frozen=True, slots=True)
class Venue:
    """A venue as the rest of the house sees it; the registry lists one per venue module.

    Settings (``MARKET_EXCHANGE``'s names, the URL variables and their defaults), the CLI's
    choices and help, the page's exchange list, recording detection, the backfill and every
    error text naming the venues are built from these, so a venue is named in its own module
    only.
    """

    name: str  # MARKET_EXCHANGE's word and the store's key: lower case, no space
    display: str  # how a person reads it
    session: type[Session] | None  # None: a simulated venue (market.feed.SimulatedFeed)
    ws_url: UrlSetting | None = None
    rest_url: UrlSetting | None = None
    kinds: tuple[MarketKind, ...] = ("spot",)
    # recording detection: a frame whose first 40 characters hold one of ``signatures``, or
    # that starts with ``greeting``, is this venue's; ``rest_snapshots``: a recording's bare
    # REST book bodies (``Record.snapshot_symbol``) are this venue's
    signatures: tuple[str, ...] = ()
    greeting: str | None = None
    rest_snapshots: bool = False
    simulated: bool = False  # labelled SIMULATED everywhere; MARKET_FALLBACK's choice
    # a simulated venue's markets: ``simulator(symbols, seed)`` gives their events
    simulator: Callable[[tuple[str, ...], int | None], Simulator] | None = None

    @property
    def urls(self) -> tuple[UrlSetting, ...]:
        return tuple(u for u in (self.ws_url, self.rest_url) if u is not None)

    @property
    def recordable(self) -> bool:
        """A real venue whose raw frames ``python -m market record`` can write."""
        return self.session is not None

    @property
    def klines(self) -> bool:
        """Whether the venue serves one-minute candles over REST (the history's backfill)."""
        return self.session is not None and self.session.klines_request is not (
            Session.klines_request
        )

    def recognises(self, raw: str, rest_snapshot: bool) -> bool:
        """Whether a recorded frame (``raw``; ``rest_snapshot``: a bare REST book) is ours."""
        if rest_snapshot:
            return self.rest_snapshots
        head = raw[:40]
        return any(s in head for s in self.signatures) or (
            self.greeting is not None and raw.startswith(self.greeting)
        )


# Every venue declared, in the order their modules were imported; each venue module's last
# line registers its ``VENUE``. Written at import (under the import lock), read after.
_REGISTERED: dict[str, Venue] = {}


def register(venue: Venue) -> Venue:
    """Add ``venue`` to the registry (``market.venues.VENUES``); a name is taken once."""
    if _REGISTERED.setdefault(venue.name, venue) is not venue:
        raise ValueError(f"two venues are named {venue.name!r}")
    return venue


def registered() -> tuple[Venue, ...]:
    return tuple(_REGISTERED.values())


def ws_setting(env: str, default: str) -> UrlSetting:
    return UrlSetting(env, default, WS_SCHEMES)


def rest_setting(env: str, default: str) -> UrlSetting:
    return UrlSetting(env, default, HTTP_SCHEMES)


# -- one-minute candles over REST (the history's backfill): the venues' common vocabulary ------

DEFAULT_KLINES = 240  # the chart's window: four hours of one-minute candles


@dataclass(frozen=True, slots=True)
class Kline:
    """One closed (or forming) one-minute candle as a venue reports it; None: not reported."""

    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float  # base units
    notional: float | None  # quote volume (Σ price × size)
    trades: int | None
    buy_volume: float | None  # taker-buy base volume

    @property
    def sell_volume(self) -> float | None:
        return None if self.buy_volume is None else self.volume - self.buy_volume

    def candle(self) -> Candle:
        return Candle(
            self.open_ms, self.open, self.high, self.low, self.close, self.volume,
            self.trades or 0, self.notional or 0.0,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class KlineRequest:
    method: str  # GET or POST
    url: str
    body: bytes | None = None


def kline_excerpt(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return repr(text[:60] + ("…" if len(text) > 60 else ""))


def kline_number(value: Any, raw: bytes | str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise BadMessage(f"klines: not a number {value!r:.30} in {kline_excerpt(raw)}") from None
    if not math.isfinite(x) or x < 0:
        raise BadMessage(f"klines: bad number {value!r:.30} in {kline_excerpt(raw)}")
    return x


def kline_json(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadMessage(f"klines: not JSON: {kline_excerpt(raw)}") from None


def checked_kline(k: Kline, raw: bytes | str) -> Kline:
    if k.open_ms % MINUTE_MS or not (
        k.low <= min(k.open, k.close) <= max(k.open, k.close) <= k.high
    ):
        raise BadMessage(f"klines: inconsistent candle at {k.open_ms} in {kline_excerpt(raw)}")
    return k


# -- validators of the exchanges' numbers ------------------------------------------------------
# Typed decoding (msgspec) checks these in C on the hot paths; the functions below serve the
# rest. Each raises TypeError/ValueError, which the parser turns into ``BadMessage``.
# Exchanges send numbers as strings; a bool or a null is never a number.

MAX_FLOAT = 1.7e308  # msgspec takes finite bounds only: this one refuses inf
Price = Annotated[float, msgspec.Meta(gt=0.0, le=MAX_FLOAT)]
Qty = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_FLOAT)]
WireLevels = tuple[tuple[Price, Qty], ...]


def decode_object(raw: str | bytes) -> dict[str, Any]:
    """Decode one frame that must be a JSON object; ``BadMessage`` for anything else."""
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadMessage(f"not JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise BadMessage(f"expected a JSON object, got {type(msg).__name__}")
    return msg


def number(raw: object) -> float:
    """A finite number (string or JSON number)."""
    if type(raw) is bool or raw is None or not isinstance(raw, (str, int, float)):
        raise TypeError(f"not a number: {raw!r:.40}")
    value = float(raw)
    if not -_INF < value < _INF:  # also false for NaN
        raise ValueError(f"not a finite number: {raw!r:.40}")
    return value


def integer(raw: object) -> int:
    """An integer id or time (a JSON integer or a string of digits), at most 19 digits."""
    if type(raw) is int:
        value = raw
    elif type(raw) is str and 0 < len(raw) <= 20 and raw.lstrip("-").isdigit():
        value = int(raw)
    else:
        raise TypeError(f"not an integer: {raw!r:.40}")
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"integer out of range: {str(value)[:24]}…")
    return value


def positive(raw: object) -> float:
    value = number(raw)
    if value <= 0:
        raise ValueError(f"not a positive number: {raw!r:.40}")
    return value


def non_negative(raw: object) -> float:
    value = number(raw)
    if value < 0:
        raise ValueError(f"negative: {raw!r:.40}")
    return value


def price(raw: object) -> float | None:
    """A quoted price where "0" means "none" (an empty side): None then."""
    value = non_negative(raw)
    return value if value > 0 else None


def optional(raw: object, check: Callable[[object], float | None] = positive) -> float | None:
    """``check(raw)``, or None where the exchange sent nothing (absent, null or "")."""
    return None if raw is None or raw == "" else check(raw)


def symbol(raw: object) -> str:
    if type(raw) is not str or not raw:
        raise TypeError(f"symbol must be a non-empty string, got {raw!r:.40}")
    return raw


def levels(raw: object) -> Levels:
    """``[["price", "qty"], …]`` → levels; anything else (NaN, negative, a string) is refused."""
    if type(raw) is not list:
        raise TypeError(f"levels must be a list, got {type(raw).__name__}")
    out = []
    for level in raw:
        if type(level) is not list or len(level) < 2:
            raise TypeError(f"a level must be [price, qty], got {level!r:.40}")
        px, qty = float(level[0]), float(level[1])
        if not (0 < px < _INF and 0 <= qty < _INF):  # also false for NaN
            raise ValueError(f"bad level {level!r:.60}")
        out.append((px, qty))
    return tuple(out)
