"""Synthetic recordings with their truth: a Bybit ``orderbook.50`` stream (snapshot and
``u``-chained deltas) whose true books are kept in plain dicts, and ``write`` to record frames
as ``python -m market record`` does (hftbacktest format, receive times from ``T0_NS``).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from market.recording import Recorder

T0_NS = 1_700_000_000_000_000_000


def top(side: dict[float, float], n: int, best_high: bool) -> list[tuple[float, float]]:
    return sorted(side.items(), reverse=best_high)[:n]


# -- a synthetic Bybit stream with its truth ------------------------------------------------------


@dataclass
class BybitStream:
    """Snapshot + ``u``-chained deltas of absolute quantities; the truth kept in dicts."""

    symbol: str
    rng: random.Random
    u: int = 100
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)

    def snapshot(self) -> str:
        if not self.bids:
            self.bids = {round(99.5 - i * 0.5, 2): float(i + 1) for i in range(30)}
            self.asks = {round(100.5 + i * 0.5, 2): float(i + 2) for i in range(30)}
        self.u += 1
        return self._frame(
            "snapshot", sorted(self.bids.items(), reverse=True), sorted(self.asks.items())
        )

    def delta(self, skip: bool = False) -> str:
        b, a = [], []
        for _ in range(self.rng.randint(1, 4)):
            bid = self.rng.random() < 0.5
            side, out = (self.bids, b) if bid else (self.asks, a)
            price = round(
                (99.5 - self.rng.randint(0, 40) * 0.5)
                if bid
                else (100.5 + self.rng.randint(0, 40) * 0.5),
                2,
            )
            qty = 0.0 if self.rng.random() < 0.3 else float(self.rng.randint(1, 90))
            if qty:
                side[price] = qty
            else:
                side.pop(price, None)
            out.append((price, qty))
        self.u += 2 if skip else 1
        return self._frame("delta", b, a)

    def _frame(self, kind: str, b: list[tuple[float, float]], a: list[tuple[float, float]]) -> str:
        return json.dumps({
            "topic": f"orderbook.50.{self.symbol}", "ts": 1_700_000_000_000 + self.u, "type": kind,
            "data": {"s": self.symbol, "b": [[str(p), str(q)] for p, q in b],
                     "a": [[str(p), str(q)] for p, q in a], "u": self.u, "seq": self.u},
        })  # fmt: skip

    def truth(
        self, n: int = 20
    ) -> tuple[list[tuple[float, float]], list[tuple[float, float]], int]:
        return top(self.bids, n, True), top(self.asks, n, False), self.u


def write(path: Path, frames: list[str], step_ns: int = 10_000_000) -> Path:
    rec = Recorder(path)
    for i, frame in enumerate(frames):
        rec.frame(frame, T0_NS + i * step_ns)
    rec.close()
    return path


def bybit_recording(path: Path, gap: bool = False) -> tuple[Path, dict[str, BybitStream]]:
    rng = random.Random(3)
    streams = {s: BybitStream(s, rng) for s in ("BTCUSDT", "ETHUSDT")}
    frames = ['{"success":true,"ret_msg":"","op":"subscribe","req_id":"subscribe-1"}']
    frames += [s.snapshot() for s in streams.values()]
    for i in range(60):
        for s in streams.values():
            frames.append(s.delta(skip=gap and i == 30 and s.symbol == "BTCUSDT"))
    if gap:
        frames.append(streams["BTCUSDT"].snapshot())  # the live feed resubscribed: a fresh book
        frames += [streams["BTCUSDT"].delta() for _ in range(5)]
    return write(path, frames), streams
