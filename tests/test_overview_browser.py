"""The Overview page in a real browser, with 100 simulated markets: Debian's chromium driven
by Playwright, the app started as ``run_mock.sh`` starts it, every wait a poll with a deadline.

``st.dataframe`` draws on a canvas; its rows are read through the grid's ARIA table
(``aria-rowcount``, the ``glide-cell-<col>-<row>`` cells Glide keeps for the visible rows:
the raw values, a sparkline's as its comma-separated points) and the "N markets" line the
page writes. Screenshots (1400×900) go to ``artifacts/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.helpers.browser import ARTIFACTS, CHROMIUM, streamlit_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed"),
]

N = 100
SYMBOLS = [f"SYM{i:03d}USDT" for i in range(N)]
VIEWPORT = {"width": 1400, "height": 900}
GRID = '[data-testid="stDataFrame"]'


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """``streamlit run app/main.py`` on 100 simulated markets; killed (whole group) after."""
    settings = {"MARKET_EXCHANGE": "mock", "MARKET_SYMBOLS": ",".join(SYMBOLS), "MOCK_SEED": "7"}
    with streamlit_server(settings, "browser-overview-server.log") as url:
        yield url


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.base_url = server
    try:
        yield pg
        assert errors == [], f"JavaScript errors on the page: {errors}"
    finally:
        context.close()


def cell(page: Any, col: int, row: int) -> str:
    text: str = page.locator(f'[data-testid="glide-cell-{col}-{row}"]').inner_text()
    return text.strip()


def visible_rows(page: Any) -> list[list[str]]:
    """The texts of the grid rows Glide currently keeps in its ARIA table."""
    rows: list[list[str]] = page.evaluate(
        f"""() => [...document.querySelectorAll('{GRID} tbody tr')].map(
            tr => [...tr.querySelectorAll('td')].map(td => td.innerText.trim()))"""
    )
    return rows


def footer(page: Any) -> str:
    text: str = page.locator(".footer").first.inner_text()
    return text


def wait_refreshes(page: Any, n: int = 2) -> None:
    """Until the fragment has redrawn ``n`` times (its footer shows each run's render time)."""
    for _ in range(n):
        before = footer(page)
        wait_for(lambda b=before: footer(page) != b, timeout=10.0, interval=0.05, what="a redraw")


# the grid's columns, in order
COLUMNS = (
    "Symbol", "Exchange", "Source", "Last hour", "Last", "24h %", "24h range", "24h volume",
    "24h high", "24h low", "Bid", "Ask", "Spread bps", "Feed",
)  # fmt: skip
C = {name: i for i, name in enumerate(COLUMNS)}


def open_overview(page: Any) -> None:
    page.goto(f"{page.base_url}/overview")
    page.locator(f'.ovcount[data-markets="{N}"]').wait_for()
    page.locator(GRID).first.wait_for()
    wait_for(
        lambda: all(r[C["Last"]] not in ("—", "") for r in visible_rows(page)),
        timeout=20.0,
        what="prices in every visible row",
    )


def test_overview_lists_100_simulated_markets(page: Any) -> None:
    open_overview(page)
    assert page.locator(".ovcount").inner_text().startswith(f"{N} markets · 1 exchange (mock)")
    grid = page.locator(f"{GRID} table[role=grid]")
    assert grid.get_attribute("aria-rowcount") == str(N + 1)  # the header row and 100 markets
    assert grid.get_attribute("aria-colcount") == str(len(COLUMNS))
    headers = page.locator(f"{GRID} thead th").all_inner_texts()
    assert [h.strip() for h in headers] == list(COLUMNS)
    assert page.locator(".simbanner").is_visible()
    assert "SIMULATED DATA" in page.locator(".simbanner").inner_text()
    assert page.locator('.statusbar[data-state="simulated"]').is_visible()
    assert page.locator("table.movers tr.up").count() == 5
    assert page.locator("table.movers tr.down").count() == 5

    rows = visible_rows(page)  # the ARIA cells hold the raw numbers (the canvas the text)
    assert len(rows) >= 10
    for row in rows:
        assert re.fullmatch(r"SYM\d{3}USDT", row[0]), row
        assert row[1:3] == ["mock", "SIMULATED"]
        spark = [float(p) for p in row[C["Last hour"]].split(",")]
        last, change, where, volume, high, low, bid, ask, spread = map(float, row[4:13])
        assert 1 <= len(spark) <= 60 and spark[-1] == last, row  # ends at the last price
        assert -9.0 < change < 9.0, row
        assert 0 < low <= last <= high and 0 < bid < ask and volume > 1e5 and spread > 0, row
        assert abs(where - (last - low) / (high - low) * 100) < 1e-6, row
        assert row[C["Feed"]] == "simulated"
    # default order: 24 h volume, largest first
    volumes = [float(r[C["24h volume"]]) for r in rows]
    assert volumes == sorted(volumes, reverse=True)
    # movers agree with the numbers: the top gainer's change is at least any shown below
    top = page.locator("table.movers tr.up td.chg").first.inner_text()
    best = max(float(r[C["24h %"]]) for r in rows)
    assert float(top.rstrip(" %")) >= best - 0.5  # a redraw apart
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(ARTIFACTS / "overview-100.png"))


