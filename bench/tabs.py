"""CPU share of the Streamlit server per open browser tab, at the page's 0.8 s refresh.

    .venv/bin/python bench/tabs.py [--tabs 0 1 10] [--seconds 30] [--page market|overview]
                                   [--symbols 3]

Starts the dashboard on the simulated feed (``MARKET_EXCHANGE=mock``) on a free port, then for
each tab count opens that many tabs in Debian's chromium (Playwright, ``/usr/bin/chromium``),
each in its own browser context (as separate viewers), waits for the first refresh, and
samples the server process's CPU time (user + system, from /proc, every thread: the feed, the
fragment runs, the websocket writes) over ``--seconds``. Each tab counts its own redraws (the
footer changes once a run), so a tab the browser throttled shows up as fewer refreshes per
second instead of as a cheap tab. The server with 0 tabs (after one visit has started the
worker) is the feed alone; the difference per tab is what a viewer costs. CPU time is what
the server itself used, so other load on the machine changes it little (the load average is
printed with each line). Bounded: every tab count runs for ``--seconds``, then the server and
the browser stop.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system time of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer at {url} within {timeout:.0f} s")


# Counts the fragment's redraws: each run writes a new footer ("render 12.3 ms · ...").
COUNT_REDRAWS = """() => {
    window.__redraws = 0;
    let last = '';
    new MutationObserver(() => {
        const f = document.querySelector('.footer');
        const text = f ? f.textContent : '';
        if (text !== last) { last = text; window.__redraws += 1; }
    }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tabs", type=int, nargs="+", default=[0, 1, 10])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--page", choices=("market", "overview"), default="market")
    parser.add_argument("--symbols", type=int, default=3)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    port = free_port()
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"] + [f"S{i:03d}USDT" for i in range(200)]
    env = {
        **os.environ,
        "MARKET_EXCHANGE": "mock",
        "MARKET_SYMBOLS": ",".join(symbols[: args.symbols]),
        "MOCK_SEED": "1",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"),
         "--server.headless", "true", "--server.port", str(port),
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/" + ("overview" if args.page == "overview" else "")
    results = []
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                # the worker starts with the first session: visit once, so 0 tabs = the feed
                warm = browser.new_page()
                warm.goto(url)
                warm.wait_for_selector('[data-testid="stMarkdownContainer"]', timeout=60_000)
                warm.close()
                for n in args.tabs:
                    contexts = [
                        browser.new_context(viewport={"width": 1400, "height": 900})
                        for _ in range(n)
                    ]
                    pages = [context.new_page() for context in contexts]
                    for page in pages:
                        page.goto(url)
                        page.wait_for_selector(".footer", state="attached", timeout=120_000)
                        page.evaluate(COUNT_REDRAWS)
                    time.sleep(3.0)  # warm-up: the first runs build caches
                    runs0 = [int(page.evaluate("window.__redraws")) for page in pages]
                    c0, w0 = cpu_seconds(server.pid), time.monotonic()
                    time.sleep(args.seconds)
                    c1, w1 = cpu_seconds(server.pid), time.monotonic()
                    runs = [
                        int(page.evaluate("window.__redraws")) - r
                        for page, r in zip(pages, runs0, strict=True)
                    ]
                    share = (c1 - c0) / (w1 - w0)
                    results.append(
                        {
                            "tabs": n,
                            "page": args.page,
                            "server_cpu_share_of_one_core": round(share, 4),
                            "redraws_per_s_per_tab": round(sum(runs) / max(n, 1) / (w1 - w0), 2),
                            "loadavg_1m": os.getloadavg()[0],
                        }
                    )
                    print(json.dumps(results[-1]), flush=True)
                    for context in contexts:
                        context.close()
            finally:
                browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    base = next((r["server_cpu_share_of_one_core"] for r in results if r["tabs"] == 0), None)
    if base is not None:
        for r in results:
            if r["tabs"]:
                per_tab = (r["server_cpu_share_of_one_core"] - base) / r["tabs"]
                line = {
                    "tabs": r["tabs"],
                    "page": args.page,
                    "cpu_share_per_tab": round(per_tab, 4),
                }
                print(json.dumps(line))


if __name__ == "__main__":
    main()
