"""Two viewers in two browser contexts (two Streamlit sessions), and no exchange reachable.

Debian's chromium through Playwright, the app started as ``run_mock.sh`` does (or pointed at a
closed loopback port); every wait is a poll with a deadline. Screenshots go to ``artifacts/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.helpers.browser import ARTIFACTS, CHROMIUM, streamlit_server
from tests.helpers.net import closed_port

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(400),  # two sessions of a cold server on a machine shared with others
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed"),
]

VIEWPORT = {"width": 1500, "height": 1100}
METRIC = ".card .cvalue"


def open_page(browser: Any, url: str) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    return context, page, errors


def symbols_box(page: Any) -> Any:
    return page.get_by_role("textbox", name="Symbols")


def select_box(page: Any, label: str) -> Any:
    """A selectbox's input (Streamlit 1.67: a react-aria combobox named by its label)."""
    return page.get_by_role("combobox", name=label, exact=True)


def options_of(page: Any, label: str) -> list[str]:
    """Open the select, read its options, close it again."""
    select_box(page, label).click()
    options = page.locator('[role="option"]')
    options.first.wait_for()
    texts = [t.strip() for t in options.all_inner_texts()]
    page.keyboard.press("Escape")
    options.first.wait_for(state="detached")
    return texts


def market_options(page: Any) -> list[str]:
    return options_of(page, "Market")


def choose(page: Any, label: str, option: str) -> None:
    select_box(page, label).click()
    page.locator('[role="option"]').filter(has_text=re.compile(rf"^{re.escape(option)}$")).click()


def ladder_title(page: Any) -> str:
    text: str = page.locator(".ladder").first.inner_text()
    return text


@pytest.fixture(scope="module")
def mock_server() -> Iterator[str]:
    settings = {"MARKET_EXCHANGE": "mock", "MARKET_SYMBOLS": "BTCUSDT,ETHUSDT", "MOCK_SEED": "7"}
    with streamlit_server(settings, "browser-viewers-server.log") as url:
        yield url


def test_one_viewers_symbols_leave_the_others_sidebar_and_page_alone(
    browser: Any,
    mock_server: str,
) -> None:
    ctx_a, a, errors_a = open_page(browser, mock_server)
    ctx_b, b, errors_b = open_page(browser, mock_server)
    try:
        for page in (a, b):
            page.locator(METRIC).first.wait_for(timeout=90_000)  # a cold server, a busy machine
        wait_for(  # a rerun may show the box empty for a moment; B's own symbols, or fail
            lambda: symbols_box(b).input_value() == "BTCUSDT, ETHUSDT",
            timeout=15.0,
            what="B's own symbols in B's sidebar",
        )
        assert market_options(b) == ["BTCUSDT · mock", "ETHUSDT · mock"]

        symbols_box(a).fill("btcusdt, sol-usdt")
        symbols_box(a).press("Enter")
        wait_for(
            lambda: symbols_box(a).input_value() == "BTCUSDT, SOLUSDT",
            timeout=60.0,
            what="A's symbols, as the worker names them",
        )
        assert market_options(a) == ["BTCUSDT · mock", "SOLUSDT · mock"]
        choose(a, "Market", "SOLUSDT · mock")
        wait_for(
            lambda: "ORDER BOOK · SOLUSDT" in ladder_title(a),
            timeout=60.0,
            what="A's new market with a synced book",
        )
        assert a.locator(".simbanner").first.is_visible()

        # B reruns its whole page (a choice of its own): the old shared sidebar would now
        # show A's symbols; B's own selection must not move
        choose(b, "Imbalance depth N", "10")
        b.get_by_text("Imbalance (top 10)").wait_for()
        wait_for(  # a rerun may show the box empty for a moment; B's own symbols, or fail
            lambda: symbols_box(b).input_value() == "BTCUSDT, ETHUSDT",
            timeout=15.0,
            what="B's own symbols in B's sidebar",
        )
        assert market_options(b) == ["BTCUSDT · mock", "ETHUSDT · mock"]
        assert "ORDER BOOK · BTCUSDT" in ladder_title(b)
        assert select_box(b, "Market").input_value() == "BTCUSDT · mock"
        assert b.locator(".simbanner").first.is_visible()
        assert symbols_box(a).input_value() == "BTCUSDT, SOLUSDT"  # and A keeps its own

        for page in (a, b):  # the charts drawn, for the screenshots
            page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for()
        ARTIFACTS.mkdir(exist_ok=True)
        a.screenshot(path=str(ARTIFACTS / "viewers-a.png"))
        b.screenshot(path=str(ARTIFACTS / "viewers-b.png"))
        for page in (a, b):
            assert page.locator('[data-testid="stException"]').count() == 0
        assert errors_a == [] and errors_b == []
    finally:
        ctx_a.close()
        ctx_b.close()


def test_no_exchange_reachable_offers_the_simulated_feed_in_one_click(
    browser: Any,
) -> None:
    port = closed_port()
    settings = {
        "MARKET_EXCHANGE": "binance",
        "MARKET_SYMBOLS": "BTCUSDT",
        "BINANCE_WS_URL": f"ws://127.0.0.1:{port}/ws",
        "BINANCE_REST_URL": f"http://127.0.0.1:{port}",
        "MOCK_SEED": "7",
    }
    with streamlit_server(settings, "browser-unreachable-server.log") as url:
        context, page, errors = open_page(browser, url)
        try:
            notice = page.locator('[data-testid="unreachable"]')
            notice.wait_for(timeout=60_000)
            text = notice.inner_text()
            assert "No exchange is reachable from this machine." in text
            assert "binance: network error:" in text
            assert page.locator(METRIC).count() == 0
            assert page.locator(".simbanner").count() == 0
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "unreachable.png"))

            page.get_by_role("button", name="Show SIMULATED data (mock feed)").click()
            page.locator(".simbanner").first.wait_for()
            page.locator(METRIC).first.wait_for()
            page.locator(".statusbar[data-state='simulated']").first.wait_for()
            assert notice.count() == 0
            assert "SIMULATED DATA" in page.locator(".simbanner").first.inner_text()
            assert select_box(page, "Market").input_value() == "BTCUSDT · mock"
            assert symbols_box(page).input_value() == "BTCUSDT"
            page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for()
            page.screenshot(path=str(ARTIFACTS / "unreachable-simulated.png"))
            assert page.locator('[data-testid="stException"]').count() == 0
            assert errors == []
        finally:
            context.close()