def test_header_click_sorts_and_the_sort_survives_refreshes(page: Any) -> None:
    open_overview(page)
    box = page.locator(GRID).first.bounding_box()
    page.mouse.click(box["x"] + 40, box["y"] + 17)  # the "Symbol" header: ascending
    wait_for(lambda: cell(page, 0, 0) == "SYM000USDT", timeout=10.0, what="the sorted grid")
    wait_refreshes(page, 3)
    assert [r[0] for r in visible_rows(page)[:3]] == ["SYM000USDT", "SYM001USDT", "SYM002USDT"]


def test_sort_select_stays_open_across_refreshes_and_sorts(page: Any) -> None:
    """The select lives in the refreshing fragment: an open menu must survive the redraws."""
    open_overview(page)
    select = page.locator('[data-testid="stSelectbox"]').filter(has_text="Sort by").first
    select.get_by_role("combobox").click()
    page.get_by_role("listbox").wait_for()
    wait_refreshes(page, 2)
    assert page.get_by_role("listbox").count() == 1  # still open
    page.get_by_role("option", name="24h change, losers first").click()
    wait_for(
        lambda: (
            (changes := [float(r[C["24h %"]]) for r in visible_rows(page)])
            and changes == sorted(changes)
        ),
        timeout=10.0,
        what="the grid sorted by change, losers first",
    )
    worst = float(visible_rows(page)[0][C["24h %"]])
    assert worst < -5.0  # 100 markets: the worst fell by over 5 %


def test_navigation_between_the_pages(page: Any) -> None:
    open_overview(page)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Market").click()
    page.locator(".card .cvalue").first.wait_for()
    page.locator("table.book tr.ask").nth(19).wait_for()  # the ladder follows the cards
    assert page.locator(".ovcount").count() == 0
    assert page.locator("table.book tr.ask").count() == 20
    assert "ORDER BOOK · SYM000USDT" in page.locator(".ladder .panelhead").inner_text()
    assert page.locator(".simbanner").is_visible()
    wait_for(
        lambda: page.locator('[data-testid="stPlotlyChart"] .nsewdrag').count() > 0,
        timeout=20.0,
        what="the chart",
    )
    page.screenshot(path=str(ARTIFACTS / "market.png"))

    page.locator('[data-testid="stSidebarNav"] a', has_text="Overview").click()
    page.locator(f'.ovcount[data-markets="{N}"]').wait_for()
    assert page.url.endswith("/overview")
    assert page.locator(".card .cvalue").count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0
