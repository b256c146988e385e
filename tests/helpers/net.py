"""Loopback ports."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port free a moment ago (bound, then released): for a server to listen on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    return free_port()
