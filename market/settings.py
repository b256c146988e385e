"""Settings: one frozen object built once from the environment (and an optional ``.env``).

Every knob has a named default; a bad value raises ``SettingsError`` naming the variable, so
the app and the CLI fail at start with a message instead of misbehaving later.
The real environment wins over ``.env``.

Settings sits at the bottom of the house: it imports only the error tree and the leaf helpers
(``market.redact``, ``market.symbols``, ``market.urls``). The venues' own knobs (their names for
``MARKET_EXCHANGE``, their URL variables and defaults, the simulated venue for
``MARKET_FALLBACK``) come from their declarations: ``market.venues`` passes each to
``declare()`` as it is imported, and ``from_env`` reads what was declared.

Messages never echo a whole input or a secret: a value is quoted by ``market.redact.shown``
(an excerpt, URL credentials masked, nothing at all of a variable whose name says it is a
secret), and a malformed ``.env`` line is named by file and line number only.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from market.errors import InvalidSymbol, SettingsError
from market.redact import shown
from market.symbols import parse_symbols, validate_symbol
from market.urls import WS_SCHEMES, check_redis_url, parse_db_url, parse_url

REPLAY = "replay"  # a recording (MARKET_REPLAY_FILE) instead of an exchange; never with others
NO_FALLBACK = "none"  # MARKET_FALLBACK=none: a refused venue stays refused

DEFAULT_SYMBOLS = ("BTCUSDT",)
DEFAULT_CONNECTION_TIMEOUT_SECONDS = 10.0
DEFAULT_STALE_AFTER_SECONDS = 30.0
DEFAULT_VIEWER_GRACE_SECONDS = 60.0  # a symbol no open tab wants is fed this long after
DEFAULT_WHALE_NOTIONAL = 100_000.0
WHALE_PREFIX = "WHALE_NOTIONAL_"  # WHALE_NOTIONAL_BTCUSDT=1000000: one symbol's own threshold

# History (market/history): where it is kept, and for how long (0 days: forever)
DEFAULT_MARKET_DB = "sqlite:///data/market.db"  # relative to the working directory
DEFAULT_DB_SERIES_DAYS = 7.0
DEFAULT_DB_CANDLE_DAYS = 0.0

MAX_ENV_FILE_BYTES = 1 << 20  # a .env is a few hundred bytes; more is not a settings file


# -- what the venues declare (market/venues/): their names and URL settings -------------------


@dataclass(frozen=True, slots=True)
class UrlSetting:
    """One URL a venue reads from the environment: its variable, its default, its schemes."""

    env: str  # the variable: <VENUE>_WS_URL
    default: str
    schemes: tuple[str, ...] = WS_SCHEMES


class VenueKnobs(Protocol):
    """What settings needs of a venue's declaration (``market.venues.base.Venue``)."""

    @property
    def name(self) -> str: ...
    @property
    def urls(self) -> tuple[UrlSetting, ...]: ...
    @property
    def simulated(self) -> bool: ...


# The venues declared, in registry order, and the default one: ``market.venues`` declares its
# own as it is imported (settings sits below the venues and never imports them). Written once
# at import (under the import lock), read after.
_DECLARED: dict[str, VenueKnobs] = {}
_DEFAULT: list[str] = []


def declare(*venues: VenueKnobs, default: str | None = None) -> None:
    """Make ``venues`` known to settings: their names as exchanges, their URL settings;
    ``default``: ``MARKET_EXCHANGE``'s default (else the first real venue)."""
    for venue in venues:
        _DECLARED[venue.name] = venue
    if default is not None:
        _DEFAULT[:] = [default]


def declared() -> tuple[VenueKnobs, ...]:
    if not _DECLARED:
        raise SettingsError("no venue is declared: import market.venues first")
    return tuple(_DECLARED.values())


def exchange_names() -> tuple[str, ...]:
    """Every name ``MARKET_EXCHANGE`` takes: the declared venues, then ``replay``."""
    return (*(v.name for v in declared()), REPLAY)


def fallback_names() -> tuple[str, ...]:
    """``MARKET_FALLBACK``'s choices: the simulated venues, then ``none``."""
    return (*(v.name for v in declared() if v.simulated), NO_FALLBACK)


def _default_exchanges() -> tuple[str, ...]:
    real = [v.name for v in declared() if not v.simulated]
    return (_DEFAULT[0],) if _DEFAULT and _DEFAULT[0] in _DECLARED else tuple(real[:1])


