"""Demand: the union of what sessions want, with a grace period, on a fake clock."""

from __future__ import annotations

import threading

import pytest

from market.errors import InvalidSymbol
from market.wants import Demand

Union = tuple[tuple[str, ...], tuple[str, ...]]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Recorder:
    """The ``apply`` callable: records every union it is given."""

    def __init__(self, refuse: str | None = None) -> None:
        self.calls: list[Union] = []
        self.refuse = refuse

    def __call__(self, exchanges: tuple[str, ...], symbols: tuple[str, ...]) -> None:
        if self.refuse is not None and self.refuse in symbols:
            raise InvalidSymbol(f"{self.refuse!r}: not listed")
        self.calls.append((exchanges, symbols))


def demand(grace: float = 60.0, refuse: str | None = None) -> tuple[Demand, Recorder, Clock]:
    clock, rec = Clock(), Recorder(refuse)
    d = Demand(rec, ("binance",), ("BTCUSDT",), grace_s=grace, clock=clock)
    return d, rec, clock


def test_defaults_alone_are_the_union_and_nothing_is_applied() -> None:
    d, rec, _ = demand()
    assert d.union() == (("binance",), ("BTCUSDT",))
    assert d.defaults == (("binance",), ("BTCUSDT",))
    d.sweep()
    assert rec.calls == []
    assert d.sessions() == {}


def test_a_new_symbol_is_applied_at_once_defaults_first() -> None:
    d, rec, _ = demand()
    d.want("a", ["binance"], ["ETHUSDT", "BTCUSDT"])
    assert rec.calls == [(("binance",), ("BTCUSDT", "ETHUSDT"))]
    assert d.union() == (("binance",), ("BTCUSDT", "ETHUSDT"))


def test_wanting_only_defaults_applies_nothing() -> None:
    d, rec, _ = demand()
    d.want("a", ["binance"], ["BTCUSDT"])
    d.want("b", ["binance"], ["BTCUSDT"])
    assert rec.calls == []
    assert d.wanted("a") == (("binance",), ("BTCUSDT",))


def test_union_orders_by_first_wanted_across_sessions() -> None:
    d, rec, clock = demand()
    d.want("a", ["binance"], ["SOLUSDT"])
    clock.t += 1
    d.want("b", ["mock", "bybit"], ["ETHUSDT", "SOLUSDT"])
    clock.t += 1
    d.want("a", ["bybit"], ["XRPUSDT", "SOLUSDT"])
    assert d.union() == (("binance", "mock", "bybit"), ("BTCUSDT", "SOLUSDT", "ETHUSDT", "XRPUSDT"))
    assert rec.calls == [
        (("binance",), ("BTCUSDT", "SOLUSDT")),
        (("binance", "mock", "bybit"), ("BTCUSDT", "SOLUSDT", "ETHUSDT")),
        (("binance", "mock", "bybit"), ("BTCUSDT", "SOLUSDT", "ETHUSDT", "XRPUSDT")),
    ]


def test_a_removed_symbol_stays_for_the_grace_then_goes() -> None:
    d, rec, clock = demand(grace=60.0)
    d.want("a", ["binance"], ["BTCUSDT", "ETHUSDT"])
    clock.t += 10
    d.want("a", ["binance"], ["BTCUSDT"])  # removed at t+10: wanted until then
    assert d.union() == (("binance",), ("BTCUSDT", "ETHUSDT"))
    clock.t += 60  # exactly the grace since it was last wanted: still kept
    d.want("a", ["binance"], ["BTCUSDT"])
    assert d.union()[1] == ("BTCUSDT", "ETHUSDT")
    clock.t += 0.5
    d.sweep()
    assert d.union() == (("binance",), ("BTCUSDT",))
    assert rec.calls == [
        (("binance",), ("BTCUSDT", "ETHUSDT")),
        (("binance",), ("BTCUSDT",)),
    ]


def test_another_session_keeps_a_symbol_alive() -> None:
    d, rec, clock = demand(grace=5.0)
    d.want("a", ["binance"], ["ETHUSDT"])
    d.want("b", ["binance"], ["ETHUSDT"])
    d.want("a", ["binance"], ["BTCUSDT"])
    for _ in range(10):  # b keeps ticking for 50 s
        clock.t += 5
        d.want("b", ["binance"], ["ETHUSDT"])
        d.want("a", ["binance"], ["BTCUSDT"])
    assert d.union() == (("binance",), ("BTCUSDT", "ETHUSDT"))
    assert rec.calls == [(("binance",), ("BTCUSDT", "ETHUSDT"))]


