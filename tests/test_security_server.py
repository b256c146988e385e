"""Other web pages must not drive the dashboard: the real server, started as ``./run.sh``
starts it (with the project's ``.streamlit/config.toml``), answers raw WebSocket handshakes.

DNS rebinding: a page on ``evil.example`` whose name an attacker re-points at 127.0.0.1 makes
the browser send ``Host: evil.example`` and ``Origin: http://evil.example`` to our port. The
Origin matches the Host, so Streamlit's same-origin rule alone lets it in (a 101 and full
control of the shared feed); ``server.allowedHosts`` refuses it with 403.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.helpers.browser import streamlit_server


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    settings = {"MARKET_EXCHANGE": "mock", "MARKET_SYMBOLS": "BTCUSDT", "MOCK_SEED": "3"}
    with streamlit_server(settings, "security-server.log") as url:
        yield int(urlsplit(url).port or 0)


def handshake(port: int, host: str, origin: str | None) -> str:
    """Send a WebSocket upgrade for /_stcore/stream to 127.0.0.1:``port`` with these Host and
    Origin headers (a browser's, byte for byte but the cookie); return the status line."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /_stcore/stream HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: streamlit",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0].decode("latin-1")


def http_get(port: int, path: str, host: str) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    with urllib.request.urlopen(request, timeout=20) as response:
        return int(response.status), bytes(response.read())


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("evil.example", "http://evil.example"),  # the rebinding page, default port
        ("evil.example:{port}", "http://evil.example:{port}"),  # ... on our port
        ("localhost.evil.example:{port}", "http://localhost.evil.example:{port}"),
        ("evil.example:{port}", None),  # a script without Origin, under a rebound name
    ],
)
def test_a_rebound_host_is_refused(port: int, host: str, origin: str | None) -> None:
    status = handshake(port, host.format(port=port), origin and origin.format(port=port))
    assert status == "HTTP/1.1 403 Forbidden"


def test_another_sites_page_is_refused_on_localhost(port: int) -> None:
    status = handshake(port, f"localhost:{port}", "http://evil.example")
    assert status == "HTTP/1.1 403 Forbidden"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_the_local_names_still_connect(port: int, host: str) -> None:
    status = handshake(port, f"{host}:{port}", f"http://{host}:{port}")
    assert status == "HTTP/1.1 101 Switching Protocols"


def test_the_page_and_health_still_answer_at_localhost(port: int) -> None:
    status, body = http_get(port, "/", f"localhost:{port}")
    assert status == 200
    assert b'<div id="root"></div>' in body
    assert http_get(port, "/_stcore/health", f"localhost:{port}") == (200, b"ok")


def test_no_parent_page_may_send_commands(port: int) -> None:
    """``client.allowedOrigins`` empty: the page accepts postMessage commands from no embedder."""
    status, body = http_get(port, "/_stcore/host-config", f"localhost:{port}")
    assert status == 200
    assert json.loads(body)["allowedOrigins"] == []
