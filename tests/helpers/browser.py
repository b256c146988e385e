"""The app served by a real ``streamlit run app/main.py`` (``streamlit_server``, as
``run_mock.sh`` starts it), and what the browser tests drive it with: Debian's chromium and its
flags, the chart's selector and its x range, the page's refresh. The ``browser`` fixture
(chromium through Playwright, one a module) is in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import wait_for
from tests.helpers.net import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
REFRESH_S = 0.8  # app.components.dashboard.REFRESH_S
CHART = '[data-testid="stPlotlyChart"] .js-plotly-plot'
X_RANGE = f"""() => {{
    const gd = document.querySelector('{CHART}');
    if (!gd || !gd._fullLayout) return null;
    const x = gd._fullLayout.xaxis;
    return {{range: x.range, auto: x.autorange}};
}}"""


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def streamlit_server(settings: dict[str, str], log_name: str) -> Iterator[str]:
    """``streamlit run app/main.py`` with ``settings`` in its environment, on a free port;
    yields its URL, then kills it (the whole process group). Its output goes to artifacts/."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **settings}
    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / log_name).open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py",
         "--server.port", str(port), "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(
            lambda: proc.poll() is not None or healthy(url), timeout=60.0, interval=0.2,
            what="the streamlit health endpoint",
        )  # fmt: skip
        assert proc.poll() is None, f"streamlit exited with {proc.returncode}; see {log.name}"
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()
