"""BusFeed: what the pages use of a ``Worker`` (``store``, ``settings``, ``reconfigure``,
``stop``), fed by a ``BusReader`` instead of exchange connections (``MARKET_BUS``).

``settings.exchanges`` are those the live collectors serve (narrowed by a choice in the
sidebar), ``settings.symbols`` what this dashboard wants; ``reconfigure(symbols=…)`` asks the
collectors over the bus (they subscribe the union of wants, or refuse with a reason shown on
the market).
"""

from __future__ import annotations

import time
from dataclasses import replace

from market.bus.reader import BusReader
from market.errors import FeedError, InvalidSymbol, SettingsError
from market.settings import Settings
from market.store import MarketStore
from market.symbols import MAX_SYMBOLS, validate_symbol


class BusFeed:
    def __init__(self, settings: Settings, store: MarketStore | None = None) -> None:
        if settings.bus is None:
            raise SettingsError("MARKET_BUS is not set: there is no bus to read")
        self.store = store if store is not None else MarketStore()
        self._base = settings
        self._chosen: tuple[str, ...] | None = None  # exchanges picked in the sidebar
        self.reader = BusReader(
            settings.bus, self.store, settings.symbols, stale_after=settings.stale_after,
            role="dashboard",
        )  # fmt: skip

    def start(self) -> BusFeed:
        self.reader.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.reader.stop(timeout)

    @property
    def running(self) -> bool:
        return self.reader.info().link.state != "stopped"

    def wait_served(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until the bus says which exchanges are collected, so
        the pages' defaults are the collectors' (True), not MARKET_EXCHANGE's."""
        deadline = time.monotonic() + timeout
        while not self.reader.exchanges():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    @property
    def settings(self) -> Settings:
        served = self.reader.exchanges()
        exchanges = served or self._base.exchanges
        if self._chosen is not None:
            exchanges = tuple(e for e in self._chosen if not served or e in served) or exchanges
        return replace(self._base, exchanges=exchanges, symbols=self.reader.symbols)

    def reconfigure(
        self,
        exchange: str | None = None,
        symbols: tuple[str, ...] | None = None,
        *,
        exchanges: tuple[str, ...] | None = None,
    ) -> Settings:
        """Show these exchanges (among those collected) and want these symbols."""
        if exchange is not None:
            exchanges = (exchange,)
        if exchanges is not None:
            served = self.reader.exchanges()
            if served and not any(e in served for e in exchanges):
                raise FeedError(
                    f"{', '.join(exchanges)[:60]}: not collected on the bus "
                    f"(the collectors serve {', '.join(served)})"
                )
        if symbols is not None:
            checked = tuple(dict.fromkeys(validate_symbol(s).replace("-", "") for s in symbols))
            if not checked:
                raise InvalidSymbol("no symbols given")
            if len(checked) > MAX_SYMBOLS:
                raise InvalidSymbol(f"{len(checked)} symbols: at most {MAX_SYMBOLS} at once")
            self.reader.want(checked)
        if exchanges is not None:
            self._chosen = tuple(exchanges)
        return self.settings
