"""Each viewer's choices are their own, and "no exchange is reachable" said plainly.

Two AppTest sessions run the real page on one worker (one process, one ``cache_resource``):
what one session adds is fed and shown to it only; what it drops is fed until the grace is
over; the server's defaults are always fed. The Demand's clock is a fake one the test moves
(``app.runtime.demand_clock``), except in the test of the background sweeper.

Then the unreachable case: a worker pointed at a closed loopback port, the plain notice after
three failed tries, and the one click to the SIMULATED feed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import runtime
from app.components.status import SIMULATED_BANNER, unreachable, unreachable_html
from app.runtime import get_demand, get_worker, stop_workers, viewer_grace
from market.errors import SettingsError
from market.events import FeedStatus
from market.worker import Worker
from tests.conftest import wait_for
from tests.helpers.cards_html import cards_of
from tests.helpers.net import closed_port

ROOT = Path(__file__).resolve().parent.parent
MAIN = str(ROOT / "app" / "main.py")
RUN_TIMEOUT = 30.0


class FakeClock:
    def __init__(self) -> None:
        self.t = 5_000.0

    def __call__(self) -> float:
        return self.t


def html_of(at: AppTest, marker: str) -> str:
    found = [h.value for h in at.html if marker in h.value and not h.value.startswith("<style>")]
    assert len(found) == 1, f"expected one st.html containing {marker!r}, got {len(found)}"
    return found[0]


def synced(worker: Worker, key: tuple[str, str]) -> bool:
    view = worker.store.snapshot(series=False, max_trades=0).markets.get(key)
    return view is not None and view.synced


def markets_of(worker: Worker) -> set[tuple[str, str]]:
    return set(worker.store.snapshot(series=False, max_trades=0).markets)


# -- the pure decision: is any exchange reachable? -------------------------------------------


def status(
    exchange: str = "binance",
    state: str = "reconnecting",
    reconnects: int = 3,
    messages: int = 0,
    source: str = "live",
    detail: str = "network error: Connect call failed ('127.0.0.1', 9); reconnecting in 3.6 s",
) -> FeedStatus:
    return FeedStatus(
        exchange=exchange,
        state=state,  # type: ignore[arg-type]
        source=source,  # type: ignore[arg-type]
        reconnects=reconnects,
        messages=messages,
        detail=detail,
    )


def test_unreachable_after_three_tries_with_no_message_names_the_reason() -> None:
    reason = unreachable({"binance": status()}, ("binance",))
    assert reason == "binance: network error: Connect call failed ('127.0.0.1', 9)"


def test_unreachable_names_every_exchange() -> None:
    statuses = {
        "binance": status(),
        "bybit": status(
            "bybit", "connecting", 4, detail="network error: Name or service not known"
        ),
    }
    assert unreachable(statuses, ("binance", "bybit")) == (
        "binance: network error: Connect call failed ('127.0.0.1', 9); "
        "bybit: network error: Name or service not known"
    )


@pytest.mark.parametrize(
    "changed",
    [
        {"reconnects": 2},  # not yet three tries
        {"messages": 1},  # it was reachable once: a drop, not "unreachable"
        {"state": "live", "messages": 10},
        {"state": "blocked"},  # refused by the exchange: its own message
        {"state": "simulated", "source": "simulated"},
        {"state": "stopped"},
        {"source": "replay"},
    ],
)
def test_not_unreachable(changed: dict[str, object]) -> None:
    assert unreachable({"binance": status(**changed)}, ("binance",)) is None  # type: ignore[arg-type]


def test_one_reachable_exchange_is_enough() -> None:
    statuses = {"binance": status(), "mock": status("mock", "simulated", 0, 500, "simulated")}
    assert unreachable(statuses, ("binance", "mock")) is None
    assert unreachable(statuses, ("binance", "bybit")) is None  # bybit has not reported yet
    assert unreachable(statuses, ()) is None


def test_unreachable_counts_tries_from_the_given_threshold_and_bounds_the_reason() -> None:
    long = status(reconnects=1, detail="x" * 500)
    reason = unreachable({"binance": long}, ("binance",), after=1)
    assert reason == "binance: " + "x" * 159 + "…"
    assert unreachable({"binance": status(detail="")}, ("binance",)) == "binance: no answer"


def test_unreachable_html_is_plain_escaped_and_labels_the_simulated_feed() -> None:
    html = unreachable_html("binance: <b>refused</b>", 3)
    assert html == (
        '<div class="notice bad unreachable" data-testid="unreachable">'
        "<b>No exchange is reachable from this machine.</b> After 3 tries not one message "
        "arrived (binance: &lt;b&gt;refused&lt;/b&gt;). Live retries go on in the background: "
        "the page shows live data as soon as an exchange answers. Meanwhile you can watch the "
        "SIMULATED feed (generated locally, not a real market).</div>"
    )


def test_viewer_grace_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MARKET_VIEWER_GRACE_SECONDS", raising=False)
    assert viewer_grace() == 60.0
    monkeypatch.setenv("MARKET_VIEWER_GRACE_SECONDS", "2.5")
    assert viewer_grace() == 2.5
    monkeypatch.setenv("MARKET_VIEWER_GRACE_SECONDS", "soon")
    with pytest.raises(SettingsError, match="MARKET_VIEWER_GRACE_SECONDS='soon'"):
        viewer_grace()


# -- two sessions on one worker ---------------------------------------------------------------


@pytest.fixture
def mock_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKET_EXCHANGE", "mock")
    monkeypatch.setenv("MARKET_SYMBOLS", "BTCUSDT")
    monkeypatch.setenv("MOCK_SEED", "42")
    monkeypatch.delenv("MARKET_VIEWER_GRACE_SECONDS", raising=False)
    monkeypatch.chdir(ROOT)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(runtime, "demand_clock", fake)
    return fake


@pytest.fixture
def two() -> Iterator[tuple[AppTest, AppTest]]:
    """Two sessions of the real page; the worker (and the Demand) stopped afterwards."""
    stop_workers()
    a = AppTest.from_file(MAIN, default_timeout=RUN_TIMEOUT)
    b = AppTest.from_file(MAIN, default_timeout=RUN_TIMEOUT)
    try:
        yield a, b
    finally:
        stop_workers()


def assert_b_unchanged(b: AppTest) -> None:
    """B never touched its sidebar: the server's defaults, its one market, its page."""
    assert not b.exception and not b.sidebar.error
    assert b.multiselect(key="exchanges").value == ["mock"]
    assert b.text_input(key="symbols").value == "BTCUSDT"
    assert b.selectbox(key="market").options == ["BTCUSDT · mock"]
    assert b.selectbox(key="market").value == ("mock", "BTCUSDT")
    assert "ORDER BOOK · BTCUSDT" in html_of(b, 'class="ladder"')


