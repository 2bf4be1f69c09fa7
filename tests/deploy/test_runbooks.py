"""The runbooks' commands work verbatim against a real StemeDB.

``docs/operations/runbooks/high-api-error-rate.md`` is executed: its fenced blocks marked
```` ```bash runbook id=NAME ```` run in bash (the ``setup`` block first, every time),
against a live server driven into errors (batch writes slower than a tiny
``api.request_timeout_seconds`` → 504 ``TimeoutError``; plus 400s and 404s), with
``journalctl`` on PATH replaced by a stub that prints the server's log file (as
journald would with ``-o cat``). Each step's output goes through a check; the same check
is applied to the output the runbook documents (```` ```text output id=NAME ````), so
the documented output and the real one have the same form.

Every runbook is also checked statically: its bash blocks parse (``bash -n``), the
``stemedb_*`` metric names exist, and the ``stemedb`` subcommands are real or in API.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from deploy_helpers import OPERATIONS, RUNBOOKS, Node, allowed_metric_names, metric_names_in

from stemedb.model.signing import AgentKey, sign_assertion

HIGH_ERROR_RATE = RUNBOOKS / "high-api-error-rate.md"
REQUIRED_RUNBOOKS = {
    "high-api-error-rate.md",
    "storage-errors.md",
    "slow-fsync.md",
    "memory-exhaustion.md",
    "disk-full.md",
    "server-wont-start.md",
    "restore-from-backup.md",
    "disaster-recovery.md",
    "certificate-renewal.md",
    "cluster.md",
}
BLOCK = re.compile(r"```(bash runbook|text output) id=([a-z0-9-]+)\n(.*?)```", re.S)
ANY_BASH = re.compile(r"```bash[^\n]*\n(.*?)```", re.S)
BATCH_RECORDS = 1000
BATCHES = 5
REQUEST_TIMEOUT_SECONDS = "0.02"
FAKE_JOURNALCTL = """#!/bin/sh
# journalctl stub: the node's stdout log, as "journalctl -u stemedb-api -o cat" prints it
case " $* " in *" -u stemedb-api "*) ;; *) echo "stub: expected -u stemedb-api" >&2; exit 2;; esac
case " $* " in *" -o cat "*) ;; *) echo "stub: expected -o cat" >&2; exit 2;; esac
exec cat "$STEMEDB_TEST_LOG"
"""
# CLI commands of API.md "Command line" (some are being built in parallel).
CLI_COMMANDS = {
    "serve",
    "demo",
    "keygen",
    "assert",
    "query",
    "keys",
    "backup",
    "restore",
    "wal",
    "store",
    "verify",
    "dr-drill",
    "bench",
    "config",
    "version",
    "cluster",
}


def blocks(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    commands: dict[str, str] = {}
    outputs: dict[str, str] = {}
    for kind, name, body in BLOCK.findall(path.read_text()):
        target = commands if kind == "bash runbook" else outputs
        assert name not in target, f"{path.name}: two blocks named {name}"
        target[name] = body
    return commands, outputs


# -- the checks: each takes a step's output (documented or live) ---------------------------

NUMBER = r"[0-9][0-9.e+]*"


def check_classes(out: str) -> None:
    counts = dict(line.split() for line in out.splitlines())
    assert all(
        re.fullmatch(r"[2-5]xx", k) and re.fullmatch(NUMBER, v) for k, v in counts.items()
    ), out
    assert float(counts["5xx"]) > 0 and float(counts["2xx"]) > 0, out


def check_failing_endpoints(out: str) -> None:
    series = []
    for line in out.splitlines():
        m = re.fullmatch(rf"stemedb_http_requests_total\{{(.*)\}} ({NUMBER})", line)
        assert m, line
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        assert set(labels) == {"method", "path", "status", "agent"}, line
        assert re.fullmatch(r"5\d\d", labels["status"]) and float(m.group(2)) > 0, line
        series.append(labels)
    assert any(s["path"] == "/v1/assert/batch" and s["status"] == "504" for s in series), out


def check_error_types(out: str) -> None:
    found = {}
    for line in out.splitlines():
        m = re.fullmatch(rf'stemedb_error_count_by_type\{{error_type="(\w+)"\}} ({NUMBER})', line)
        assert m, line
        found[m.group(1)] = float(m.group(2))
    assert all(v > 0 for v in found.values()), out
    assert {"TimeoutError", "ValidationError", "NotFoundError"} <= set(found), out


def check_ready(out: str) -> None:
    body = json.loads(out)
    assert body["status"] == "ready" and body["reasons"] == [], out
    assert isinstance(body["applied_lsn"], int)


def check_no_output(out: str) -> None:
    assert out.strip() == "", out


def _type_counts(out: str) -> dict[str, int]:
    counts = {}
    for line in out.splitlines():
        m = re.fullmatch(r"\s*(\d+) Error: ([A-Za-z]+):", line)
        assert m, line
        counts[m.group(2)] = int(m.group(1))
    return counts


def check_log_error_types(out: str) -> None:
    counts = _type_counts(out)
    assert {"TimeoutError", "ValidationError", "NotFoundError"} <= set(counts), out


def check_log_5xx_types(out: str) -> None:
    assert set(_type_counts(out)) == {"TimeoutError"}, out


def check_follow_request(out: str) -> None:
    lines = out.splitlines()
    assert len(lines) == 2, out
    error, access = lines
    assert re.fullmatch(r"Error: TimeoutError: .+ agent_id=\S+ request_id=(\S+)", error), error
    assert re.fullmatch(
        r"HTTP POST /v1/assert/batch 504 agent_id=\S+ duration_ms=[0-9.]+ "
        r"request_id=(\S+)",
        access,
    ), access
    assert error.split("request_id=")[1] == access.split("request_id=")[1]


CHECKS: dict[str, Callable[[str], None]] = {
    "classes": check_classes,
    "failing-endpoints": check_failing_endpoints,
    "error-types": check_error_types,
    "ready": check_ready,
    "collect-logs": check_no_output,
    "log-error-types": check_log_error_types,
    "log-5xx-types": check_log_5xx_types,
    "follow-request": check_follow_request,
}


def test_every_step_has_a_check_and_every_output_is_documented() -> None:
    commands, outputs = blocks(HIGH_ERROR_RATE)
    assert set(commands) == {"setup", *CHECKS}
    assert set(outputs) == set(CHECKS) - {"collect-logs"}


@pytest.mark.parametrize("step", sorted(set(CHECKS) - {"collect-logs"}))
def test_documented_output_passes_the_check(step: str) -> None:
    _, outputs = blocks(HIGH_ERROR_RATE)
    CHECKS[step](outputs[step])


@pytest.fixture(scope="module")
def failing_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    base = tmp_path_factory.mktemp("runbook")
    node = Node(
        base / "data",
        base / "server.log",
        STEMEDB_API_REQUEST_TIMEOUT_SECONDS=REQUEST_TIMEOUT_SECONDS,
    )
    try:
        drive_into_errors(node)
        yield node
    finally:
        node.stop()


def drive_into_errors(node: Node) -> None:
    key = AgentKey.from_seed(b"\x51" * 32)
    records = [
        msgspec.to_builtins(
            sign_assertion(key, subject=f"runbook/{i}", predicate="p", object=i, confidence=0.5)
        )
        for i in range(BATCH_RECORDS)
    ]
    body = msgspec.json.encode({"assertions": records})
    with httpx.Client(base_url=node.url, timeout=60.0) as client:
        for _ in range(20):
            assert client.get("/health").status_code == 200
        for _ in range(2):
            bad = client.post("/v1/assert", json={"subject": "x"})
            assert bad.status_code == 400 and bad.json()["error"]["type"] == "ValidationError"
            assert_not_found_once_idle(client)
        # the batches last: the runbook follows the last error line, a batch's 504 (a read
        # after them could time out as well while the node still verifies the batches)
        statuses = [
            client.post(
                "/v1/assert/batch", content=body, headers={"content-type": "application/json"}
            ).status_code
            for _ in range(BATCHES)
        ]
        assert 504 in statuses, statuses


def assert_not_found_once_idle(client: httpx.Client) -> None:
    """A read of an unknown id answers 404, once the node has caught up with the batches
    it is still verifying after their 504: until then the 20 ms timeout may cut the read
    short too (it did on a loaded CI machine)."""
    statuses = []
    for _ in range(100):
        statuses.append(client.get("/v1/assertions/" + "0" * 64).status_code)
        if statuses[-1] != 504:
            break
        time.sleep(0.1)
    assert statuses[-1] == 404 and set(statuses) <= {404, 504}, statuses


def run_step(name: str, node: Node, workdir: Path) -> str:
    commands, _ = blocks(HIGH_ERROR_RATE)
    stub_dir = workdir / "bin"
    if not stub_dir.exists():
        stub_dir.mkdir()
        (stub_dir / "journalctl").write_text(FAKE_JOURNALCTL)
        (stub_dir / "journalctl").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{stub_dir}:{os.environ['PATH']}",
        "STEMEDB_URL": node.url,
        "STEMEDB_TEST_LOG": str(node.log_path),
    }
    return run_bash(name, commands["setup"] + commands[name], env, workdir)


def run_bash(name: str, script: str, env: dict[str, str], cwd: Path | None = None) -> str:
    """``script`` in ``bash -o pipefail``: its stdout; it must exit 0 with no stderr."""
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (name, result.stdout, result.stderr)
    assert result.stderr == "", (name, result.stderr)
    return result.stdout


def test_runbook_commands_work_verbatim_against_a_failing_node(
    failing_node: Node, tmp_path: Path
) -> None:
    commands, _ = blocks(HIGH_ERROR_RATE)
    for step in commands:  # in the runbook's order: collect-logs before the log steps
        if step == "setup":
            continue
        CHECKS[step](run_step(step, failing_node, tmp_path))


# -- every runbook, statically ----------------------------------------------------------------


def test_the_required_runbooks_exist() -> None:
    assert {p.name for p in RUNBOOKS.glob("*.md")} >= REQUIRED_RUNBOOKS


@pytest.mark.parametrize("doc", sorted(p.name for p in RUNBOOKS.glob("*.md")))
def test_runbook_bash_blocks_parse(doc: str) -> None:
    for body in ANY_BASH.findall((RUNBOOKS / doc).read_text()):
        result = subprocess.run(
            ["bash", "-n"], input=body, capture_output=True, text=True, timeout=10, check=False
        )
        assert result.returncode == 0, (doc, body, result.stderr)


@pytest.mark.parametrize(
    "doc", sorted(str(p.relative_to(OPERATIONS)) for p in OPERATIONS.rglob("*.md"))
)
def test_operations_docs_name_only_real_metrics_and_commands(doc: str) -> None:
    text = (OPERATIONS / doc).read_text()
    # whole names only: not grep fragments (stemedb_wal_fsync_duration_seconds_(…)),
    # globs or the job wrapper's file names (stemedb_backup.prom)
    whole_name = r"\b(stemedb_[a-z0-9_]*[a-z0-9])(?![a-z0-9_(*]|\.prom)"
    whole = [m.group(1) for m in re.finditer(whole_name, text)]
    unknown = metric_names_in(" ".join(whole)) - allowed_metric_names()
    assert not unknown, (doc, unknown)
    for body in ANY_BASH.findall(text):
        for sub in re.findall(r"(?:^|[/|;(]|(?<!-u)\s)stemedb ([a-z][a-z-]*)", body):
            assert sub in CLI_COMMANDS, (doc, sub)
