"""Settings.from_env: defaults, every variable of DESIGN.md, .env files, and refusals."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from market.errors import InvalidSymbol, SettingsError
from market.settings import Settings, read_env_file
from market.symbols import MAX_SYMBOLS, parse_symbols, validate_symbol
from market.venues import binance, bybit, hyperliquid


def from_env(env: dict[str, str], env_file: Path | None = None) -> Settings:
    return Settings.from_env(env, env_file=env_file)


def test_defaults_are_the_documented_ones() -> None:
    s = from_env({})
    assert s.exchange == "binance"
    assert s.symbols == ("BTCUSDT",)
    assert s.fallback == "mock"
    assert s.url(binance.WS_URL) == "wss://stream.binance.com:9443"
    assert s.url(binance.REST_URL) == "https://api.binance.com"
    assert s.url(bybit.WS_URL) == "wss://stream.bybit.com/v5/public/spot"
    assert s.url(hyperliquid.WS_URL) == "wss://api.hyperliquid.xyz/ws"
    assert s.url(bybit.REST_URL) == "https://api.bybit.com"
    assert s.url(hyperliquid.REST_URL) == "https://api.hyperliquid.xyz"
    assert s.urls == ()  # only what differs from a venue's declared default is kept
    assert s.connection_timeout == 10.0
    assert s.stale_after == 30.0
    assert s.mock_seed is None
    assert s == Settings()


def test_a_missing_env_file_is_fine(tmp_path: Path) -> None:
    assert from_env({}, tmp_path / "absent.env") == Settings()


def test_exchange_is_the_first_of_several() -> None:
    s = from_env({"MARKET_EXCHANGE": "hyperliquid,binance"})
    assert (s.exchange, s.exchanges) == ("hyperliquid", ("hyperliquid", "binance"))
    with pytest.raises(SettingsError, match=r"MARKET_EXCHANGE='kraken': must be one of binance"):
        from_env({"MARKET_EXCHANGE": "binance,kraken"})
    with pytest.raises(SettingsError, match="MARKET_EXCHANGE"):
        from_env({"MARKET_EXCHANGE": " , "})


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().exchanges = ("mock",)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        ("MARKET_EXCHANGE", "mock", "exchanges", ("mock",)),
        ("MARKET_EXCHANGE", "Bybit", "exchanges", ("bybit",)),
        ("MARKET_EXCHANGE", "hyperliquid", "exchanges", ("hyperliquid",)),
        ("MARKET_EXCHANGE", "bybit, HyperLiquid,bybit", "exchanges", ("bybit", "hyperliquid")),
        ("MARKET_SYMBOLS", "ethusdt, SOLUSDT", "symbols", ("ETHUSDT", "SOLUSDT")),
        ("MARKET_FALLBACK", "none", "fallback", "none"),
        ("BINANCE_WS_URL", "ws://127.0.0.1:9000/", "urls", (("BINANCE_WS_URL", "ws://127.0.0.1:9000"),)),
        ("BINANCE_REST_URL", "http://127.0.0.1:9001", "urls", (("BINANCE_REST_URL", "http://127.0.0.1:9001"),)),
        ("BYBIT_WS_URL", "ws://localhost:1/v5/public/linear", "urls", (("BYBIT_WS_URL", "ws://localhost:1/v5/public/linear"),)),
        ("HYPERLIQUID_WS_URL", "wss://example.test/ws", "urls", (("HYPERLIQUID_WS_URL", "wss://example.test/ws"),)),
        ("BYBIT_REST_URL", "http://127.0.0.1:9002/", "urls", (("BYBIT_REST_URL", "http://127.0.0.1:9002"),)),
        ("HYPERLIQUID_REST_URL", "https://example.test:8443", "urls", (("HYPERLIQUID_REST_URL", "https://example.test:8443"),)),
        ("CONNECTION_TIMEOUT_SECONDS", "2.5", "connection_timeout", 2.5),
        ("STALE_AFTER_SECONDS", "7", "stale_after", 7.0),
        ("MOCK_SEED", "42", "mock_seed", 42),
        ("MOCK_SEED", "-3", "mock_seed", -3),
    ],
)
def test_every_documented_variable_is_read(
    name: str, value: str, field: str, expected: object
) -> None:
    s = from_env({name: value})
    assert getattr(s, field) == expected
    # and nothing else moved
    others = {f.name for f in dataclasses.fields(Settings)} - {field}
    assert {f: getattr(s, f) for f in others} == {f: getattr(Settings(), f) for f in others}


def test_empty_values_mean_the_default() -> None:
    env = {
        "MARKET_EXCHANGE": "",
        "MARKET_SYMBOLS": "  ",
        "MOCK_SEED": "",
        "STALE_AFTER_SECONDS": "",
    }
    assert from_env(env) == Settings()


def test_os_environ_is_the_default_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MARKET_EXCHANGE", "mock")
    monkeypatch.setenv("MOCK_SEED", "5")
    s = Settings.from_env(env_file=tmp_path / "absent.env")
    assert (s.exchange, s.mock_seed) == ("mock", 5)


# -- .env ----------------------------------------------------------------------------------------

ENV_FILE = """\
# a comment line

