"""``stemedb cluster status`` against a real (single-mode) server."""

from __future__ import annotations

import json

from cli_helpers import RunCli
from support.client_server import ServerProcess


def test_cluster_status_prints_the_servers_answer(run_cli: RunCli, server: ServerProcess) -> None:
    shown = run_cli("cluster", "status", "--url", server.url, "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["mode"] == "single" and status["health"] == "healthy"
    table = run_cli("cluster", "status", "--url", server.url)
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith(f"health: healthy  mode: single  node: {status['node_id']}")


def test_cluster_status_of_an_unreachable_node_fails_with_exit_1(run_cli: RunCli) -> None:
    shown = run_cli("cluster", "status", "--url", "http://127.0.0.1:1")
    assert shown.returncode == 1
    assert "Error: NetworkError: cannot reach http://127.0.0.1:1" in shown.stderr
