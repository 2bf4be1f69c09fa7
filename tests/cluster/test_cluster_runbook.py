"""docs/operations/runbooks/cluster.md works verbatim against two real cluster nodes.

Its ```` ```bash runbook id=NAME ```` blocks run in bash (``setup`` first, every time)
with ``STEMEDB_URL``, ``STEMEDB_API_KEY`` and ``PGDSN`` set as the runbook asks, against
two nodes on one real PostgreSQL whose access check was made to fail once (so the
PostgreSQL-error step has something to show). Each step's output goes through a check,
and so does the output the runbook documents for it, so both have the same form.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from support.server import CLUSTER_ROOT_KEY, ServerProcess, secured_cluster_node

ROOT = Path(__file__).parents[2]
RUNBOOK = ROOT / "docs" / "operations" / "runbooks" / "cluster.md"
BLOCK = re.compile(r"```(bash runbook|text output) id=([a-z0-9-]+)\n(.*?)```", re.S)
ROOT_KEY = CLUSTER_ROOT_KEY


def blocks() -> tuple[dict[str, str], dict[str, str]]:
    commands: dict[str, str] = {}
    outputs: dict[str, str] = {}
    for kind, name, body in BLOCK.findall(RUNBOOK.read_text()):
        (commands if kind == "bash runbook" else outputs)[name] = body
    return commands, outputs


def _lines(out: str, pattern: str, *, allow_empty: bool = False) -> list[re.Match[str]]:
    lines = out.splitlines()
    assert lines or allow_empty, out
    matches = [re.fullmatch(pattern, line) for line in lines]
    assert all(matches), out
    return [m for m in matches if m is not None]


def check_health(out: str) -> None:
    body = json.loads(out)
    assert set(body) == {"health", "mode", "reasons"}, out
    assert body["mode"] == "cluster" and body["health"] in {"healthy", "degraded", "unhealthy"}
    assert isinstance(body["reasons"], list)


def check_nodes(out: str) -> None:
    _lines(out, r"\S+ https?://\S+ \S+ healthy=(true|false)")


def check_reach_nodes(out: str) -> None:
    _lines(out, r"https?://\S+ \d{3}")


def check_replication(out: str) -> None:
    first, *rest = out.splitlines()
    assert re.fullmatch(r"primary=\S+ synchronous=(true|false)", first), out
    _lines("\n".join(rest), r"standby=\S+ lag_bytes=\S+ lag_seconds=\S+", allow_empty=True)


def check_pg_replication(out: str) -> None:
    _lines(out, r"[^|]+\|[a-z]+\|[a-z]+\|.*", allow_empty=True)


def check_standbys(out: str) -> None:
    _lines(out, r"\d+")


def check_pg_errors(out: str) -> None:
    _lines(out, r'stemedb_postgres_errors_total\{operation="[a-z_]+"\} \d+\.\d+(e[+-]\d+)?')


def check_pg_primary(out: str) -> None:
    assert out.strip() == "f", out


CHECKS: dict[str, Callable[[str], None]] = {
    "health": check_health,
    "nodes": check_nodes,
    "reach-nodes": check_reach_nodes,
    "replication": check_replication,
    "pg-replication": check_pg_replication,
    "standbys": check_standbys,
    "pg-errors": check_pg_errors,
    "pg-primary": check_pg_primary,
}


def test_every_step_has_a_check_and_a_documented_output() -> None:
    commands, outputs = blocks()
    assert set(commands) == {"setup", *CHECKS}
    assert set(outputs) == set(CHECKS)


@pytest.mark.parametrize("step", sorted(CHECKS))
def test_documented_output_passes_the_check(step: str) -> None:
    CHECKS[step](blocks()[1][step])


@pytest.fixture
def cluster(postgres_dsn: str, tmp_path: Path) -> Iterator[ServerProcess]:
    a = secured_cluster_node(tmp_path, "node-a", postgres_dsn)
    b = None
    try:
        b = secured_cluster_node(tmp_path, "node-b", postgres_dsn)
        headers = {"x-api-key": ROOT_KEY}
        assert httpx.get(a.url + "/v1/admin/api-keys", headers=headers).status_code == 200
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:  # node-a's connections
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        codes = {httpx.get(a.url + "/v1/admin/api-keys", headers=headers).status_code for _ in "12"}
        assert codes == {503, 200}, codes  # the first check failed, the next reconnected
        yield a
    finally:
        if b is not None:
            b.stop()
        a.stop()


def test_runbook_commands_work_verbatim_against_two_cluster_nodes(
    cluster: ServerProcess, postgres_dsn: str, tmp_path: Path
) -> None:
    commands, _ = blocks()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")},
        "STEMEDB_URL": cluster.url,
        "STEMEDB_API_KEY": ROOT_KEY,
        "PGDSN": postgres_dsn,
    }
    for step in commands:
        if step == "setup":
            continue
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", commands["setup"] + commands[step]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0 and result.stderr == "", (step, result)
        CHECKS[step](result.stdout)