@pytest.mark.usefixtures("mock_env")
def test_a_symbol_one_session_adds_is_fed_and_shown_to_it_only(
    two: tuple[AppTest, AppTest], clock: FakeClock
) -> None:
    a, b = two
    a.run()
    b.run()
    worker, demand = get_worker(), get_demand()
    assert (worker.settings.exchanges, worker.settings.symbols) == (("mock",), ("BTCUSDT",))
    assert list(demand.sessions().values()) == [0.0, 0.0]  # both registered on their first run
    wait_for(lambda: synced(worker, ("mock", "BTCUSDT")), timeout=20.0, what="BTCUSDT")

    a.text_input(key="symbols").input("btcusdt, eth-usdt").run()
    assert not a.exception and not a.sidebar.error
    assert worker.settings.symbols == ("BTCUSDT", "ETHUSDT")  # subscribed for A
    assert a.text_input(key="symbols").value == "BTCUSDT, ETHUSDT"
    assert a.selectbox(key="market").options == ["BTCUSDT · mock", "ETHUSDT · mock"]
    wait_for(lambda: synced(worker, ("mock", "ETHUSDT")), timeout=20.0, what="ETHUSDT")
    a.selectbox(key="market").select(("mock", "ETHUSDT")).run()
    assert "ORDER BOOK · ETHUSDT" in html_of(a, 'class="ladder"')

    b.run()
    assert_b_unchanged(b)
    b.switch_page("views/overview.py").run()
    assert not b.exception
    assert list(b.dataframe[0].value["Symbol"]) == ["BTCUSDT"]  # B's rows only
    a.switch_page("views/overview.py").run()
    assert sorted(a.dataframe[0].value["Symbol"]) == ["BTCUSDT", "ETHUSDT"]
    a.switch_page("views/market.py").run()
    b.switch_page("views/market.py").run()

    # A drops ETHUSDT: still fed for the grace (60 s), then unsubscribed
    a.text_input(key="symbols").input("BTCUSDT").run()
    assert a.selectbox(key="market").options == ["BTCUSDT · mock"]
    assert worker.settings.symbols == ("BTCUSDT", "ETHUSDT")
    clock.t += 60.0
    a.run()
    b.run()
    assert worker.settings.symbols == ("BTCUSDT", "ETHUSDT")
    assert ("mock", "ETHUSDT") in markets_of(worker)
    clock.t += 0.5
    b.run()  # B's tick sweeps the Demand
    assert worker.settings.symbols == ("BTCUSDT",)
    wait_for(lambda: ("mock", "ETHUSDT") not in markets_of(worker), what="ETHUSDT forgotten")
    assert_b_unchanged(b)


