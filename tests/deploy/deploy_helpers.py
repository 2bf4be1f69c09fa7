"""Helpers of the deployment-asset tests: paths, tools, and real StemeDB servers.

A server here is ``python -m stemedb.api`` in a subprocess on a free loopback port with
its own data directory (``STEMEDB_DB_DIR`` / ``STEMEDB_BIND_ADDR``) and its stdout (the
JSON log) in a file, like a node under systemd with journald.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Final

import pytest
from support.server import ServerProcess

ROOT: Final = Path(__file__).resolve().parents[2]
DEPLOY: Final = ROOT / "deploy"
OPERATIONS: Final = ROOT / "docs" / "operations"
RUNBOOKS: Final = OPERATIONS / "runbooks"
API_MD_CANDIDATES: Final = (ROOT.parent / "shared" / "design" / "API.md",)

# Series that are not exposed by the server but documented in docs/operations/monitoring.md:
# node-exporter textfile metrics written by deploy/bin/stemedb-job-metrics, and the WAL
# archiver's lag gauge.
JOB_METRICS: Final = frozenset(
    f"stemedb_{job}_{what}"
    for job in ("backup", "backup_verify", "wal_archive_timer")
    for what in (
        "last_run_timestamp_seconds",
        "last_success_timestamp_seconds",
        "failed",
        "duration_seconds",
    )
)
# The server's WAL archiver ([archive] enabled; src/stemedb/api/archiving.py).
ARCHIVE_METRICS: Final = frozenset(
    {
        "stemedb_wal_archive_lag_segments",
        "stemedb_wal_archive_archived_lsn",
        "stemedb_wal_archive_gaps",
        "stemedb_wal_archive_last_success_timestamp_seconds",
        "stemedb_wal_archive_failures_total",
        "stemedb_wal_archive_segments_total",
    }
)
# Exposed by the server in addition to API.md's table (documented in docs/reference/api.md).
EXTRA_SERVER_METRICS: Final = frozenset(
    {
        "stemedb_storage_circuit_open",
        "stemedb_audit_queries_pruned_total",
        "stemedb_audit_records_dropped_total",
        "stemedb_process_restarts_total",
        "stemedb_connections_refused_total",
        "stemedb_connections_header_timeouts_total",
        "stemedb_connections_open",
    }
)
# Standard exporters' series the rules and the dashboard use.
EXPORTER_METRICS: Final = frozenset(
    {
        "up",
        "process_resident_memory_bytes",
        "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes",
        "node_filesystem_avail_bytes",
        "node_filesystem_size_bytes",
        "node_filesystem_readonly",
        "process_cpu_seconds_total",
    }
)


def offline_systemd_root(root: Path, units: Path) -> Path:
    """A root for ``systemd-analyze verify --root``: the units of ``units`` under
    etc/systemd/system, the host's targets, and a stub ``/opt/stemedb/.venv/bin/stemedb``
    (verify checks that ExecStart binaries exist and are executable)."""
    system = root / "etc" / "systemd" / "system"
    system.mkdir(parents=True)
    for unit in units.iterdir():
        shutil.copy(unit, system / unit.name)
    shutil.copytree(
        "/usr/lib/systemd/system", root / "usr" / "lib" / "systemd" / "system", symlinks=True
    )
    venv_bin = root / "opt" / "stemedb" / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "stemedb").write_text("#!/bin/sh\nexit 0\n")
    (venv_bin / "stemedb").chmod(0o755)
    return root


def systemd_verify(root: Path, unit: str) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` of ``/etc/systemd/system/UNIT`` under ``root``
    (``--man=no``: no man-page lookups of Documentation=)."""
    tool = require_tool("systemd-analyze")
    return subprocess.run(
        [tool, "verify", "--man=no", f"--root={root}", f"/etc/systemd/system/{unit}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def require_tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(f"{name} is not installed (bash scripts/install-debian-deps.sh)")
    return path


def api_md_metric_names() -> set[str]:
    """The metric names of API.md's "Metrics" table (backquoted ``stemedb_…`` names); the
    reference's table when the design contract is not next to the repository."""
    text = next((p.read_text() for p in API_MD_CANDIDATES if p.exists()), None)
    if text is None:
        return reference_metric_names() - EXTRA_SERVER_METRICS
    section = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`(stemedb_[a-z0-9_]+)`", section))


def reference_metric_names() -> set[str]:
    """The names of docs/reference/api.md's metrics table (the server's documentation)."""
    text = (ROOT / "docs" / "reference" / "api.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `stemedb_")]
    return {name for row in rows for name in re.findall(r"`(stemedb_[a-z0-9_]+)`", row)}


def allowed_metric_names() -> set[str]:
    """Every ``stemedb_*`` name a rule or a dashboard may use: API.md's table, the
    server's additions, the job textfile metrics and the WAL archiver's lag gauge."""
    return api_md_metric_names() | EXTRA_SERVER_METRICS | JOB_METRICS | ARCHIVE_METRICS


HISTOGRAM_SUFFIXES: Final = ("_bucket", "_sum", "_count")


def metric_names_in(expr: str) -> set[str]:
    """``stemedb_*`` metric names in a PromQL expression, histogram series mapped to their
    histogram (``…_seconds_bucket`` → ``…_seconds``)."""
    names = set()
    for name in re.findall(r"\b(stemedb_[a-z0-9_]+)", expr):
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and not name.endswith("_total"):
                name = name[: -len(suffix)]
                break
        names.add(name)
    return names


def other_metric_names_in(expr: str) -> set[str]:
    """Exporter series (node-exporter, process collector, ``up``) in an expression."""
    found = set(re.findall(r"\b((?:node|process)_[a-zA-Z0-9_]+)", expr))
    if re.search(r"\bup\{", expr):
        found.add("up")
    return found


class Node(ServerProcess):
    """One StemeDB server process configured only by what the test passes."""

    def __init__(self, data_dir: Path, log_path: Path, port: int | None = None, **env: str) -> None:
        super().__init__(data_dir, log_path, port=port, isolated=True, **env)
