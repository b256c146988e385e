"""The headless CLI as a real subprocess (``python -m market …``) and its JSON lines.

``cli`` runs it in a clean environment (no MARKET_*/BINANCE_* variables, no proxies, see
``clean_env``); ``parse_lines`` reads its output and ``check_line`` checks one line against the
public schema of DESIGN.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import ROOT

LINE_KEYS = {
    "t", "exchange", "symbol", "source", "status", "best_bid", "best_ask", "mid", "spread",
    "imbalance", "bids", "asks", "trades", "last_trade",
    # analytics (DESIGN.md: the line grows these, never renames)
    "vwap", "cvd", "depth_delta", "volatility_spread", "candles", "alerts", "ticker",
}  # fmt: skip
STATUS_KEYS = {"state", "detail", "reconnects", "resyncs", "messages", "bad_messages"}
# FeedStatus fields (DESIGN.md "Feed health is data") the status object may carry besides
FEED_STATUS_EXTRAS = {"last_message_age_s", "msg_rate", "next_retry_in_s"}
STATES = {"connecting", "live", "reconnecting", "blocked", "simulated", "stopped"}
SETTINGS_VARS = (
    "MARKET_EXCHANGE", "MARKET_SYMBOLS", "MARKET_FALLBACK", "BINANCE_WS_URL", "BINANCE_REST_URL",
    "BYBIT_WS_URL", "HYPERLIQUID_WS_URL", "CONNECTION_TIMEOUT_SECONDS", "STALE_AFTER_SECONDS",
    "MOCK_SEED",
)  # fmt: skip


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SETTINGS_VARS and "proxy" not in k.lower() and not k.startswith("PYTEST")
    }
    env["PYTHONPATH"] = str(ROOT)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def cli(
    args: list[str], cwd: Path, timeout: float = 30.0, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "market", *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def is_number(x: object) -> bool:
    return type(x) in (int, float)


def check_line(line: dict[str, Any], depth: int = 20) -> None:
    """The public schema of DESIGN.md, and the numbers consistent with each other."""
    assert set(line) == LINE_KEYS
    assert is_number(line["t"])
    assert type(line["exchange"]) is str and type(line["symbol"]) is str
    assert line["source"] in ("live", "simulated", "replay")
    status = line["status"]
    assert STATUS_KEYS <= set(status) <= STATUS_KEYS | FEED_STATUS_EXTRAS, set(status)
    assert status["state"] in STATES
    assert type(status["detail"]) is str
    for key in ("reconnects", "resyncs", "messages", "bad_messages"):
        assert type(status[key]) is int and status[key] >= 0, key
    for key in ("best_bid", "best_ask", "mid", "spread", "imbalance"):
        assert line[key] is None or is_number(line[key]), key
    bids, asks = line["bids"], line["asks"]
    for levels in (bids, asks):
        assert isinstance(levels, list) and len(levels) <= depth
        for level in levels:
            assert isinstance(level, list) and len(level) == 2
            assert all(is_number(x) for x in level) and level[0] > 0 and level[1] > 0
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)
    assert len({p for p, _ in bids}) == len(bids) and len({p for p, _ in asks}) == len(asks)
    if bids and asks:
        bb, ba = bids[0][0], asks[0][0]
        assert bb < ba
        assert (line["best_bid"], line["best_ask"]) == (bb, ba)
        assert line["mid"] == pytest.approx((bb + ba) / 2, rel=1e-12)
        assert line["spread"] == pytest.approx(ba - bb, rel=1e-12)
        if len(bids) >= 5 and len(asks) >= 5:  # imbalance is over the best 5 levels of the book
            bid_vol = sum(q for _, q in bids[:5])
            ask_vol = sum(q for _, q in asks[:5])
            expected = (bid_vol - ask_vol) / (bid_vol + ask_vol)
            assert line["imbalance"] == pytest.approx(expected, rel=1e-9)
        assert -1 <= line["imbalance"] <= 1
    elif not bids and not asks:
        assert line["best_bid"] is line["best_ask"] is line["mid"] is line["spread"] is None
        assert line["imbalance"] is None
    assert type(line["trades"]) is int and line["trades"] >= 0
    last = line["last_trade"]
    if last is None:
        assert line["trades"] == 0
    else:
        assert set(last) == {"price", "qty", "side", "ts"}
        assert is_number(last["price"]) and is_number(last["qty"]) and type(last["ts"]) is int
        assert last["side"] in ("buy", "sell")
        assert line["trades"] >= 1
    assert line["vwap"] is None or is_number(line["vwap"])
    assert is_number(line["cvd"]) and is_number(line["volatility_spread"])
    assert line["volatility_spread"] >= 0
    if (bids or asks) and depth >= 20:  # the line's levels hold the top 20 the figure sums
        assert line["depth_delta"] == pytest.approx(
            sum(q for _, q in bids[:20]) - sum(q for _, q in asks[:20]), rel=1e-9, abs=1e-9
        )
    candles = line["candles"]
    assert isinstance(candles, list) and len(candles) <= 5
    for c in candles:
        assert len(c) == 7 and type(c[0]) is int and type(c[6]) is int and c[0] % 60_000 == 0
        assert c[3] <= min(c[1], c[4]) <= max(c[1], c[4]) <= c[2]
    assert [c[0] for c in candles] == sorted(c[0] for c in candles)
    assert isinstance(line["alerts"], list) and len(line["alerts"]) <= 20
    for a in line["alerts"]:
        assert set(a) == {"ts", "side", "price", "qty", "notional"}
        assert a["notional"] == pytest.approx(a["price"] * a["qty"])


def parse_lines(stdout: str) -> list[dict[str, Any]]:
    lines = stdout.splitlines()
    assert lines, "no output"
    assert "NaN" not in stdout and "Infinity" not in stdout
    return [orjson.loads(line) for line in lines]
