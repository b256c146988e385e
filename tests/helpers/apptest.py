"""The real page (``app/main.py``) through Streamlit's AppTest, on the simulated feed: where it
is, how long one run may take, the market it shows first, and how to read it back. The ``page``
fixture that runs it (seeded; its worker stopped afterwards) is in ``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.runtime import get_worker
from market.views import MarketView
from market.worker import Worker
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "app" / "main.py")
RUN_TIMEOUT = 30.0
MARKET = ("mock", "BTCUSDT")


def running_worker() -> Worker:
    worker = get_worker()  # the instance the page's cache_resource created
    assert worker.running
    return worker


def wait_for_history(worker: Worker, seconds: float = 1.5) -> MarketView:
    """Until the market has a synced book, > ``seconds`` of series and some trades."""

    def ready() -> MarketView | None:
        v = worker.store.snapshot(markets=[MARKET]).markets.get(MARKET)
        if v is None or not v.synced or not v.trades or len(v.series) < 2:
            return None
        return v if v.series[-1][0] - v.series[0][0] > seconds else None

    return wait_for(ready, timeout=20.0, what="a synced simulated book with history")


def html_of(at: AppTest, marker: str) -> str:
    found = [h.value for h in at.html if marker in h.value and not h.value.startswith("<style>")]
    assert len(found) == 1, f"expected one st.html containing {marker!r}, got {len(found)}"
    return found[0]
