"""deploy/nginx/stemedb.conf: ``nginx -t`` accepts it, and, live, nginx in front of two
real StemeDB nodes keeps answering reads and writes when one node is stopped, and takes
the stopped node out of the rotation (passive health check: max_fails/fail_timeout +
proxy_next_upstream).

The shipped file is used as it is, except for the host-specific lines, which the test
replaces (each must be present, so an edit of the file cannot silently escape the test):
listen addresses (loopback, free ports, no IPv6), the two upstream servers, the
certificate (a fresh self-signed one) and the log paths. nginx runs with its own prefix
(``-p``), pid file, temp paths and ``daemon off``, as root or not.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import pytest
from deploy_helpers import DEPLOY, Node, require_tool
from support.server import free_port

from stemedb.config import ApiConfig
from stemedb.model.signing import AgentKey, sign_assertion

CONF = DEPLOY / "nginx" / "stemedb.conf"
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass
class Nginx:
    prefix: Path
    https_port: int
    http_port: int
    upstreams: tuple[int, int]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def access_lines(self, at_least: int = 0) -> list[str]:
        """The access log, once it has ``at_least`` lines: nginx writes a line after it
        has sent the answer, so the client can be a little ahead of the log."""
        path = self.prefix / "access.log"
        deadline = time.monotonic() + 5
        while True:
            lines = path.read_text().splitlines() if path.exists() else []
            if len(lines) >= at_least or time.monotonic() > deadline:
                return lines
            time.sleep(0.02)


def render(prefix: Path, https_port: int, http_port: int, upstreams: tuple[int, int]) -> Path:
    """The shipped config with the host-specific lines replaced; returns nginx.conf."""
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(prefix / "key.pem"),
            "-out",
            str(prefix / "cert.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    text = CONF.read_text()
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": "",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "listen [::]:443 ssl http2;": "",
        "server 10.0.0.11:18180 ": f"server 127.0.0.1:{upstreams[0]} ",
        "server 10.0.0.12:18180 ": f"server 127.0.0.1:{upstreams[1]} ",
        "/etc/letsencrypt/live/stemedb.example.com/fullchain.pem": str(prefix / "cert.pem"),
        "/etc/letsencrypt/live/stemedb.example.com/privkey.pem": str(prefix / "key.pem"),
        "/var/log/nginx/stemedb.access.log": str(prefix / "access.log"),
        "/var/log/nginx/stemedb.error.log": str(prefix / "error.log"),
        "/var/www/letsencrypt": str(prefix / "www"),
    }
    for old, new in replacements.items():
        assert old in text, f"{old!r} is no longer in {CONF.name}: update this test"
        text = text.replace(old, new)
    (prefix / "stemedb.conf").write_text(text)
    temp_paths = "\n".join(f"    {name}_temp_path {prefix / 'tmp' / name};" for name in TEMP_DIRS)
    main = prefix / "nginx.conf"
    main.write_text(
        f"worker_processes 1;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'};\n"
        "events { worker_connections 256; }\n"
        f"http {{\n{temp_paths}\n    access_log off;\n    include {prefix / 'stemedb.conf'};\n}}\n"
    )
    (prefix / "tmp").mkdir()
    (prefix / "www").mkdir()
    return main


@pytest.fixture
def prefix() -> Iterator[Path]:
    # world-traversable, so nginx's workers (user nobody when started as root) can use
    # the temp paths; pytest's tmp_path is private to its owner.
    path = Path(tempfile.mkdtemp(prefix="stemedb-nginx-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def nginx_t(nginx: str, main: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [nginx, "-t", "-p", str(main.parent), "-c", str(main)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_nginx_t_accepts_the_config(prefix: Path) -> None:
    nginx = require_tool("nginx")
    main = render(prefix, free_port(), free_port(), (free_port(), free_port()))
    result = nginx_t(nginx, main)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr, result.stderr


def test_body_limit_equals_api_max_body_bytes() -> None:
    match = re.search(r"client_max_body_size (\d+)m;", CONF.read_text())
    assert match and int(match.group(1)) * 1024 * 1024 == ApiConfig().max_body_bytes


def test_feed_stream_is_not_buffered() -> None:
    block = CONF.read_text().split("location = /v1/feed/stream {", 1)[1].split("}", 1)[0]
    assert "proxy_buffering off;" in block and "proxy_read_timeout 1h;" in block


@pytest.fixture
def nginx_with_two_nodes(prefix: Path) -> Iterator[tuple[Nginx, Node, Node]]:
    nginx = require_tool("nginx")
    a = Node(prefix / "node-a", prefix / "node-a.log")
    b = Node(prefix / "node-b", prefix / "node-b.log")
    proxy = Nginx(prefix, free_port(), free_port(), (a.port, b.port))
    main = render(prefix, proxy.https_port, proxy.http_port, proxy.upstreams)
    checked = nginx_t(nginx, main)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(main), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(proxy.url + "/health", verify=False, timeout=1.0)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield proxy, a, b
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful: finish requests, flush logs
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        a.stop()
        b.stop()


def _write(client: httpx.Client, key: AgentKey, subject: str, value: int) -> httpx.Response:
    record = sign_assertion(key, subject=subject, predicate="p", object=value, confidence=0.7)
    return client.post(
        "/v1/assert",
        content=msgspec.json.encode(record),
        headers={"content-type": "application/json"},
    )


def test_traffic_keeps_flowing_when_a_node_stops(
    nginx_with_two_nodes: tuple[Nginx, Node, Node],
) -> None:
    proxy, a, b = nginx_with_two_nodes
    key = AgentKey.from_seed(b"\x42" * 32)
    subject = f"deploy/{uuid.uuid4().hex[:8]}"
    a_addr, b_addr = f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"
    with httpx.Client(base_url=proxy.url, verify=False, timeout=30.0) as client:
        # both nodes serve (round robin), reads and writes
        for i in range(6):
            assert _write(client, key, subject, i).status_code == 201
            query = client.get("/v1/query", params={"subject": subject, "predicate": "p"})
            assert query.status_code == 200, query.text
        upstreams = " ".join(proxy.access_lines())
        assert a_addr in upstreams and b_addr in upstreams

        assert a.stop() == 0
        before = len(proxy.access_lines())
        for i in range(6, 26):
            assert _write(client, key, subject, i).status_code == 201
            query = client.get("/v1/query", params={"subject": subject, "predicate": "p"})
            assert query.status_code == 200, query.text
            assert client.get("/health").status_code == 200

    after = [line for line in proxy.access_lines(before + 60)[before:] if "upstream=" in line]
    assert len(after) == 60, after
    statuses = [re.search(r'" (\d{3}) ', line).group(1) for line in after]  # type: ignore[union-attr]
    assert set(statuses) <= {"200", "201"}, after
    tried_a = [line for line in after if a_addr in line]
    # one request at most found node A down and was retried on B ("upstream=A, B");
    # from then on A is out of the rotation (max_fails=1, fail_timeout=10s)
    assert len(tried_a) <= 1, tried_a
    assert all(f"upstream={a_addr}, {b_addr}" in line for line in tried_a), tried_a
    assert all(b_addr in line for line in after)


def test_request_id_is_propagated_or_created(
    nginx_with_two_nodes: tuple[Nginx, Node, Node],
) -> None:
    proxy, a, b = nginx_with_two_nodes
    with httpx.Client(base_url=proxy.url, verify=False, timeout=30.0) as client:
        mine = client.get("/health", headers={"X-Request-Id": "ops-test-123"})
        assert mine.headers["x-request-id"] == "ops-test-123"
        fresh = client.get("/v1/assertions/" + "0" * 64)
        assert fresh.status_code == 404
        rid = fresh.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", rid), rid  # nginx's $request_id
        assert fresh.json()["request_id"] == rid
    # the same id in StemeDB's log line (written just after the answer is sent)
    deadline = time.monotonic() + 5
    while f"request_id={rid}" not in a.log_path.read_text() + b.log_path.read_text():
        assert time.monotonic() < deadline, "request id not in the nodes' logs"
        time.sleep(0.02)
    # and in nginx's access line (the log holds earlier tests' lines: wait for this one)
    while not any(f"request_id={rid}" in line for line in proxy.access_lines()):
        assert time.monotonic() < deadline + 5, "request id not in nginx's access log"
        time.sleep(0.02)


def test_body_over_the_limit_is_refused_by_nginx(
    nginx_with_two_nodes: tuple[Nginx, Node, Node],
) -> None:
    proxy, _, _ = nginx_with_two_nodes
    before = len(proxy.access_lines())
    body = b"x" * (ApiConfig().max_body_bytes + 1)
    with httpx.Client(base_url=proxy.url, verify=False, timeout=30.0) as client:
        response = client.post(
            "/v1/assert", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    deadline = time.monotonic() + 5  # an earlier request's line may still be on its way
    while True:
        posts = [line for line in proxy.access_lines(before + 1)[before:] if '"POST ' in line]
        if posts or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(posts) == 1 and "upstream=-" in posts[0]  # never reached a node


def test_feed_stream_events_arrive_through_nginx(
    nginx_with_two_nodes: tuple[Nginx, Node, Node],
) -> None:
    proxy, _, b = nginx_with_two_nodes
    b.stop()  # one node, so the stream and the write meet on the same data
    key = AgentKey.from_seed(b"\x43" * 32)
    with httpx.Client(base_url=proxy.url, verify=False, timeout=30.0) as client:
        warmup = _write(client, key, "deploy/warmup", 0)  # lets nginx find out B is down
        lsn = warmup.json()["lsn"]
        with client.stream(
            "GET", "/v1/feed/stream", params={"after": lsn}, timeout=httpx.Timeout(10.0)
        ) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines).startswith(": stemedb change feed")
            assert _write(client, key, f"deploy/{uuid.uuid4().hex[:8]}", 1).status_code == 201
            started = time.monotonic()
            for line in lines:
                if line.startswith("event: "):
                    break
            assert time.monotonic() - started < 5  # not held in a proxy buffer
