"""The venues: one module each, and this registry, the one list of them.

A venue module (see ``binance.py``) holds a header of URLs and limits, ``parse`` functions whose
docstrings show a real frame, a ``Session`` subclass of ``market.venues.base.Session``, and, on
its last lines, its declaration registered: ``VENUE = register(Venue(...))`` (its name, display
name, URL settings and defaults, market kinds, how its recordings are recognised). A new venue
is that one file plus its name on the import line below; settings, the CLI, the page, recording
detection and the backfill are built from ``VENUES``. ``mock`` is the simulated venue: no
socket, no session, the same events (``market.feed.SimulatedFeed``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from market.settings import declare

# The registry: one name a venue (each module registers its VENUE as it is imported).
from market.venues import binance, bybit, hyperliquid, mock  # noqa: F401
from market.venues.base import Session, Simulator, Venue, registered

VENUES: tuple[Venue, ...] = registered()  # in the order imported above
DEFAULT = binance.EXCHANGE  # MARKET_EXCHANGE's default
declare(*VENUES, default=DEFAULT)

BY_NAME: dict[str, Venue] = {v.name: v for v in VENUES}
SESSIONS: dict[str, type[Session]] = {v.name: v.session for v in VENUES if v.session is not None}
_SIMULATED = next(v for v in VENUES if v.simulated)  # the fallback's venue
if _SIMULATED.simulator is None:
    raise TypeError(f"the simulated venue {_SIMULATED.name!r} declares no simulator")
SIMULATED: str = _SIMULATED.name
SIMULATOR: Callable[[tuple[str, ...], int | None], Simulator] = _SIMULATED.simulator
RECORDABLE: tuple[str, ...] = tuple(v.name for v in VENUES if v.recordable)


def display(name: str) -> str:
    """How a person reads exchange ``name`` (the name itself when it is not a venue)."""
    found = BY_NAME.get(name)
    return found.display if found is not None else name


def is_simulated(name: str) -> bool:
    found = BY_NAME.get(name)
    return found is not None and found.simulated


def described(names: Iterable[str]) -> str:
    """``Binance, Bybit or HyperLiquid``: venues in an error text."""
    shown = [display(n) for n in names]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


class _Recorded(Protocol):
    @property
    def raw(self) -> str: ...
    @property
    def snapshot_symbol(self) -> str | None: ...


def detect_exchange(records: Iterable[_Recorded], probe: int = 50) -> str | None:
    """Which venue a recording came from, by the shape of its first ``probe`` frames."""
    real = [v for v in VENUES if v.recordable]
    for i, record in enumerate(records):
        if i >= probe:
            break
        for v in real:
            if v.recognises(record.raw, record.snapshot_symbol is not None):
                return v.name
    return None
