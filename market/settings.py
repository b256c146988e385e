"""Settings: one frozen object built once from the environment (and an optional ``.env``).

Every knob has a named default; a bad value raises ``SettingsError`` naming the variable, so
the app and the CLI fail at start with a message instead of misbehaving later.
The real environment wins over ``.env``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from market.errors import InvalidSymbol, SettingsError

EXCHANGES = ("binance", "bybit", "hyperliquid", "mock", "replay")
REPLAY = "replay"  # a recording (MARKET_REPLAY_FILE) instead of an exchange; never with others
FALLBACKS = ("mock", "none")

DEFAULT_EXCHANGE = "binance"
DEFAULT_SYMBOLS = ("BTCUSDT",)
DEFAULT_FALLBACK = "mock"
DEFAULT_BINANCE_WS_URL = "wss://stream.binance.com:9443"
DEFAULT_BINANCE_REST_URL = "https://api.binance.com"
DEFAULT_BYBIT_WS_URL = "wss://stream.bybit.com/v5/public/spot"
DEFAULT_HYPERLIQUID_WS_URL = "wss://api.hyperliquid.xyz/ws"
DEFAULT_CONNECTION_TIMEOUT_SECONDS = 10.0
DEFAULT_STALE_AFTER_SECONDS = 30.0
MAX_SYMBOLS = 200
DEFAULT_WHALE_NOTIONAL = 100_000.0
WHALE_PREFIX = "WHALE_NOTIONAL_"  # WHALE_NOTIONAL_BTCUSDT=1000000: one symbol's own threshold

SYMBOL_RE = re.compile(r"^[A-Za-z0-9\-]+$")
MAX_SYMBOL_LEN = 30


@dataclass(frozen=True, slots=True)
class Settings:
    exchanges: tuple[str, ...] = (DEFAULT_EXCHANGE,)  # one feed (connection) per exchange
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    fallback: str = DEFAULT_FALLBACK
    binance_ws_url: str = DEFAULT_BINANCE_WS_URL
    binance_rest_url: str = DEFAULT_BINANCE_REST_URL
    bybit_ws_url: str = DEFAULT_BYBIT_WS_URL
    hyperliquid_ws_url: str = DEFAULT_HYPERLIQUID_WS_URL
    connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT_SECONDS
    stale_after: float = DEFAULT_STALE_AFTER_SECONDS
    mock_seed: int | None = None
    replay_file: str | None = None  # MARKET_EXCHANGE=replay: the recording (market/replay.py)
    replay_speed: float = 1.0  # 1 = as recorded, 10 = ten times faster, math.inf = "max"
    whale_notional: float = DEFAULT_WHALE_NOTIONAL  # quote units; 0 turns whale alerts off
    whale_thresholds: tuple[tuple[str, float], ...] = ()  # per symbol, overriding the default
    bus: str | None = None  # MARKET_BUS=redis://…: the dashboard reads a collector's bus

    @property
    def exchange(self) -> str:
        """The first exchange: the one a single-market view starts on."""
        return self.exchanges[0]

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
            exchanges=parse_exchanges("MARKET_EXCHANGE", get("MARKET_EXCHANGE", DEFAULT_EXCHANGE)),
            symbols=_symbols_setting(env, get),
            fallback=parse_choice(
                "MARKET_FALLBACK", get("MARKET_FALLBACK", DEFAULT_FALLBACK), FALLBACKS
            ),
            binance_ws_url=parse_url(
                "BINANCE_WS_URL", get("BINANCE_WS_URL", DEFAULT_BINANCE_WS_URL), ("ws", "wss")
            ),
            binance_rest_url=parse_url(
                "BINANCE_REST_URL",
                get("BINANCE_REST_URL", DEFAULT_BINANCE_REST_URL),
                ("http", "https"),
            ),
            bybit_ws_url=parse_url(
                "BYBIT_WS_URL", get("BYBIT_WS_URL", DEFAULT_BYBIT_WS_URL), ("ws", "wss")
            ),
            hyperliquid_ws_url=parse_url(
                "HYPERLIQUID_WS_URL",
                get("HYPERLIQUID_WS_URL", DEFAULT_HYPERLIQUID_WS_URL),
                ("ws", "wss"),
            ),
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
            bus=parse_bus(env.get("MARKET_BUS", "")),
        )


def read_env_file(path: Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines; blank lines and ``#`` comments are skipped, quotes stripped."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        values[key.strip()] = _env_value(value.strip())
    return values


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
        raise SettingsError(f"{name}={value!r}: must be one of {', '.join(choices)}")
    return lowered


def parse_exchanges(name: str, value: str) -> tuple[str, ...]:
    """``binance`` or a comma-separated list (``binance,bybit``): each a known exchange;
    ``replay`` only alone."""
    names = [part for part in re.split(r"[,\s]+", value.strip()) if part]
    if not names:
        raise SettingsError(f"{name}={value!r}: must be one or more of {', '.join(EXCHANGES)}")
    exchanges = tuple(dict.fromkeys(parse_choice(name, part, EXCHANGES) for part in names))
    if REPLAY in exchanges and len(exchanges) > 1:
        raise SettingsError(f"{name}={value!r}: replay cannot be combined with other exchanges")
    return exchanges


def parse_speed(name: str, value: str) -> float:
    """A replay speed: ``max`` (as fast as it goes) or a factor > 0 (1 = as recorded)."""
    text = value.strip().lower()
    try:
        speed = math.inf if text == "max" else float(text.removesuffix("x"))  # "10x" is 10
    except ValueError:
        speed = math.nan
    if not 0 < speed <= math.inf or (speed == math.inf and text != "max"):
        raise SettingsError(f"{name}={value!r}: must be max or a number > 0 (1 = as recorded)")
    return speed


Getter = Callable[[str, str], str]


def _replaying(get: Getter) -> bool:
    return REPLAY in parse_exchanges("MARKET_EXCHANGE", get("MARKET_EXCHANGE", DEFAULT_EXCHANGE))


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
            raise SettingsError(f"MARKET_REPLAY_FILE={path!r}: no such file")
    return {"replay_file": path, "replay_speed": speed}


def parse_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    try:
        parts = urlsplit(value)
    except ValueError as exc:  # e.g. "Invalid IPv6 URL"
        raise SettingsError(f"{name}={value!r}: not a URL ({exc})") from None
    if parts.scheme not in schemes or not parts.netloc:
        raise SettingsError(f"{name}={value!r}: must be a {'/'.join(schemes)}:// URL with a host")
    return value.rstrip("/")


def parse_seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r}: must be a number of seconds") from None
    if not 0 < seconds <= 86_400:
        raise SettingsError(f"{name}={value!r}: must be > 0 and <= 86400 seconds")
    return seconds


def parse_notional(name: str, value: str) -> float:
    try:
        notional = float(value.replace("_", ""))
    except ValueError:
        raise SettingsError(
            f"{name}={value!r}: must be a notional in quote units, e.g. 100000"
        ) from None
    if not (0 <= notional < float("inf")):
        raise SettingsError(f"{name}={value!r}: must be >= 0 (0 turns whale alerts off)")
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
    from market.bus.link import check_url  # only a bus user imports redis

    return check_url("MARKET_BUS", text)


def parse_seed(value: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"MOCK_SEED={value!r}: must be an integer") from None


def validate_symbol(raw: str) -> str:
    """One symbol, normalized to upper case; raises ``InvalidSymbol`` naming the problem."""
    symbol = raw.strip()
    if not symbol:
        raise InvalidSymbol("empty symbol")
    if len(symbol) > MAX_SYMBOL_LEN:
        raise InvalidSymbol(f"{symbol[:MAX_SYMBOL_LEN]}…: longer than {MAX_SYMBOL_LEN} characters")
    if not SYMBOL_RE.match(symbol):
        raise InvalidSymbol(f"{symbol!r}: only letters, digits and '-' are allowed")
    return symbol.upper()


def parse_symbols(text: str) -> tuple[str, ...]:
    """Comma (or space) separated symbols: validated, upper-cased, duplicates dropped."""
    symbols: list[str] = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        symbol = validate_symbol(part)
        if symbol not in symbols:
            symbols.append(symbol)
    if not symbols:
        raise InvalidSymbol("no symbols given")
    if len(symbols) > MAX_SYMBOLS:
        raise InvalidSymbol(f"{len(symbols)} symbols: at most {MAX_SYMBOLS} at once")
    return tuple(symbols)


def parse_symbols_setting(text: str) -> tuple[str, ...]:
    try:
        return parse_symbols(text)
    except InvalidSymbol as exc:
        raise SettingsError(f"MARKET_SYMBOLS={text!r}: {exc}") from exc