def _default_fallback() -> str:
    return fallback_names()[0]


@dataclass(frozen=True, slots=True)
class Settings:
    # one feed (connection) per exchange; by default the first venue declared
    exchanges: tuple[str, ...] = field(default_factory=_default_exchanges)
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    fallback: str = field(default_factory=_default_fallback)  # MARKET_FALLBACK
    # every venue's URL settings that differ from its declared default: (variable, URL)
    urls: tuple[tuple[str, str], ...] = ()
    connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT_SECONDS
    stale_after: float = DEFAULT_STALE_AFTER_SECONDS
    mock_seed: int | None = None
    replay_file: str | None = None  # MARKET_EXCHANGE=replay: the recording (market/replay.py)
    replay_speed: float = 1.0  # 1 = as recorded, 10 = ten times faster, math.inf = "max"
    whale_notional: float = DEFAULT_WHALE_NOTIONAL  # quote units; 0 turns whale alerts off
    whale_thresholds: tuple[tuple[str, float], ...] = ()  # per symbol, overriding the default
    viewer_grace: float = DEFAULT_VIEWER_GRACE_SECONDS  # MARKET_VIEWER_GRACE_SECONDS
    # -- history (market/history): MARKET_DB and its retention ---------------------------------
    db: str = DEFAULT_MARKET_DB  # MARKET_DB: sqlite:///PATH, postgresql://…, or none
    db_series_days: float = DEFAULT_DB_SERIES_DAYS  # one-second series kept this long
    db_candle_days: float = DEFAULT_DB_CANDLE_DAYS  # 0: candles, alerts, statuses forever
    bus: str | None = None  # MARKET_BUS=redis://…: the dashboard reads a collector's bus

    @property
    def exchange(self) -> str:
        """The first exchange: the one a single-market view starts on."""
        return self.exchanges[0]

    def url(self, setting: UrlSetting) -> str:
        """A venue's URL: from the environment (``setting.env``), else its declared default."""
        for env, value in self.urls:
            if env == setting.env:
                return value
        return setting.default

    def with_urls(self, **urls: str) -> Settings:
        """These settings with some URLs set by variable name (``<VENUE>_WS_URL=…``), unchecked:
        for tests and tools that point a venue at a loopback server."""
        merged = {**dict(self.urls), **urls}
        return replace(self, urls=tuple(sorted(merged.items())))

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
    ) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``) over ``env_file``."""
        env: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            env.update(read_env_file(Path(env_file)))
        env.update(os.environ if environ is None else environ)

        def get(name: str, default: str) -> str:
            value = env.get(name, "").strip()
            return value if value else default

        return cls(
            exchanges=parse_exchanges(
                "MARKET_EXCHANGE", get("MARKET_EXCHANGE", _default_exchanges()[0])
            ),
            symbols=_symbols_setting(env, get),
            fallback=parse_choice(
                "MARKET_FALLBACK", get("MARKET_FALLBACK", _default_fallback()), fallback_names()
            ),
            urls=_url_settings(get),
            connection_timeout=parse_seconds(
                "CONNECTION_TIMEOUT_SECONDS",
                get("CONNECTION_TIMEOUT_SECONDS", str(DEFAULT_CONNECTION_TIMEOUT_SECONDS)),
            ),
            stale_after=parse_seconds(
                "STALE_AFTER_SECONDS", get("STALE_AFTER_SECONDS", str(DEFAULT_STALE_AFTER_SECONDS))
            ),
            mock_seed=parse_seed(env.get("MOCK_SEED", "").strip()),
            **_replay_settings(env, get),
            whale_notional=parse_notional(
                "WHALE_NOTIONAL", get("WHALE_NOTIONAL", str(DEFAULT_WHALE_NOTIONAL))
            ),
            whale_thresholds=parse_whale_thresholds(env),
            viewer_grace=parse_seconds(
                "MARKET_VIEWER_GRACE_SECONDS",
                get("MARKET_VIEWER_GRACE_SECONDS", str(DEFAULT_VIEWER_GRACE_SECONDS)),
            ),
            **_history_settings(get),
            bus=parse_bus(env.get("MARKET_BUS", "")),
        )


def read_env_file(path: Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines; blank lines and ``#`` comments are skipped, quotes stripped.

    ``SettingsError`` naming the file (and line) for a file over ``MAX_ENV_FILE_BYTES``, a
    line that is not UTF-8 or not ``KEY=VALUE``; a bad line's text is never quoted (it may
    be a key pasted on its own), only the variable name it starts with, if any.
    """
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_ENV_FILE_BYTES + 1)  # bounded, whatever the file's size
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > MAX_ENV_FILE_BYTES:
        raise SettingsError(
            f"{path}: larger than {MAX_ENV_FILE_BYTES // 1024} KB: not a settings file"
        )
    values: dict[str, str] = {}
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise SettingsError(
                f"{path}:{number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column "
                f"{exc.start + 1}); save the file as UTF-8"
            ) from None
        line = line.removeprefix("\ufeff") if number == 1 else line  # a BOM
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SettingsError(f"{path}:{number}: expected KEY=VALUE, got {_line_hint(line)}")
        values[key] = _env_value(value.strip())
    return values


