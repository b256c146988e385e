"""The dashboard in a real browser: Debian's chromium driven by Playwright.

The app is started the way ``run_mock.sh`` starts it (``python -m streamlit run app/main.py``
with ``MARKET_EXCHANGE=mock``) on a free port; every wait is a poll with a deadline.
Screenshots go to ``artifacts/`` (git-ignored). Playwright never downloads a browser here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.helpers.browser import ARTIFACTS, CHART, CHROMIUM, REFRESH_S, X_RANGE, streamlit_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The app on the simulated feed; killed (whole group) afterwards."""
    settings = {"MARKET_EXCHANGE": "mock", "MARKET_SYMBOLS": "BTCUSDT,ETHUSDT,SOLUSDT"}
    with streamlit_server({**settings, "MOCK_SEED": "7"}, "browser-server.log") as url:
        yield url


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1600, "height": 1150})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.js_errors = errors  # a test may inspect (and account for) what it provoked
    pg.goto(server)
    pg.locator(".card .cvalue").first.wait_for()
    pg.locator(f"{CHART} .nsewdrag").first.wait_for()
    try:
        yield pg
        assert errors == [], f"JavaScript errors on the page: {errors}"
    finally:
        context.close()


def best_bid(page: Any) -> str:
    text: str = page.locator(".card .cvalue").first.inner_text()
    return text.strip()


def drag_zoom(page: Any) -> dict[str, Any] | None:
    """Zoom the price pane by dragging over its middle third; returns the new x-range
    (None when the chart was being replaced at that moment)."""
    box = page.locator(f"{CHART} .nsewdrag").first.bounding_box()
    if box is None:
        return None
    y = box["y"] + box["height"] / 2
    x0, x1 = box["x"] + box["width"] * 0.35, box["x"] + box["width"] * 0.65
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move(x1, y, steps=4)
    page.mouse.up()
    state: dict[str, Any] | None = page.evaluate(X_RANGE)
    return state


def test_page_updates_by_itself_and_is_labelled_simulated(page: Any) -> None:
    first = best_bid(page)
    assert first.replace(",", "").replace(".", "").isdigit(), first
    wait_for(lambda: best_bid(page) != first, timeout=20.0, interval=0.1, what="the bid to move")

    banner = page.locator(".simbanner")
    assert banner.is_visible()
    assert "SIMULATED DATA" in banner.inner_text()
    assert page.locator('.statusbar[data-state="simulated"]').is_visible()
    assert "SIMULATED" in (page.locator(f"{CHART} .gtitle").text_content() or "")
    assert page.locator("table.book tr.ask").count() == 20
    assert page.locator("table.book tr.bid").count() == 20
    assert page.locator("table.trades tbody tr").count() >= 1
    assert page.locator('[data-testid="stException"]').count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"))


def test_paused_display_keeps_the_users_zoom(page: Any) -> None:
    page.get_by_text("Pause display").click()
    page.locator(".statusbar .chip.paused").wait_for()
    # the footer is the panel's last element: once it says paused, the paused run's chart is in
    page.locator(".footer", has_text="paused").wait_for()
    frozen = best_bid(page)
    zoomed = drag_zoom(page)
    assert zoomed is not None and zoomed["auto"] is False
    # the condition under test is time passing: three refresh periods with nothing redrawn
    page.wait_for_timeout(int(3.5 * REFRESH_S * 1000))
    assert page.evaluate(X_RANGE) == zoomed
    assert best_bid(page) == frozen
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(ARTIFACTS / "dashboard-paused-zoomed.png"))

    page.get_by_text("Pause display").click()
    wait_for(lambda: page.locator(".statusbar .chip.paused").count() == 0, timeout=10.0)
    wait_for(lambda: best_bid(page) != frozen, timeout=20.0, interval=0.1, what="live again")


def test_live_refresh_drops_zoom_on_streamlit_1_67(page: Any) -> None:
    """Documents why Pause exists: with a constant ``layout.uirevision`` and a stable ``key``,
    Streamlit 1.67 still remounts the chart when its data changes, so a live zoom is reset
    by the next refresh. If this starts failing after an upgrade, live zoom may now survive."""

    def zoom_took() -> dict[str, Any] | None:
        state = drag_zoom(page)  # may be cut short by a refresh: try again
        return state if state and state["auto"] is False else None

    deadline = time.monotonic() + 15.0
    zoomed = None
    while zoomed is None and time.monotonic() < deadline:
        zoomed = zoom_took()
    if zoomed is not None:  # the drag landed between two refreshes: the next one resets it
        wait_for(
            lambda: (state := page.evaluate(X_RANGE)) is not None and state["auto"] is True,
            timeout=10.0, interval=0.1,
            what="the refresh to reset the zoom",
        )  # fmt: skip
    # else every drag was cut short by a refresh: live zoom does not survive either way
    assert (page.evaluate(X_RANGE) or {}).get("auto") is not False
    # Plotly, torn down mid-zoom by the remount, may throw from its leftover handlers; only
    # that error is expected here (hovering a live chart, without zooming, throws nothing).
    unexpected = [e for e in page.js_errors if "_hoverlayer" not in e]
    assert unexpected == []
    page.js_errors.clear()
