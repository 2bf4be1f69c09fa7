"""Slow and greedy clients against a real node on loopback (issue 17 item 6;
``api.http.connections``):

- 200 connections that never finish their headers do not stop a normal request from
  being served, and are closed (``408`` envelope) once ``api.header_timeout_seconds``
  has passed;
- beyond ``api.max_connections`` a connection is answered ``503 too_many_connections``
  at once and closed, counted (``stemedb_connections_refused_total``) and logged
  ("max number of connections reached"); ``/health`` answers again once the held
  connections are gone;
- a request target over 64 KiB (which the server's URL parser cannot split) gets
  ``414 uri_too_long`` in the envelope, not the server library's plain-text 400."""

from __future__ import annotations

import json
import re
import resource
import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from api_helpers import assert_envelope
from support.server import ServerProcess

HEADER_TIMEOUT_SECONDS = 2.0
MAX_CONNECTIONS = 230
SLOW = 200
PARTIAL_HEAD = b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * MAX_CONNECTIONS
    if soft != resource.RLIM_INFINITY and soft < wanted:  # this process opens them all
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    base = tmp_path_factory.mktemp("slow-clients")
    proc = ServerProcess(
        base / "data",
        base / "log",
        isolated=True,
        STEMEDB_API_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT_SECONDS),
        STEMEDB_API_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
    )
    yield proc
    proc.stop()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def connect(node: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", node.port), timeout=10)


def metric(node: ServerProcess, name: str) -> float:
    text = httpx.get(node.url + "/metrics", timeout=10).text
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found is not None, name
    return float(found[1])


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def envelope_of(answer: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


def test_slow_connections_do_not_stop_others_and_are_closed_after_the_timeout(
    node: ServerProcess,
) -> None:
    timeouts_before = metric(node, "stemedb_connections_header_timeouts_total")
    slow = []
    try:
        for _ in range(SLOW):
            sock = connect(node)
            sock.sendall(PARTIAL_HEAD)
            slow.append(sock)
        opened = time.monotonic()
        started = time.monotonic()
        served = httpx.get(node.url + "/v1/health", timeout=10)
        assert served.status_code == 200
        assert time.monotonic() - started < HEADER_TIMEOUT_SECONDS / 2
        readable, _, _ = select.select(slow, [], [], 0)
        assert readable == [], "a slow connection was closed before the timeout"
        for sock in slow:
            answer = read_until_closed(sock, HEADER_TIMEOUT_SECONDS + 20)
            status, headers, body = envelope_of(answer)
            assert status == 408 and headers["connection"] == "close"
            assert body["error"]["code"] == "header_timeout"  # type: ignore[index]
        assert time.monotonic() - opened >= HEADER_TIMEOUT_SECONDS * 0.9
    finally:
        for sock in slow:
            sock.close()
    after = metric(node, "stemedb_connections_header_timeouts_total")
    assert after - timeouts_before >= SLOW


def test_beyond_the_cap_connections_are_refused_counted_and_logged(node: ServerProcess) -> None:
    refused_before = metric(node, "stemedb_connections_refused_total")
    extra = 5
    held = [connect(node) for _ in range(MAX_CONNECTIONS + extra)]  # sending nothing
    try:
        time.sleep(0.5)
        answered = [sock for sock in held if select.select([sock], [], [], 0)[0]]
        assert len(answered) == extra
        for sock in answered:
            status, headers, body = envelope_of(read_until_closed(sock, 5))
            assert status == 503 and headers["retry-after"] == "1"
            error = body["error"]
            assert error["code"] == "too_many_connections"  # type: ignore[index]
            assert error["type"] == "UnavailableError"  # type: ignore[index]
            assert headers["x-request-id"] == body["request_id"]
        health = httpx.get(node.url + "/health", timeout=5)  # answered at once, not hung
        assert_envelope(health, 503, "UnavailableError", "too_many_connections")
        deadline = time.monotonic() + HEADER_TIMEOUT_SECONDS + 20
        while time.monotonic() < deadline:  # the held ones time out, and /health is back
            try:
                if httpx.get(node.url + "/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("/health did not answer 200 after the held connections were closed")
    finally:
        for sock in held:
            sock.close()
    assert metric(node, "stemedb_connections_refused_total") - refused_before >= extra + 1
    logged = [line for line in node.log_lines() if "max number of connections reached" in line]
    assert logged and f"api.max_connections = {MAX_CONNECTIONS}" in logged[-1]


@pytest.mark.parametrize(
    "target",
    [
        "/v1/query?subject=s&predicate=p&x=" + "a" * 200_000,
        "/v1/query?subject=s&predicate=p&x=" + "a" * 30_000,
        "/v1/" + "a" * 70_000,
    ],
    ids=["query-200KB", "query-30KB", "path-70KB"],
)
def test_a_huge_request_target_is_414_in_the_envelope(node: ServerProcess, target: str) -> None:
    sock = connect(node)
    try:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        _, headers, _ = envelope_of(answer.partition(b"\r\n\r\n")[0] + b"\r\n\r\n{}")
        while len(answer.partition(b"\r\n\r\n")[2]) < int(headers["content-length"]):
            answer += sock.recv(65536)
    finally:
        sock.close()
    status, headers, body = envelope_of(answer)
    assert status == 414 and headers["content-type"] == "application/json"
    assert headers["x-request-id"] == body["request_id"]
    error = body["error"]
    assert error["code"] == "uri_too_long" and error["type"] == "ValidationError"  # type: ignore[index]
    assert error["details"] == {"field": "query_string", "rule": "too_long"}  # type: ignore[index]
    assert "16384" in error["message"]  # type: ignore[index]
    assert httpx.get(node.url + "/health", timeout=5).status_code == 200
