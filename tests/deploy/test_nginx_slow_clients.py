"""Slow clients against the shipped nginx config (issue 17 item 6), real nginx in front
of a real node: while N connections dribble an incomplete request head, a normal
request is served, and nginx closes the slow ones after ``client_header_timeout``
(shortened here to 2 s from the shipped 10 s); ``limit_conn`` is on."""

from __future__ import annotations

import re
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx
from deploy_helpers import Node, require_tool
from support.server import free_port
from test_deploy_nginx import CONF, nginx_t, prefix, render  # noqa: F401  (fixture)

SLOW_CONNECTIONS = 40
HEADER_TIMEOUT_SECONDS = 2


def test_shipped_config_sets_header_timeout_and_connection_limit() -> None:
    text = CONF.read_text()
    assert re.search(r"\n    client_header_timeout \d+s;", text)
    assert "limit_conn_zone $binary_remote_addr zone=stemedb_conn:" in text
    assert re.search(r"\n    limit_conn stemedb_conn \d+;", text)


def test_slow_clients_do_not_block_others_and_are_closed_after_the_timeout(
    prefix: Path,  # noqa: F811
) -> None:
    nginx = require_tool("nginx")
    node = Node(prefix / "node", prefix / "node.log")
    https_port, http_port = free_port(), free_port()
    main = render(prefix, https_port, http_port, (node.port, node.port))
    conf = prefix / "stemedb.conf"
    conf.write_text(
        conf.read_text().replace(
            "client_header_timeout 10s;", f"client_header_timeout {HEADER_TIMEOUT_SECONDS}s;"
        )
    )
    assert nginx_t(nginx, main).returncode == 0
    proc = subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(main), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    slow: list[ssl.SSLSocket] = []
    try:
        url = f"https://127.0.0.1:{https_port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(url + "/health", verify=False, timeout=1.0)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
        for _ in range(SLOW_CONNECTIONS):
            sock = context.wrap_socket(socket.create_connection(("127.0.0.1", https_port)))
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            slow.append(sock)
        started = time.monotonic()
        answer = httpx.get(url + "/v1/subjects", verify=False, timeout=5.0)
        assert answer.status_code == 200, answer.text
        for sock in slow:
            sock.settimeout(HEADER_TIMEOUT_SECONDS + 5)
            try:
                data = sock.recv(1024)
            except (ssl.SSLError, ConnectionResetError):
                data = b""
            assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:100]
        assert time.monotonic() - started < HEADER_TIMEOUT_SECONDS + 5
    finally:
        for sock in slow:
            sock.close()
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        node.stop()
