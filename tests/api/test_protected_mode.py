"""Protected mode (issue 17 item 1) against real servers: with API keys off a node
answers loopback clients only and refuses a non-loopback bind with one line naming the
two ways out; the explicit opt-out warns on every start, shows on ``/health`` and in
``stemedb_unauthenticated_network``; ``/v1/admin/*`` is never reachable without a key
from a non-loopback address under the defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support.server import ServerProcess, free_port

ROOT_KEY = "root-protected-key-" + "3c" * 16


def outside_address() -> str:
    """This machine's address on its first non-loopback interface (where another
    machine would reach it)."""
    listed = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    addresses = [listed[i + 1].split("/")[0] for i, word in enumerate(listed) if word == "inet"]
    assert addresses, "the test machine needs a non-loopback IPv4 address"
    return addresses[0]


def start_refused(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    environ |= {"STEMEDB_DB_DIR": str(tmp_path / "data"), **env}
    return subprocess.run(
        [sys.executable, "-m", "stemedb.api"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "outside"])
def test_non_loopback_bind_with_keys_off_refuses_to_start(tmp_path: Path, host: str) -> None:
    address = outside_address() if host == "outside" else host
    result = start_refused(tmp_path, STEMEDB_BIND_ADDR=f"{address}:{free_port()}")
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert "not a loopback address" in line and "API keys are off" in line
    assert "[auth] enabled = true" in line and "STEMEDB_ROOT_API_KEY" in line
    assert "[api] allow_unauthenticated_network = true" in line
    assert not (tmp_path / "data" / "wal").exists()  # refused before opening anything


def test_opt_out_serves_the_network_and_says_so_on_every_start(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "STEMEDB_BIND_ADDR": f"0.0.0.0:{port}",
        "STEMEDB_API_ALLOW_UNAUTHENTICATED_NETWORK": "true",
    }
    for start in range(2):
        node = ServerProcess(tmp_path / "data", tmp_path / "log", port=port, isolated=True, **env)
        try:
            url = f"http://{outside_address()}:{port}"
            health = httpx.get(url + "/health", timeout=10).json()
            assert health["unauthenticated_network"] is True
            admin = httpx.get(url + "/v1/admin/api-keys", timeout=10)
            assert admin.status_code == 200  # open to the network, as the operator asked
            metrics = httpx.get(url + "/metrics", timeout=10).text
            assert "\nstemedb_unauthenticated_network 1.0\n" in metrics
        finally:
            node.stop()
        warnings = [
            line for line in node.log_lines() if "allow_unauthenticated_network = true" in line
        ]
        assert len(warnings) == start + 1, node.log_lines()


def test_loopback_node_with_keys_off_shows_no_opt_out(tmp_path: Path) -> None:
    node = ServerProcess(tmp_path / "data", tmp_path / "log", isolated=True)
    try:
        with node.client() as client:
            assert "unauthenticated_network" not in client.get("/health").json()
            assert "\nstemedb_unauthenticated_network 0.0\n" in client.get("/metrics").text
            assert client.get("/v1/admin/api-keys").status_code == 200  # loopback: open
    finally:
        node.stop()


def test_a_forwarded_non_loopback_client_is_refused_under_the_defaults(tmp_path: Path) -> None:
    """A proxy on the same host (loopback) forwarding a remote client's address
    (``X-Forwarded-For``, trusted from 127.0.0.1) does not open a protected node."""
    node = ServerProcess(tmp_path / "data", tmp_path / "log", isolated=True)
    try:
        with node.client() as client:
            for path in ("/v1/admin/api-keys", "/v1/query?subject=a&predicate=b", "/health"):
                answer = client.get(path, headers={"X-Forwarded-For": "203.0.113.7"})
                assert answer.status_code == 403, (path, answer.text)
                error = answer.json()["error"]
                assert error["code"] == "protected_mode", error
                assert "allow_unauthenticated_network" in error["message"]
            created = client.post(
                "/v1/admin/api-keys",
                json={"name": "x", "role": "admin"},
                headers={"X-Forwarded-For": "203.0.113.7"},
            )
            assert created.status_code == 403
            assert client.get("/v1/admin/api-keys").json()["keys"] == []
    finally:
        node.stop()


def test_admin_routes_need_a_key_from_outside_when_keys_are_on(tmp_path: Path) -> None:
    port = free_port()
    node = ServerProcess(
        tmp_path / "data",
        tmp_path / "log",
        port=port,
        isolated=True,
        STEMEDB_BIND_ADDR=f"0.0.0.0:{port}",
        STEMEDB_AUTH_ENABLED="true",
        STEMEDB_ROOT_API_KEY=ROOT_KEY,
    )
    try:
        url = f"http://{outside_address()}:{port}"
        assert httpx.get(url + "/v1/admin/api-keys", timeout=10).status_code == 401
        keyed = httpx.get(url + "/v1/admin/api-keys", headers={"X-API-Key": ROOT_KEY}, timeout=10)
        assert keyed.status_code == 200
        assert "unauthenticated_network" not in httpx.get(url + "/health", timeout=10).json()
    finally:
        node.stop()
