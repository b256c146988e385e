"""The one redactor: what may be shown of a value, a URL or a message (a leaf module).

Every URL that is logged or shown (a venue's, ``MARKET_DB``, ``MARKET_BUS``, a webhook) goes
through ``redact_url``; every free text that may hold one (an exception's message) through
``redact_text``; every value quoted in an error through ``shown``. Credentials are masked in
each form the drivers accept: ``user:password@`` (even with an unencoded ``?``, ``#`` or ``/`` in
the password), query parameters named like secrets (``password=``, ``token=``, ``apiKey=``…),
and libpq's ``key=value`` conninfo words (``password=…``).
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

EXCERPT_CHARS = 60  # the most of any value an error message quotes
MAX_URL_CHARS = 2048
# a variable (or query parameter) whose name holds one of these is never quoted
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASS|PWD|CREDENTIAL|AUTH|SIGNATURE", re.I)
_CONNINFO_SECRET = re.compile(
    r"(?<![\w?&])(\w*(?:pass|pwd|secret|token|key)\w*\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&#]+)", re.I
)


def excerpt(text: str, limit: int = EXCERPT_CHARS, total: int | None = None) -> str:
    """``text`` quoted (``repr``: control characters escaped), cut to ``limit`` characters;
    ``total``: the length of the whole value ``text`` was taken from."""
    total = len(text) if total is None else total
    if len(text) <= limit and total <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({total:,} characters)"


def shown(name: str, value: str) -> str:
    """How an error message quotes variable ``name``'s ``value``: an excerpt with URL
    credentials masked, or nothing of it when the name says it is a secret."""
    if SECRET_NAME.search(name):
        return "(a value, not shown: a secret)"
    return excerpt(redact_text(value[:MAX_URL_CHARS]), total=len(value))


def redact_url(url: str, *, keep_user: bool = False) -> str:
    """``url`` fit to log or show: its userinfo becomes ``***@`` (``user:***@``, or ``user@``
    for a user alone, with ``keep_user``), the values of query parameters named like secrets
    become ``***``, and so do libpq's ``password=…`` words in a conninfo string. Never raises."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _CONNINFO_SECRET.sub(r"\1***", url)
    if "@" in rest:
        # the last "@" ends the userinfo whatever it holds: a password may carry ?, # or /
        userinfo, _, hostpart = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        if keep_user and user and not any(c in user for c in "/?#"):
            kept = f"{user}:***@" if colon else f"{user}@"  # a user alone is not a secret
        else:
            kept = "***@"
        rest = kept + hostpart
    url = f"{scheme}://{rest}"
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return url
    if not any(SECRET_NAME.search(k) for k, _ in query):
        return url  # nothing more to hide: as it was (geturl() would drop a bare "#")
    masked = [(k, "***" if SECRET_NAME.search(k) else v) for k, v in query]
    parts = parts._replace(query=urlencode(masked, safe="*,:@/"))
    return SplitResult(parts.scheme, parts.netloc, parts.path, parts.query, parts.fragment).geturl()


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def redact_text(text: str) -> str:
    """``text`` (an error message, a log line) with every URL in it passed to ``redact_url``
    and every ``password=…`` word masked."""
    if "://" in text:
        text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    if "=" in text:
        text = _CONNINFO_SECRET.sub(r"\1***", text)
    return text