_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,59}")


def _line_hint(line: str) -> str:
    """What a bad ``.env`` line looks like, without its text: it may hold a secret."""
    m = _VARIABLE.match(line)
    name = m.group(0) if m and m.end() < len(line) and not line[m.end()].isalnum() else None
    if name is not None and name.isupper() and ("_" in name or len(name) <= 12):
        return f"a line starting {name} ({len(line)} characters, the rest not shown)"
    return f"a line of {len(line)} characters (not shown: it may hold a secret)"


def _env_value(value: str) -> str:
    """A quoted value (maybe followed by a comment) or a bare one with an inline comment."""
    if value[:1] in ("'", '"'):
        end = value.find(value[0], 1)
        if end > 0:
            rest = value[end + 1 :].strip()
            if not rest or rest.startswith("#"):
                return value[1:end]
    return re.split(r"(?:^|\s)#", value, maxsplit=1)[0].rstrip()  # an inline comment


def parse_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    lowered = value.strip().lower()
    if lowered not in choices:
        raise SettingsError(f"{name}={shown(name, value)}: must be one of {', '.join(choices)}")
    return lowered


def parse_exchanges(name: str, value: str) -> tuple[str, ...]:
    """One declared venue or a comma-separated list of them: each a known exchange;
    ``replay`` only alone."""
    known = exchange_names()
    names = [part for part in re.split(r"[,\s]+", value.strip()) if part]
    if not names:
        raise SettingsError(
            f"{name}={shown(name, value)}: must be one or more of {', '.join(known)}"
        )
    exchanges = tuple(dict.fromkeys(parse_choice(name, part, known) for part in names))
    if REPLAY in exchanges and len(exchanges) > 1:
        raise SettingsError(
            f"{name}={shown(name, value)}: replay cannot be combined with other exchanges"
        )
    return exchanges


def parse_speed(name: str, value: str) -> float:
    """A replay speed: ``max`` (as fast as it goes) or a factor > 0 (1 = as recorded)."""
    text = value.strip().lower()
    try:
        speed = math.inf if text == "max" else float(text.removesuffix("x"))  # "10x" is 10
    except ValueError:
        speed = math.nan
    if not 0 < speed <= math.inf or (speed == math.inf and text != "max"):
        raise SettingsError(
            f"{name}={shown(name, value)}: must be max or a number > 0 (1 = as recorded)"
        )
    return speed


Getter = Callable[[str, str], str]


def _replaying(get: Getter) -> bool:
    return REPLAY in parse_exchanges(
        "MARKET_EXCHANGE", get("MARKET_EXCHANGE", _default_exchanges()[0])
    )


def _url_settings(get: Getter) -> tuple[tuple[str, str], ...]:
    """Every declared venue's URL settings, checked; only those not at their default kept."""
    urls = {}
    for venue in declared():
        for setting in venue.urls:
            value = parse_url(setting.env, get(setting.env, setting.default), setting.schemes)
            if value != setting.default:
                urls[setting.env] = value
    return tuple(sorted(urls.items()))


def _symbols_setting(env: Mapping[str, str], get: Getter) -> tuple[str, ...]:
    """``MARKET_SYMBOLS``; a replay without it watches every symbol of the recording (``()``,
    resolved by ``market.replay.check_settings``)."""
    if not env.get("MARKET_SYMBOLS", "").strip() and _replaying(get):
        return ()
    return parse_symbols_setting(get("MARKET_SYMBOLS", ",".join(DEFAULT_SYMBOLS)))


