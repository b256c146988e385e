"""Every error the market core raises, in one tree.

    MarketError
    ├── SettingsError          a bad environment variable or argument (names the variable)
    ├── InvalidSymbol          a symbol refused before anything is sent
    ├── BadMessage             a frame that does not parse (counted, logged, skipped)
    ├── BookError
    │   ├── SequenceGap        an update id jumped: that symbol's book must be rebuilt
    │   └── CrossedBook        best bid >= best ask: that symbol's book must be rebuilt
    └── FeedError
        ├── RegionBlocked      HTTP 451/403: the exchange refuses this location
        └── SnapshotError      a REST request got no usable answer (retryable)

Each carries a short message naming the problem (a value quoted at most in part, never a
secret); library errors are translated at the boundary with ``raise … from exc``.
"""

from __future__ import annotations


class MarketError(Exception):
    """Base class of every error raised by the market core."""


class SettingsError(MarketError, ValueError):
    """A setting has a bad value; the message names the variable."""


class InvalidSymbol(MarketError, ValueError):
    """A symbol does not match the allowed form (or the exchange's own rules)."""


class BadMessage(MarketError):
    """A frame could not be parsed into events."""


class BookError(MarketError):
    """The local book can no longer be trusted for one symbol."""

    def __init__(self, symbol: str, message: str) -> None:
        super().__init__(f"{symbol}: {message}")
        self.symbol = symbol


class SequenceGap(BookError):
    """An update was missed: the book must be rebuilt from a fresh snapshot."""


class CrossedBook(BookError):
    """Best bid >= best ask after an update: never shown, triggers a resync."""


class FeedError(MarketError):
    """A connection-level problem with an exchange."""


class RegionBlocked(FeedError):
    """The exchange refused us for our location (HTTP 451, or 403 at the handshake)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class SnapshotError(FeedError):
    """A REST request (a book snapshot, a backfill) failed in a way worth retrying."""
