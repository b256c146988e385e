"""Settings: one frozen object built once from the environment (and an optional ``.env``).

Every knob has a named default; a bad value raises ``SettingsError`` naming the variable, so
the app and the CLI fail at start with a message instead of misbehaving later.
The real environment wins over ``.env``.

Messages never echo a whole input or a secret: a value is quoted by ``shown()`` (at most
``EXCERPT_CHARS`` characters, URL credentials masked, nothing at all of a variable whose name
says it is a secret), a malformed ``.env`` line is named by file and line number only, and
``redact_url()`` masks ``user:password@`` (and secret-looking query values) wherever a URL is
logged or shown.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

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
DEFAULT_BYBIT_REST_URL = "https://api.bybit.com"
DEFAULT_HYPERLIQUID_WS_URL = "wss://api.hyperliquid.xyz/ws"
DEFAULT_HYPERLIQUID_REST_URL = "https://api.hyperliquid.xyz"
DEFAULT_CONNECTION_TIMEOUT_SECONDS = 10.0
DEFAULT_STALE_AFTER_SECONDS = 30.0
DEFAULT_VIEWER_GRACE_SECONDS = 60.0  # a symbol no open tab wants is fed this long after
MAX_SYMBOLS = 200
DEFAULT_WHALE_NOTIONAL = 100_000.0
WHALE_PREFIX = "WHALE_NOTIONAL_"  # WHALE_NOTIONAL_BTCUSDT=1000000: one symbol's own threshold

# History (market/history): where it is kept, and for how long (0 days: forever)
DEFAULT_MARKET_DB = "sqlite:///data/market.db"  # relative to the working directory
DEFAULT_DB_SERIES_DAYS = 7.0
DEFAULT_DB_CANDLE_DAYS = 0.0

SYMBOL_RE = re.compile(r"^[A-Za-z0-9\-]+$")
MAX_SYMBOL_LEN = 30

EXCERPT_CHARS = 60  # the most of any value an error message quotes
MAX_ENV_FILE_BYTES = 1 << 20  # a .env is a few hundred bytes; more is not a settings file
MAX_URL_CHARS = 2048
WS_SCHEMES = ("ws", "wss")
HTTP_SCHEMES = ("http", "https")
# a variable (or query parameter) whose name holds one of these is never quoted
_SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASS|PWD|CREDENTIAL|AUTH|SIGNATURE", re.I)


@dataclass(frozen=True, slots=True)
class Settings:
    exchanges: tuple[str, ...] = (DEFAULT_EXCHANGE,)  # one feed (connection) per exchange
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    fallback: str = DEFAULT_FALLBACK
    binance_ws_url: str = DEFAULT_BINANCE_WS_URL
    binance_rest_url: str = DEFAULT_BINANCE_REST_URL
    bybit_ws_url: str = DEFAULT_BYBIT_WS_URL
    bybit_rest_url: str = DEFAULT_BYBIT_REST_URL
    hyperliquid_ws_url: str = DEFAULT_HYPERLIQUID_WS_URL
    hyperliquid_rest_url: str = DEFAULT_HYPERLIQUID_REST_URL
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
                "BINANCE_WS_URL", get("BINANCE_WS_URL", DEFAULT_BINANCE_WS_URL), WS_SCHEMES
            ),
            binance_rest_url=parse_url(
                "BINANCE_REST_URL", get("BINANCE_REST_URL", DEFAULT_BINANCE_REST_URL), HTTP_SCHEMES
            ),
            bybit_ws_url=parse_url(
                "BYBIT_WS_URL", get("BYBIT_WS_URL", DEFAULT_BYBIT_WS_URL), WS_SCHEMES
            ),
            bybit_rest_url=parse_url(
                "BYBIT_REST_URL", get("BYBIT_REST_URL", DEFAULT_BYBIT_REST_URL), HTTP_SCHEMES
            ),
            hyperliquid_ws_url=parse_url(
                "HYPERLIQUID_WS_URL",
                get("HYPERLIQUID_WS_URL", DEFAULT_HYPERLIQUID_WS_URL),
                WS_SCHEMES,
            ),
            hyperliquid_rest_url=parse_url(
                "HYPERLIQUID_REST_URL",
                get("HYPERLIQUID_REST_URL", DEFAULT_HYPERLIQUID_REST_URL),
                HTTP_SCHEMES,
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


def excerpt(text: str, limit: int = EXCERPT_CHARS, total: int | None = None) -> str:
    """``text`` quoted (``repr``: control characters escaped), cut to ``limit`` characters;
    ``total``: the length of the whole value ``text`` was taken from."""
    total = len(text) if total is None else total
    if len(text) <= limit and total <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({total:,} characters)"


def shown(name: str, value: str) -> str:
    """How an error message quotes variable ``name``'s ``value``: an excerpt with URL
    credentials masked, or nothing of it when the name says it is a secret."""
    if _SECRET_NAME.search(name):
        return "(a value, not shown: a secret)"
    return excerpt(redact_text(value[:MAX_URL_CHARS]), total=len(value))


_USERINFO = re.compile(r"(?<=://)[^/?#@\s]*@")


def redact_url(url: str) -> str:
    """``url`` fit to log or show: ``user:password@`` becomes ``***@`` and the values of
    query parameters named like secrets (``token=``, ``apiKey=``…) become ``***``."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return _USERINFO.sub("***@", url)
    netloc = parts.netloc
    if "@" not in netloc and not any(_SECRET_NAME.search(k) for k, _ in query):
        return url  # nothing to hide: as it was (geturl() would drop a bare "#")
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    if any(_SECRET_NAME.search(k) for k, _ in query):
        masked = [(k, "***" if _SECRET_NAME.search(k) else v) for k, v in query]
        parts = parts._replace(query=urlencode(masked, safe="*,"))
    return SplitResult(parts.scheme, netloc, parts.path, parts.query, parts.fragment).geturl()


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def redact_text(text: str) -> str:
    """``text`` (an error message, a log line) with every URL in it passed to ``redact_url``."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def parse_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    lowered = value.strip().lower()
    if lowered not in choices:
        raise SettingsError(f"{name}={shown(name, value)}: must be one of {', '.join(choices)}")
    return lowered


def parse_exchanges(name: str, value: str) -> tuple[str, ...]:
    """``binance`` or a comma-separated list (``binance,bybit``): each a known exchange;
    ``replay`` only alone."""
    names = [part for part in re.split(r"[,\s]+", value.strip()) if part]
    if not names:
        raise SettingsError(
            f"{name}={shown(name, value)}: must be one or more of {', '.join(EXCHANGES)}"
        )
    exchanges = tuple(dict.fromkeys(parse_choice(name, part, EXCHANGES) for part in names))
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
            raise SettingsError(
                f"MARKET_REPLAY_FILE={shown('MARKET_REPLAY_FILE', path)}: no such file"
            )
    return {"replay_file": path, "replay_speed": speed}


def parse_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    """A base URL: one of ``schemes``, a host, a port in 1-65535 if any, no fragment, no
    space or control character; refused naming ``name`` (credentials never quoted)."""
    what = f"must be a {'/'.join(schemes)}:// URL with a host"
    if len(value) > MAX_URL_CHARS:
        raise SettingsError(f"{name}={shown(name, value)}: longer than {MAX_URL_CHARS} characters")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise SettingsError(
            f"{name}={shown(name, value)}: a space or control character in a URL ({what})"
        )
    try:
        parts = urlsplit(value)
    except ValueError as exc:  # e.g. "Invalid IPv6 URL"
        raise SettingsError(f"{name}={shown(name, value)}: not a URL ({exc})") from None
    try:
        port = parts.port  # ValueError: "abc", or out of 0-65535
    except ValueError:
        port = 0
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise SettingsError(f"{name}={shown(name, value)}: {what}")
    if port == 0:
        raise SettingsError(f"{name}={shown(name, value)}: the port must be a number in 1-65535")
    if parts.fragment or value.endswith("#"):
        raise SettingsError(f"{name}={shown(name, value)}: a base URL has no #fragment")
    return value.rstrip("/")


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
    from market.bus.link import check_url  # only a bus user imports redis

    return check_url("MARKET_BUS", text)


def parse_seed(value: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"MOCK_SEED={shown('MOCK_SEED', value)}: must be an integer") from None


def validate_symbol(raw: str) -> str:
    """One symbol in the user's form: upper case without separators (``btc-usdt`` →
    ``BTCUSDT``); raises ``InvalidSymbol`` naming the problem. The one check of a symbol:
    settings, the sidebar, the worker and replay all come here; each venue then maps it to
    its own name (``venue_symbol`` in ``market/venues/``)."""
    symbol = raw.strip()
    if not symbol:
        raise InvalidSymbol("empty symbol")
    if len(symbol) > MAX_SYMBOL_LEN:
        raise InvalidSymbol(f"{symbol[:MAX_SYMBOL_LEN]}…: longer than {MAX_SYMBOL_LEN} characters")
    if not SYMBOL_RE.match(symbol):
        raise InvalidSymbol(f"{symbol[:40]!r}: only letters, digits and '-' are allowed")
    symbol = symbol.upper().replace("-", "")
    if not symbol:
        raise InvalidSymbol(f"{raw.strip()[:40]!r}: no letters or digits")
    return symbol


def parse_symbols(text: str | Iterable[str]) -> tuple[str, ...]:
    """Comma (or space) separated symbols, or a sequence of them: validated, normalized,
    duplicates dropped, at most ``MAX_SYMBOLS``."""
    if isinstance(text, str):  # separators may repeat: "a, b" and "a,,b" are two symbols
        parts = [part for part in re.split(r"[,\s]+", text.strip()) if part]
    else:  # a sequence of symbols: each one must be one
        parts = list(text)
    symbols: dict[str, None] = {}  # ordered, and O(1) to dedupe however many are given
    for part in parts:
        symbols[validate_symbol(part)] = None
    if not symbols:
        raise InvalidSymbol("no symbols given")
    if len(symbols) > MAX_SYMBOLS:
        raise InvalidSymbol(f"{len(symbols):,} symbols: at most {MAX_SYMBOLS} at once")
    return tuple(symbols)


def parse_symbols_setting(text: str) -> tuple[str, ...]:
    try:
        return parse_symbols(text)
    except InvalidSymbol as exc:
        raise SettingsError(f"MARKET_SYMBOLS={shown('MARKET_SYMBOLS', text)}: {exc}") from exc


# -- history: MARKET_DB, MARKET_DB_SERIES_DAYS, MARKET_DB_CANDLE_DAYS, BYBIT_REST_URL, …


def _history_settings(get: Getter) -> dict[str, Any]:
    from market.history.db import parse_db_url  # the one parser of MARKET_DB

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