def _replay_settings(env: Mapping[str, str], get: Getter) -> dict[str, Any]:
    """``MARKET_REPLAY_FILE`` (required, and must exist, with ``MARKET_EXCHANGE=replay``) and
    ``MARKET_REPLAY_SPEED`` (``1`` as recorded, ``10``, … or ``max``)."""
    path = env.get("MARKET_REPLAY_FILE", "").strip() or None
    speed = parse_speed("MARKET_REPLAY_SPEED", get("MARKET_REPLAY_SPEED", "1"))
    if _replaying(get):
        if path is None:
            raise SettingsError(
                "MARKET_REPLAY_FILE is not set: MARKET_EXCHANGE=replay needs a recording "
                "(made with `python -m market record`)"
            )
        if not Path(path).is_file():
            raise SettingsError(
                f"MARKET_REPLAY_FILE={shown('MARKET_REPLAY_FILE', path)}: no such file"
            )
    return {"replay_file": path, "replay_speed": speed}


def parse_seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise SettingsError(f"{name}={shown(name, value)}: must be a number of seconds") from None
    if not 0 < seconds <= 86_400:
        raise SettingsError(f"{name}={shown(name, value)}: must be > 0 and <= 86400 seconds")
    return seconds


def parse_notional(name: str, value: str) -> float:
    try:
        notional = float(value.replace("_", ""))
    except ValueError:
        raise SettingsError(
            f"{name}={shown(name, value)}: must be a notional in quote units, e.g. 100000"
        ) from None
    if not (0 <= notional < float("inf")):
        raise SettingsError(f"{name}={shown(name, value)}: must be >= 0 (0 turns whale alerts off)")
    return notional


def parse_whale_thresholds(env: Mapping[str, str]) -> tuple[tuple[str, float], ...]:
    """``WHALE_NOTIONAL_<SYMBOL>=<notional>`` variables, sorted by symbol."""
    out = []
    for name, value in sorted(env.items()):
        if not name.startswith(WHALE_PREFIX) or not value.strip():
            continue
        try:
            symbol = validate_symbol(name[len(WHALE_PREFIX) :]).replace("-", "")
        except InvalidSymbol as exc:
            raise SettingsError(f"{name}: the name must end with a symbol ({exc})") from None
        out.append((symbol, parse_notional(name, value.strip())))
    return tuple(sorted(out))


# -- MARKET_BUS (market/bus) ------------------------------------------------------------------


def parse_bus(value: str) -> str | None:
    """``MARKET_BUS``: empty (or ``none``) for the single process, else a ``redis://HOST[:PORT]
    [/DB]`` URL (checked here; the password never appears in an error)."""
    text = value.strip()
    if not text or text.lower() == "none":
        return None
    return check_redis_url("MARKET_BUS", text)


def parse_seed(value: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"MOCK_SEED={shown('MOCK_SEED', value)}: must be an integer") from None


def parse_symbols_setting(text: str) -> tuple[str, ...]:
    try:
        return parse_symbols(text)
    except InvalidSymbol as exc:
        raise SettingsError(f"MARKET_SYMBOLS={shown('MARKET_SYMBOLS', text)}: {exc}") from exc


# -- history: MARKET_DB, MARKET_DB_SERIES_DAYS, MARKET_DB_CANDLE_DAYS


def _history_settings(get: Getter) -> dict[str, Any]:
    url = parse_db_url(get("MARKET_DB", DEFAULT_MARKET_DB), "MARKET_DB")
    return {
        "db": "none" if not url.enabled else get("MARKET_DB", DEFAULT_MARKET_DB),
        "db_series_days": parse_days(
            "MARKET_DB_SERIES_DAYS", get("MARKET_DB_SERIES_DAYS", str(DEFAULT_DB_SERIES_DAYS))
        ),
        "db_candle_days": parse_days(
            "MARKET_DB_CANDLE_DAYS", get("MARKET_DB_CANDLE_DAYS", str(DEFAULT_DB_CANDLE_DAYS))
        ),
    }


def parse_days(name: str, value: str) -> float:
    """A retention in days: a number >= 0 (0 keeps forever)."""
    try:
        days = float(value)
    except ValueError:
        raise SettingsError(
            f"{name}={value[:60]!r}: must be a number of days (0: forever)"
        ) from None
    if not 0 <= days <= 365_000:
        raise SettingsError(f"{name}={value[:60]!r}: must be >= 0 days (0: forever)")
    return days