def test_a_silent_session_is_gone_after_the_grace() -> None:
    d, rec, clock = demand(grace=30.0)
    d.want("a", ["mock"], ["ETHUSDT"])
    d.want("b", ["binance"], ["BTCUSDT"])
    clock.t += 20
    d.want("b", ["binance"], ["BTCUSDT"])
    assert d.sessions() == {"a": 20.0, "b": 0.0}
    clock.t += 10  # a silent for exactly 30 s: kept
    d.sweep()
    assert set(d.sessions()) == {"a", "b"}
    clock.t += 1
    d.sweep()
    assert d.sessions() == {"b": 11.0}
    assert d.wanted("a") is None
    assert d.union() == (("binance",), ("BTCUSDT",))
    assert rec.calls[-1] == (("binance",), ("BTCUSDT",))
    assert len(rec.calls) == 2


def test_drop_keeps_the_wants_for_the_grace() -> None:
    d, rec, clock = demand(grace=10.0)
    d.want("a", ["bybit"], ["ETHUSDT"])
    clock.t += 3
    d.drop("a")
    assert d.sessions() == {}
    clock.t += 10
    d.sweep()
    assert d.union() == (("binance", "bybit"), ("BTCUSDT", "ETHUSDT"))
    clock.t += 0.1
    d.sweep()
    assert d.union() == (("binance",), ("BTCUSDT",))
    d.drop("never-seen")  # harmless
    assert len(rec.calls) == 2


def test_defaults_are_always_fed_even_when_nobody_wants_them() -> None:
    d, rec, clock = demand(grace=1.0)
    d.want("a", ["mock"], ["ETHUSDT"])
    assert d.union() == (("binance", "mock"), ("BTCUSDT", "ETHUSDT"))
    clock.t += 100
    d.sweep()
    assert d.union() == (("binance",), ("BTCUSDT",))
    assert rec.calls == [
        (("binance", "mock"), ("BTCUSDT", "ETHUSDT")),
        (("binance",), ("BTCUSDT",)),
    ]


def test_a_refused_want_restores_the_previous_one_and_raises() -> None:
    d, rec, clock = demand(refuse="NOPE")
    d.want("a", ["binance"], ["ETHUSDT"])
    clock.t += 1
    with pytest.raises(InvalidSymbol, match="NOPE"):
        d.want("a", ["binance"], ["ETHUSDT", "NOPE"])
    assert d.wanted("a") == (("binance",), ("ETHUSDT",))
    assert d.union() == (("binance",), ("BTCUSDT", "ETHUSDT"))
    with pytest.raises(InvalidSymbol):  # a first want refused: the session is not kept
        d.want("b", ["binance"], ["NOPE"])
    assert d.wanted("b") is None
    assert rec.calls == [(("binance",), ("BTCUSDT", "ETHUSDT"))]
    d.sweep()
    assert len(rec.calls) == 1


def test_duplicates_are_dropped_in_order() -> None:
    d, rec, _ = demand()
    d.want("a", ["mock", "mock", "binance"], ["ETHUSDT", "ETHUSDT", "SOLUSDT"])
    assert d.wanted("a") == (("mock", "binance"), ("ETHUSDT", "SOLUSDT"))
    assert rec.calls == [(("binance", "mock"), ("BTCUSDT", "ETHUSDT", "SOLUSDT"))]


def test_negative_grace_is_refused() -> None:
    with pytest.raises(ValueError, match="grace_s"):
        Demand(lambda e, s: None, ("binance",), ("BTCUSDT",), grace_s=-1)


def test_apply_is_called_outside_the_lock() -> None:
    """apply may read the Demand (as the app's status line does) without deadlocking."""
    seen: list[Union] = []
    holder: list[Demand] = []

    def apply(exchanges: tuple[str, ...], symbols: tuple[str, ...]) -> None:
        seen.append(holder[0].union())

    d = Demand(apply, ("binance",), ("BTCUSDT",), clock=Clock())
    holder.append(d)
    d.want("a", ["binance"], ["ETHUSDT"])
    assert seen == [(("binance",), ("BTCUSDT", "ETHUSDT"))]


def test_concurrent_wants_end_with_the_full_union_applied_last() -> None:
    calls: list[Union] = []
    d = Demand(lambda e, s: calls.append((e, s)), ("binance",), ("BTCUSDT",), clock=Clock())
    symbols = [f"S{i}USDT" for i in range(40)]
    start = threading.Barrier(8)

    def run(k: int) -> None:
        start.wait()
        for i in range(k, 40, 8):
            d.want(f"s{i}", ["binance"], [symbols[i]])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(d.union()[1]) == {"BTCUSDT", *symbols}
    assert calls[-1] == d.union()
    assert len(d.sessions()) == 40
