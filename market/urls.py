"""URLs from outside, checked where they enter: a venue's base URL, ``MARKET_DB`` and
``MARKET_BUS`` (a leaf module: it imports only the error tree and the one redactor).

Each parser raises ``SettingsError`` naming the variable (or CLI option) and quoting at most an
excerpt of the value with its credentials masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from market.errors import SettingsError
from market.redact import MAX_URL_CHARS, redact_url, shown

WS_SCHEMES = ("ws", "wss")
HTTP_SCHEMES = ("http", "https")


def parse_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    """A base URL: one of ``schemes``, a host, a port in 1-65535 if any, no fragment, no
    space or control character; refused naming ``name`` (credentials never quoted)."""
    what = f"must be a {'/'.join(schemes)}:// URL with a host"
    if len(value) > MAX_URL_CHARS:
        raise SettingsError(f"{name}={shown(name, value)}: longer than {MAX_URL_CHARS} characters")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise SettingsError(
            f"{name}={shown(name, value)}: a space or control character in a URL ({what})"
        )
    try:
        parts = urlsplit(value)
    except ValueError as exc:  # e.g. "Invalid IPv6 URL"
        raise SettingsError(f"{name}={shown(name, value)}: not a URL ({exc})") from None
    try:
        port = parts.port  # ValueError: "abc", or out of 0-65535
    except ValueError:
        port = 0
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise SettingsError(f"{name}={shown(name, value)}: {what}")
    if port == 0:
        raise SettingsError(f"{name}={shown(name, value)}: the port must be a number in 1-65535")
    if parts.fragment or value.endswith("#"):
        raise SettingsError(f"{name}={shown(name, value)}: a base URL has no #fragment")
    return value.rstrip("/")


def check_redis_url(name: str, value: str) -> str:
    """``redis://[user:password@]host[:port][/db]``; raises ``SettingsError`` naming ``name``
    (the password never appears in the message)."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
        db = parts.path.strip("/")
    except ValueError as exc:
        raise SettingsError(f"{name}: not a redis:// URL ({exc})") from None
    shown = f"{parts.scheme}://{parts.hostname or ''}{'' if port is None else f':{port}'}"
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise SettingsError(f"{name}={shown[:60]!r}: must be a redis://HOST[:PORT][/DB] URL")
    if db and not (db.isdigit() and int(db) < 1_000):
        raise SettingsError(
            f"{name}={shown[:60]!r}: the database must be a number, got {db[:20]!r}"
        )
    return text


# -- MARKET_DB (market/history): sqlite:///PATH, postgresql://…, none ----------------------

DbKind = Literal["sqlite", "postgresql", "none"]


@dataclass(frozen=True, slots=True)
class DbUrl:
    kind: DbKind
    target: str  # the SQLite path, or the PostgreSQL conninfo URL; "" for none
    shown: str  # the URL with any password replaced by ***: safe to print

    @property
    def enabled(self) -> bool:
        return self.kind != "none"

    @property
    def url(self) -> str:
        """The URL again (password included: never print it; print ``shown``)."""
        return f"sqlite:///{self.target}" if self.kind == "sqlite" else self.target or "none"


def parse_db_url(value: str, name: str = "MARKET_DB") -> DbUrl:
    """``sqlite:///PATH``, ``postgresql://…`` (or ``postgres://``) or ``none``; anything else
    raises ``SettingsError`` naming ``name`` (the password never quoted)."""
    text = value.strip()
    if text.lower() == "none":
        return DbUrl("none", "", "none")
    shown = redact_url(text, keep_user=True)
    quoted = repr(shown[:60] + ("…" if len(shown) > 60 else ""))
    usage = "must be sqlite:///PATH, postgresql://USER@HOST/DB or none"
    try:
        parts = urlsplit(text)
    except ValueError:
        raise SettingsError(f"{name}={quoted}: {usage}") from None
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        path = text[len("sqlite:///") :] if text.lower().startswith("sqlite:///") else ""
        if parts.netloc or not path or path.endswith("/"):
            raise SettingsError(f"{name}={quoted}: {usage} (a file path after sqlite:///)")
        return DbUrl("sqlite", path, shown)
    if scheme in ("postgresql", "postgres"):
        try:
            port = parts.port
        except ValueError:
            raise SettingsError(f"{name}={quoted}: the port must be a number") from None
        del port
        if not parts.netloc and "host=" not in parts.query:
            raise SettingsError(f"{name}={quoted}: {usage} (a host is missing)")
        return DbUrl("postgresql", text, shown)
    raise SettingsError(f"{name}={quoted}: {usage}")