@pytest.mark.usefixtures("mock_env")
def test_defaults_are_always_fed_and_a_silent_session_is_forgotten(
    two: tuple[AppTest, AppTest], clock: FakeClock
) -> None:
    a, b = two
    a.run()
    b.run()
    worker, demand = get_worker(), get_demand()
    a.text_input(key="symbols").input("SOLUSDT").run()  # A no longer wants the default
    assert a.selectbox(key="market").options == ["SOLUSDT · mock"]
    assert worker.settings.symbols == ("BTCUSDT", "SOLUSDT")
    clock.t += 30.0
    a.run()
    clock.t += 31.0  # B silent for 61 s: gone; A ticked 31 s ago
    a.run()
    assert list(demand.sessions().values()) == [0.0]
    assert worker.settings.symbols == ("BTCUSDT", "SOLUSDT")  # BTCUSDT: the server's default
    assert worker.settings.exchanges == ("mock",)
    wait_for(lambda: synced(worker, ("mock", "BTCUSDT")), what="the default still fed")


@pytest.mark.usefixtures("mock_env")
def test_the_background_sweep_unsubscribes_after_a_real_grace(
    two: tuple[AppTest, AppTest], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No session ticks at all (closed tabs): the sweeper thread alone ends the wants."""
    monkeypatch.setenv("MARKET_VIEWER_GRACE_SECONDS", "1")
    a, _ = two
    a.run()
    worker, demand = get_worker(), get_demand()
    assert demand.grace_s == 1.0
    a.text_input(key="symbols").input("BTCUSDT, ETHUSDT").run()
    assert worker.settings.symbols == ("BTCUSDT", "ETHUSDT")
    wait_for(lambda: worker.settings.symbols == ("BTCUSDT",), timeout=15.0, what="the sweep")
    assert demand.sessions() == {}


# -- no exchange reachable --------------------------------------------------------------------


@pytest.fixture
def unreachable_env(monkeypatch: pytest.MonkeyPatch) -> int:
    port = closed_port()
    monkeypatch.setenv("MARKET_EXCHANGE", "binance")
    monkeypatch.setenv("MARKET_SYMBOLS", "BTCUSDT")
    monkeypatch.setenv("BINANCE_WS_URL", f"ws://127.0.0.1:{port}/ws")
    monkeypatch.setenv("BINANCE_REST_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MOCK_SEED", "42")
    monkeypatch.delenv("MARKET_VIEWER_GRACE_SECONDS", raising=False)
    monkeypatch.chdir(ROOT)
    return port


@pytest.mark.usefixtures("unreachable_env")
def test_no_exchange_reachable_says_so_and_offers_the_simulated_feed(
    two: tuple[AppTest, AppTest],
) -> None:
    a, b = two
    a.run()
    b.run()
    worker = get_worker()
    assert not [h for h in a.html if 'data-testid="unreachable"' in h.value]  # not yet
    status = wait_for(
        lambda: (s := worker.store.snapshot().statuses.get("binance")) and s.reconnects >= 3 and s,
        timeout=40.0,
        what="three failed connection attempts",
    )
    assert status.messages == 0 and status.state == "reconnecting"
    a.run()
    assert not a.exception
    notice = html_of(a, 'data-testid="unreachable"')
    assert "No exchange is reachable from this machine." in notice
    assert "(binance: network error: " in notice and "reconnecting in" not in notice
    assert "SIMULATED" in notice
    assert len(cards_of(a)) == 0
    button = a.button(key="show-simulated")
    assert button.label == "Show SIMULATED data (mock feed)"

    button.click().run()
    assert not a.exception and not a.sidebar.error
    assert worker.settings.exchanges == ("binance", "mock")  # live retries go on
    assert a.multiselect(key="exchanges").value == ["binance", "mock"]
    assert a.selectbox(key="market").value == ("mock", "BTCUSDT")
    wait_for(lambda: synced(worker, ("mock", "BTCUSDT")), timeout=20.0, what="simulated data")
    a.run()
    assert not [h for h in a.html if 'data-testid="unreachable"' in h.value]
    assert html_of(a, "simbanner") == SIMULATED_BANNER
    assert 'data-state="simulated"' in html_of(a, 'class="statusbar')
    assert len(cards_of(a)) == 10
    assert "ORDER BOOK · BTCUSDT" in html_of(a, 'class="ladder"')
    assert "SIMULATED" in html_of(a, 'class="ladder"')
    binance = worker.store.snapshot().statuses["binance"]
    assert binance.state in ("connecting", "reconnecting") and binance.reconnects >= 3

    b.run()  # the other session's choice is untouched: still only the unreachable Binance
    assert b.multiselect(key="exchanges").value == ["binance"]
    assert b.selectbox(key="market").options == ["BTCUSDT · binance"]
    assert "No exchange is reachable" in html_of(b, 'data-testid="unreachable"')


def test_store_statuses_are_the_last_set_ones() -> None:
    from market.store import MarketStore

    store = MarketStore()
    assert store.statuses() == {}
    first, second = status(), status("bybit", "connecting", 0)
    store.set_status(first)
    store.set_status(second)
    store.set_status(status(reconnects=4))
    assert store.statuses() == {"binance": status(reconnects=4), "bybit": second}
    store.remove_status("bybit")
    assert list(store.statuses()) == ["binance"]
