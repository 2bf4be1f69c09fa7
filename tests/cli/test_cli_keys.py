"""``stemedb keys create|list|disable|delete`` as subprocesses: through the admin API of
a real server with auth on, and ``--offline`` on the data directory of a stopped one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_helpers import RunCli
from support.client_server import ServerProcess

ROOT_KEY = "cli-root-key-" + "7e" * 16


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path / "data",
        tmp_path / "server.log",
        STEMEDB_AUTH_ENABLED="true",
        STEMEDB_ROOT_API_KEY=ROOT_KEY,
    )
    yield proc
    proc.stop()


def test_keys_through_the_admin_api(run_cli: RunCli, auth_server: ServerProcess) -> None:
    env = {"STEMEDB_URL": auth_server.url, "STEMEDB_API_KEY": ROOT_KEY}
    made = run_cli("keys", "create", "--name", "ci", "--role", "writer", "--json", env=env)
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    assert key["role"] == "writer" and key["secret"].startswith("stm_")
    plain = run_cli("keys", "create", "--name", "shown", "--role", "reader", env=env)
    assert plain.returncode == 0, plain.stderr
    assert "shown only now" in plain.stdout and "stm_" in plain.stdout
    listed = run_cli("keys", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    ids = {k["id"] for k in json.loads(listed.stdout)["keys"]}
    assert {"root", key["id"]} <= ids and "stm_" not in listed.stdout
    table = run_cli("keys", "list", env=env)
    assert table.returncode == 0 and key["id"] in table.stdout
    disabled = run_cli("keys", "disable", key["id"], env=env)
    assert disabled.returncode == 0, disabled.stderr
    refused = httpx.get(auth_server.url + "/v1/epochs", headers={"x-api-key": key["secret"]})
    assert refused.status_code == 401


def test_keys_without_an_admin_key_fail_with_the_server_error(
    run_cli: RunCli, auth_server: ServerProcess
) -> None:
    done = run_cli("keys", "list", "--url", auth_server.url)
    assert done.returncode == 1
    assert "Error: AuthenticationError:" in done.stderr


def test_offline_keys_on_a_stopped_server_then_used_by_it(run_cli: RunCli, tmp_path: Path) -> None:
    data = tmp_path / "offline-data"
    env = {"STEMEDB_DB_DIR": str(data)}
    made = run_cli(
        "keys", "create", "--name", "first-admin", "--role", "admin", "--offline", "--json", env=env
    )
    assert made.returncode == 0, made.stderr
    admin = json.loads(made.stdout)
    # auth on with no root key: the offline admin key is the way in
    server = ServerProcess(data, tmp_path / "server.log", STEMEDB_AUTH_ENABLED="true")
    try:
        ok = httpx.get(server.url + "/v1/admin/api-keys", headers={"x-api-key": admin["secret"]})
        assert ok.status_code == 200 and ok.json()["keys"][0]["id"] == admin["id"]
        busy = run_cli("keys", "list", "--offline", env=env)
        assert busy.returncode == 1
        assert "a StemeDB server is running" in busy.stderr
    finally:
        server.stop()
    listed = run_cli("keys", "list", "--offline", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [k["id"] for k in json.loads(listed.stdout)["keys"]] == [admin["id"]]
    last = run_cli("keys", "disable", admin["id"], "--offline", env=env)
    assert last.returncode == 1 and "last usable admin key" in last.stderr


def test_unreachable_server_suggests_offline(run_cli: RunCli) -> None:
    done = run_cli("keys", "list", "--url", "http://127.0.0.1:9", "--api-key", "k")
    assert done.returncode == 1
    assert "Error: NetworkError:" in done.stderr and "--offline" in done.stderr
