"""A venue is one file and one registry line: README's "Adding a venue", followed to the letter.

On a copy of the package: an existing venue's module copied under a new name (``acme``) with its
name, display name and URL settings changed, and the name added to the registry's import line.
Nothing else is edited. Then the real CLI watches it against a loopback fake exchange speaking
that protocol, and its books must end equal to the fake's, level for level.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from tests.conftest import ROOT, wait_for
from tests.fakes.binance import FakeBinance

REGISTRY_LINE = "from market.venues import binance, bybit, hyperliquid, mock"


def add_venue(dest: Path) -> Path:
    """``market/`` copied to ``dest`` with a venue ``acme`` added as the README says."""
    shutil.copytree(ROOT / "market", dest / "market", ignore=shutil.ignore_patterns("__pycache__"))
    venues = dest / "market" / "venues"
    module = (venues / "binance.py").read_text(encoding="utf-8")
    for old, new in (
        ('EXCHANGE = "binance"', 'EXCHANGE = "acme"'),
        ('display="Binance"', 'display="Acme"'),
        ('"BINANCE_WS_URL"', '"ACME_WS_URL"'),
        ('"BINANCE_REST_URL"', '"ACME_REST_URL"'),
    ):
        assert module.count(old) == 1, old  # the header names each once
        module = module.replace(old, new)
    (venues / "acme.py").write_text(module, encoding="utf-8")
    registry = venues / "__init__.py"
    before = registry.read_text(encoding="utf-8")
    assert before.count(REGISTRY_LINE) == 1
    after = before.replace(REGISTRY_LINE, REGISTRY_LINE.replace("import ", "import acme, "))
    registry.write_text(after, encoding="utf-8")
    changed = [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="")
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert len(changed) == 2  # one line out, one line in: the registry line
    return dest


def env_for(src: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MARKET_", "BINANCE_", "BYBIT_", "HYPERLIQUID_", "PYTEST"))
        and "proxy" not in k.lower()
    }
    env.update(PYTHONPATH=str(src), MARKET_DB="none", NO_PROXY="127.0.0.1,localhost", **extra)
    return env


def lines_of(stdout: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stdout.splitlines() if line.strip()]


def test_a_copied_venue_is_known_everywhere_the_registry_reaches(tmp_path: Path) -> None:
    src = add_venue(tmp_path / "src")
    out = subprocess.run(
        [sys.executable, "-m", "market", "watch", "--help"],
        cwd=tmp_path, env=env_for(src), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "acme" in out.stdout.replace("\n", " ")
    bad = subprocess.run(
        [sys.executable, "-m", "market", "watch", "--exchange", "acme", "--seconds", "1"],
        cwd=tmp_path, env=env_for(src, ACME_WS_URL="http://example.test"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "ACME_WS_URL='http://example.test': must be a ws/wss:// URL" in bad.stderr


def test_a_copied_venue_is_watched_live_and_its_books_are_exact(tmp_path: Path) -> None:
    src = add_venue(tmp_path / "src")
    symbols = ["BTCUSDT", "ETHUSDT"]
    with FakeBinance(symbols, seed=5) as ex:
        proc = subprocess.Popen(
            [sys.executable, "-m", "market", "watch", "--exchange", "acme", "--symbols",
             ",".join(symbols), "--seconds", "6", "--interval", "1"],
            cwd=tmp_path,
            env=env_for(src, ACME_WS_URL=ex.ws_url, ACME_REST_URL=ex.rest_url,
                        MARKET_FALLBACK="none"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_for(lambda: ex.connections() > 0, timeout=20, what="the CLI to connect")
            wait_for(
                lambda: all(ex.snapshot_requests[s] > 0 for s in symbols),
                timeout=10,
                what="the snapshot requests",
            )
            for _ in range(30):  # the exchange moves while the CLI watches, then stops
                ex.tick(1)
                time.sleep(0.02)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        truth = {s: ex.truth(s, 20) for s in symbols}
    assert proc.returncode == 0, stderr
    lines = lines_of(stdout)
    assert {line["exchange"] for line in lines} == {"acme"}
    last = {line["symbol"]: line for line in lines[-len(symbols) :]}
    for symbol in symbols:
        bids, asks, _ = truth[symbol]
        line = last[symbol]
        assert (line["source"], line["status"]["state"]) == ("live", "live")
        assert ([tuple(lv) for lv in line["bids"]], [tuple(lv) for lv in line["asks"]]) == (
            list(bids),
            list(asks),
        )
        assert len(bids) == len(asks) == 20