MARKET_EXCHANGE=mock            # an inline comment
export MARKET_SYMBOLS="ethusdt,btcusdt"
MARKET_FALLBACK='none'
BINANCE_WS_URL = ws://127.0.0.1:1234
STALE_AFTER_SECONDS=12 # twelve
   # an indented comment
CONNECTION_TIMEOUT_SECONDS="3"   # quoted, then a comment
MOCK_SEED= # no seed: only a comment
"""


def test_env_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(ENV_FILE, encoding="utf-8")
    s = from_env({}, path)
    assert s.exchange == "mock"
    assert s.symbols == ("ETHUSDT", "BTCUSDT")
    assert s.fallback == "none"
    assert s.url(binance.WS_URL) == "ws://127.0.0.1:1234"
    assert s.stale_after == 12.0
    assert s.connection_timeout == 3.0
    assert s.mock_seed is None


def test_read_env_file_values(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        'A=1\nB="two words"\nC=\'# not a comment\'\nD=x#y\nE="q" # c\nF=\nG = spaced \nH=a=b\n',
        encoding="utf-8",
    )
    assert read_env_file(path) == {
        "A": "1",
        "B": "two words",
        "C": "# not a comment",
        "D": "x#y",  # a '#' glued to the value is part of it
        "E": "q",
        "F": "",
        "G": "spaced",
        "H": "a=b",
    }


def test_environment_wins_over_env_file(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "MARKET_EXCHANGE=bybit\nMOCK_SEED=1\nMARKET_SYMBOLS=SOLUSDT\n", encoding="utf-8"
    )
    s = from_env({"MARKET_EXCHANGE": "mock", "MOCK_SEED": "2"}, path)
    assert (s.exchange, s.mock_seed, s.symbols) == ("mock", 2, ("SOLUSDT",))


def test_env_file_bad_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("MARKET_EXCHANGE=mock\nthis is not an assignment\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"\.env:2"):
        from_env({}, path)


def test_env_file_bad_value_names_the_variable(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("STALE_AFTER_SECONDS=soon\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="STALE_AFTER_SECONDS"):
        from_env({}, path)


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MARKET_EXCHANGE", "kraken"),
        ("MARKET_FALLBACK", "retry"),
        ("MARKET_SYMBOLS", "BTC$"),
        ("MARKET_SYMBOLS", "BTCUSDT,ETH/USDT"),
        ("MARKET_SYMBOLS", ","),
        ("BINANCE_WS_URL", "https://stream.binance.com"),  # wrong scheme
        ("BINANCE_WS_URL", "stream.binance.com:9443"),  # no scheme
        ("BINANCE_WS_URL", "wss://"),  # no host
        ("BINANCE_WS_URL", "wss://[::1"),  # unparseable
        ("BINANCE_REST_URL", "wss://api.binance.com"),
        ("BINANCE_REST_URL", "http://[fe80::1"),
        ("BYBIT_WS_URL", "ftp://x"),
        ("HYPERLIQUID_WS_URL", "not a url"),
        ("BYBIT_REST_URL", "wss://api.bybit.com"),
        ("HYPERLIQUID_REST_URL", "https://api.hyperliquid.xyz:99999"),
        ("CONNECTION_TIMEOUT_SECONDS", "-1"),
        ("CONNECTION_TIMEOUT_SECONDS", "0"),
        ("CONNECTION_TIMEOUT_SECONDS", "ten"),
        ("CONNECTION_TIMEOUT_SECONDS", "nan"),
        ("CONNECTION_TIMEOUT_SECONDS", "inf"),
        ("STALE_AFTER_SECONDS", "-0.5"),
        ("STALE_AFTER_SECONDS", "0"),
        ("STALE_AFTER_SECONDS", "1e9"),
        ("STALE_AFTER_SECONDS", "30s"),
        ("MOCK_SEED", "abc"),
        ("MOCK_SEED", "1.5"),
    ],
)
def test_bad_values_raise_settings_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        from_env({name: value})
    assert name in str(info.value)


# -- symbols -------------------------------------------------------------------------------------


def test_parse_symbols_normalizes_and_dedupes() -> None:
    assert parse_symbols("btcusdt,ETHUSDT, btcUSDT ,solusdt") == ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    assert parse_symbols("BTCUSDT ETHUSDT") == ("BTCUSDT", "ETHUSDT")
    assert parse_symbols("btc-usdt,,") == ("BTCUSDT",)  # one form: no separators
    assert parse_symbols(" ,BTC,") == ("BTC",)


@pytest.mark.parametrize(
    "text", ["BTC$", "BTC$,ETHUSDT", "ETHUSDT,BTC/USDT", "BTC_USDT", "бтц", "btc.usdt"]
)
def test_parse_symbols_rejects_bad_characters(text: str) -> None:
    with pytest.raises(InvalidSymbol):
        parse_symbols(text)


@pytest.mark.parametrize("text", ["", " ", ",", ", ,"])
def test_parse_symbols_rejects_empty(text: str) -> None:
    with pytest.raises(InvalidSymbol, match="no symbols"):
        parse_symbols(text)


def test_parse_symbols_limits_the_count() -> None:
    many = [f"SYM{i}" for i in range(MAX_SYMBOLS)]
    assert len(parse_symbols(",".join(many))) == MAX_SYMBOLS
    with pytest.raises(InvalidSymbol, match=str(MAX_SYMBOLS)):
        parse_symbols(",".join([*many, "ONEMORE"]))
    # duplicates do not count twice
    assert len(parse_symbols(",".join(many + many))) == MAX_SYMBOLS


def test_validate_symbol() -> None:
    assert validate_symbol(" btcusdt ") == "BTCUSDT"
    assert validate_symbol("A" * 30) == "A" * 30
    with pytest.raises(InvalidSymbol, match="longer than 30"):
        validate_symbol("A" * 31)
    with pytest.raises(InvalidSymbol, match="empty"):
        validate_symbol("  ")
    with pytest.raises(InvalidSymbol, match="BTC\\$"):
        validate_symbol("BTC$")


def test_the_example_env_file_is_valid_and_documents_the_defaults() -> None:
    example = Path(__file__).resolve().parent.parent / ".env.example"
    s = from_env({}, example)
    assert s == dataclasses.replace(Settings(), symbols=("BTCUSDT", "ETHUSDT"))


def test_whale_thresholds_default_and_per_symbol() -> None:
    s = from_env(
        {
            "WHALE_NOTIONAL": "250_000",
            "WHALE_NOTIONAL_btcusdt": "1000000",
            "WHALE_NOTIONAL_ETHUSDT": "0",
        }
    )
    assert s.whale_notional == 250_000.0
    assert s.whale_thresholds == (("BTCUSDT", 1_000_000.0), ("ETHUSDT", 0.0))
    assert from_env({}).whale_notional == 100_000.0
    with pytest.raises(SettingsError, match=r"WHALE_NOTIONAL='-5': must be >= 0"):
        from_env({"WHALE_NOTIONAL": "-5"})
    with pytest.raises(SettingsError, match=r"WHALE_NOTIONAL_SOLUSDT='lots': must be a notional"):
        from_env({"WHALE_NOTIONAL_SOLUSDT": "lots"})
    with pytest.raises(SettingsError, match="WHALE_NOTIONAL_: the name must end with a symbol"):
        from_env({"WHALE_NOTIONAL_": "5"})
