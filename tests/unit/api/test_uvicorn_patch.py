"""api.http.uvicorn_patch answers byte for byte what uvicorn itself answers, on real
servers over loopback sockets, and is not installed under another uvicorn version."""

from __future__ import annotations

import logging
import socket
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from stemedb.api.http.uvicorn_patch import (
    COPIED_FROM_UVICORN,
    CoalescingHttpToolsProtocol,
    http_protocol,
    patch_refusal,
)

ROOT = Path(__file__).parents[3]
EXTRA_HEADERS = [(b"X-Quota-Remaining", b"5"), (b"ratelimit", b"limit=9, remaining=8, reset=60")]


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A response of each shape the cycle frames differently, chosen by the path."""
    assert scope["type"] == "http"
    body = b""
    while True:  # the request body (echoed by /echo)
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    start: dict[str, Any] = {"type": "http.response.start", "status": 200, "headers": []}
    chunks = [b'{"ok":true}']
    if path == "/length":
        start["headers"] = [(b"Content-Length", b"11"), (b"content-type", b"application/json")]
        start["headers"] += EXTRA_HEADERS
    elif path == "/chunked":  # no length: uvicorn adds transfer-encoding: chunked
        chunks = [b"first,", b"second,", b"third"]
    elif path == "/declared-chunked":
        start["headers"] = [(b"Transfer-Encoding", b"Chunked")]
        chunks = [b"a", b"bc"]
    elif path == "/close":
        start["headers"] = [(b"connection", b"Keep-Alive, Close"), (b"content-length", b"11")]
    elif path == "/no-content":
        start["status"], chunks = 204, [b""]
    elif path == "/not-modified":
        start["status"], chunks = 304, [b""]
    elif path == "/echo":
        start["status"] = 201
        start["headers"] = [(b"content-length", str(len(body)).encode())]
        chunks = [body]
    elif path == "/teapot":
        start["status"] = 418
        start["headers"] = [(b"content-length", b"11")]
    await send(start)
    for index, chunk in enumerate(chunks):
        more = index < len(chunks) - 1
        await send({"type": "http.response.body", "body": chunk, "more_body": more})


@contextmanager
def _server(http: Any) -> Iterator[int]:
    """A uvicorn server (the given ``http`` protocol) on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        _app,
        http=http,
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        date_header=False,
        timeout_keep_alive=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.01)
        assert server.started, "the server did not start"
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` on one connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(data)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    return received


def _request(method: str, path: str, *, last: bool = False, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: test\r\n"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    if last:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


KEEP_ALIVE = b"".join(
    [
        _request("GET", "/length"),
        _request("GET", "/chunked"),
        _request("GET", "/declared-chunked"),
        _request("HEAD", "/length"),
        _request("HEAD", "/chunked"),
        _request("GET", "/no-content"),
        _request("GET", "/not-modified"),
        _request("POST", "/echo", body=b'{"subject":"s"}'),
        _request("GET", "/teapot"),
        _request("GET", "/length", last=True),
    ]
)
CONVERSATIONS = {
    "keep-alive, one request after the other": KEEP_ALIVE,
    "the app closes": _request("GET", "/close"),
    "HTTP/1.0 (no keep-alive)": b"GET /length HTTP/1.0\r\nHost: test\r\n\r\n",
    "HTTP/1.0 without a length": b"GET /chunked HTTP/1.0\r\nHost: test\r\n\r\n",
}


def _conversations(http: Any) -> dict[str, bytes]:
    with _server(http) as port:
        out = {name: _exchange(port, data) for name, data in CONVERSATIONS.items()}
        # one request at a time, each read before the next is sent
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            pieces = []
            for request in (_request("GET", "/chunked"), _request("GET", "/length")):
                conn.sendall(request)
                pieces.append(_read_response(conn))
        out["request, answer, request, answer"] = b"".join(pieces)
        return out


def _read_response(conn: socket.socket) -> bytes:
    """One whole response (with a length, or chunked) from ``conn``."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head:
        while not rest.endswith(b"0\r\n\r\n"):
            rest += conn.recv(65536)
    else:
        length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(rest) < length:
            rest += conn.recv(65536)
    return head + b"\r\n\r\n" + rest


def test_patched_server_answers_byte_for_byte_what_uvicorn_answers() -> None:
    stock = _conversations("httptools")
    patched = _conversations(CoalescingHttpToolsProtocol)
    for name in stock:
        assert patched[name] == stock[name], name
    # the conversations do exercise each framing
    assert stock["keep-alive, one request after the other"].count(b"HTTP/1.1 ") == 10
    assert b"transfer-encoding: chunked\r\n" in stock["keep-alive, one request after the other"]
    assert b"x-quota-remaining: 5\r\n" in stock["keep-alive, one request after the other"]
    assert b"connection: close\r\n" in stock["HTTP/1.0 (no keep-alive)"]
    assert stock["the app closes"].startswith(b"HTTP/1.1 200 OK\r\n")


def test_the_patch_is_only_installed_under_the_uvicorn_it_was_copied_from(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert uvicorn.__version__ == COPIED_FROM_UVICORN
    assert patch_refusal() is None
    assert http_protocol() is CoalescingHttpToolsProtocol
    with caplog.at_level(logging.WARNING, logger="stemedb.api"):
        assert http_protocol("0.55.0") == "httptools"
    assert "uvicorn 0.55.0 is installed" in caplog.text
    assert f"copied from uvicorn {COPIED_FROM_UVICORN}" in caplog.text


def test_pyproject_pins_the_uvicorn_the_patch_was_copied_from() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    server = project["project"]["optional-dependencies"]["server"]  # stemedb[server]
    assert f"uvicorn[standard]=={COPIED_FROM_UVICORN}" in server


def test_another_uvicorn_is_served_by_its_stock_protocol() -> None:
    """The fallback really serves: the stock protocol named by ``http_protocol``."""
    with _server(http_protocol("0.0.1")) as port:
        answer = _exchange(port, _request("GET", "/length", last=True))
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b'{"ok":true}')
