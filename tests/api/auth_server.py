"""A real server with API keys, rate limits, quotas and agent breakers on (session-scoped).

Small numbers so the limit tests are cheap: 2-second rate-limit windows,
``/v1/skeptic`` limited to ``SKEPTIC_LIMIT`` per caller, 100 quota tokens per agent,
breakers that open after ``FAILURE_THRESHOLD`` failed writes for ``RESET_TIMEOUT_MS``,
and a ``REQUEST_TIMEOUT_SECONDS`` request timeout. Tests use fresh agents and fresh keys
so they do not share counters. Import the fixtures into a test module with
``from auth_server import *  # noqa: F403`` (fixtures as parameters do not trip F811).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from api_helpers import MAX_BATCH, MAX_BODY_BYTES

from stemedb.model.signing import AgentKey

ROOT_KEY = "root-test-key-" + "5f3c9a" * 6
RATE_WINDOW_SECONDS = 2
SKEPTIC_LIMIT = 5
QUOTA_TOKENS = 100
FAILURE_THRESHOLD = 3
RESET_TIMEOUT_MS = 1500
REQUEST_TIMEOUT_SECONDS = 3

AUTH_ENV = {
    "STEMEDB_AUTH_ENABLED": "true",
    "STEMEDB_AUTH_REQUIRE_FOR_READS": "true",
    "STEMEDB_ROOT_API_KEY": ROOT_KEY,
    "STEMEDB_RATE_LIMIT_ENABLED": "true",
    "STEMEDB_RATE_LIMIT_DEFAULT_PER_MINUTE": "100000",
    "STEMEDB_RATE_LIMIT_WINDOW_SECONDS": str(RATE_WINDOW_SECONDS),
    "STEMEDB_RATE_LIMIT_ENDPOINTS": f'{{"/v1/skeptic": {SKEPTIC_LIMIT}}}',
    "STEMEDB_QUOTA_ENABLED": "true",
    "STEMEDB_QUOTA_TOKENS_PER_HOUR": str(QUOTA_TOKENS),
    "STEMEDB_RESILIENCE_FAILURE_THRESHOLD": str(FAILURE_THRESHOLD),
    "STEMEDB_RESILIENCE_RESET_TIMEOUT_MS": str(RESET_TIMEOUT_MS),
    "STEMEDB_API_REQUEST_TIMEOUT_SECONDS": str(REQUEST_TIMEOUT_SECONDS),
}


START_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environ(data_dir: Path, port: int, env: dict[str, str]) -> dict[str, str]:
    environ = {
        **os.environ,
        "STEMEDB_DB_DIR": str(data_dir),
        "STEMEDB_BIND_ADDR": f"127.0.0.1:{port}",
        "STEMEDB_API_MAX_BATCH": str(MAX_BATCH),
        "STEMEDB_API_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "STEMEDB_WAL_GROUP_COMMIT_MAX_DELAY_US": "0",
        **env,
    }
    environ.pop("STEMEDB_CONFIG", None)
    return environ


class ServerProcess:
    """``python -m stemedb.api`` on a free loopback port until ``stop``."""

    def __init__(self, data_dir: Path, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stemedb.api"],
            env=server_environ(data_dir, self.port, env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become ready")

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._log.closed:
            self._log.close()
        return int(self.proc.returncode)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def admin_headers() -> dict[str, str]:
    return {"x-api-key": ROOT_KEY}


def create_key(
    client: httpx.Client, role: str, *, expires_at: float | None = None, name: str = "test"
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "role": role}
    if expires_at is not None:
        body["expires_at"] = expires_at
    response = client.post("/v1/admin/api-keys", json=body, headers=admin_headers())
    assert response.status_code == 201, response.text
    return dict(response.json())


def send(
    client: httpx.Client, path: str, record: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    """POST a msgspec record (or plain JSON value) with extra headers."""
    return client.post(
        path,
        content=msgspec.json.encode(record),
        headers={"content-type": "application/json", **(headers or {})},
    )


def fresh_agent() -> AgentKey:
    return AgentKey.from_seed(secrets.token_bytes(32))


def wait_for_new_window(seconds: float = RATE_WINDOW_SECONDS) -> None:
    time.sleep(seconds + 0.2)


def start_refused(data_dir: Path, **env: str) -> tuple[int, str]:
    """Start a server that must refuse to start; its exit code and output."""
    done = subprocess.run(
        [sys.executable, "-m", "stemedb.api"],
        env=server_environ(data_dir, free_port(), env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("stemedb-auth")
    proc = ServerProcess(base / "data", base / "server.log", **AUTH_ENV)
    yield proc
    assert proc.stop() == 0, proc.log_path.read_text()[-2000:]


@pytest.fixture
def auth_client(auth_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=auth_server.url, timeout=30.0) as http:
        yield http


@pytest.fixture
def writer_key(auth_client: httpx.Client) -> str:
    return str(create_key(auth_client, "writer")["secret"])


@pytest.fixture
def reader_key(auth_client: httpx.Client) -> str:
    return str(create_key(auth_client, "reader")["secret"])


FIXTURES = ("auth_client", "auth_server", "reader_key", "writer_key")
__all__ = list(FIXTURES)
