"""The systemd units of deploy/systemd: ``systemd-analyze verify`` reports nothing, the
API unit is sandboxed (``systemd-analyze security --offline``), and the job wrapper
writes node-exporter textfile metrics that ``promtool check metrics`` accepts.

``systemd-analyze verify`` checks that every ``ExecStart`` binary exists and is
executable, and loads the units' dependencies (``sysinit.target`` …). Offline and
without touching /opt, it runs with ``--root`` on a temporary tree holding: the units
under ``etc/systemd/system``, a copy of the host's ``/usr/lib/systemd/system`` (the
targets), executable stubs at ``/opt/stemedb/.venv/bin/stemedb`` and the real
``deploy/bin/stemedb-job-metrics`` at ``/opt/stemedb/deploy/bin/``; ``--man=no`` skips
the man-page lookups of ``Documentation=``. Problems go to stderr with exit code 0 for
mere warnings (an unknown key is "ignoring"), so the test requires empty output.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from deploy_helpers import DEPLOY, offline_systemd_root, require_tool, systemd_verify

UNITS = DEPLOY / "systemd"
JOB_METRICS = DEPLOY / "bin" / "stemedb-job-metrics"
EXPECTED_UNITS = {
    "stemedb-api.service",
    "stemedb-backup.service",
    "stemedb-backup.timer",
    "stemedb-wal-archive.service",
    "stemedb-wal-archive.timer",
    "stemedb-backup-verify.service",
    "stemedb-backup-verify.timer",
}
MAX_EXPOSURE = 2.0


def unit_settings(name: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@pytest.fixture(scope="module")
def offline_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = offline_systemd_root(tmp_path_factory.mktemp("systemd-root"), UNITS)
    deploy_bin = root / "opt" / "stemedb" / "deploy" / "bin"
    deploy_bin.mkdir(parents=True)
    shutil.copy(JOB_METRICS, deploy_bin / JOB_METRICS.name)
    return root


def test_every_unit_of_the_issue_is_shipped() -> None:
    assert {p.name for p in UNITS.iterdir()} == EXPECTED_UNITS


@pytest.mark.parametrize("unit", sorted(EXPECTED_UNITS))
def test_systemd_analyze_verify_reports_nothing(offline_root: Path, unit: str) -> None:
    result = systemd_verify(offline_root, unit)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout + result.stderr
    )


def test_verify_would_catch_a_typo(offline_root: Path) -> None:
    """The check above is not vacuous: an unknown key is reported."""
    tool = require_tool("systemd-analyze")
    system = offline_root / "etc" / "systemd" / "system"
    broken = system / "stemedb-broken.service"
    broken.write_text(
        (UNITS / "stemedb-api.service").read_text().replace("LimitNOFILE=", "LimitNOFLIE=")
    )
    try:
        result = subprocess.run(
            [
                tool,
                "verify",
                "--man=no",
                f"--root={offline_root}",
                "/etc/systemd/system/stemedb-broken.service",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        broken.unlink()
    assert "Unknown key 'LimitNOFLIE'" in result.stderr


def test_api_unit_is_hardened_and_runs_the_server_with_the_reference_config() -> None:
    s = unit_settings("stemedb-api.service")
    assert s["ExecStart"] == ["/opt/stemedb/.venv/bin/stemedb serve --config /etc/stemedb/api.toml"]
    expected = {
        "User": "stemedb",
        "Group": "stemedb",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "ReadWritePaths": "/var/lib/stemedb",
        "Restart": "on-failure",
        "EnvironmentFile": "/etc/stemedb/stemedb.env",
        "KillSignal": "SIGTERM",
    }
    for key, value in expected.items():
        assert s.get(key) == [value], key
    assert int(s["LimitNOFILE"][0]) >= 65536
    assert "MemoryMax" in s and "MemoryHigh" in s
    # longer than the server's own graceful shutdown (api.app.GRACEFUL_SHUTDOWN_SECONDS)
    from stemedb.api.app import GRACEFUL_SHUTDOWN_SECONDS

    assert int(s["TimeoutStopSec"][0]) > GRACEFUL_SHUTDOWN_SECONDS


def test_api_unit_exposure_is_ok(offline_root: Path) -> None:
    tool = require_tool("systemd-analyze")
    result = subprocess.run(
        [
            tool,
            "security",
            "--offline=yes",
            f"--root={offline_root}",
            "/etc/systemd/system/stemedb-api.service",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for stemedb-api.service: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


@pytest.mark.parametrize(
    ("service", "job", "command"),
    [
        ("stemedb-backup.service", "backup", "backup create --to /var/backups/stemedb"),
        ("stemedb-backup-verify.service", "backup_verify", "backup verify"),
        ("stemedb-wal-archive.service", "wal_archive_timer", "wal archive"),
    ],
)
def test_job_units_run_the_cli_through_the_metrics_wrapper(
    service: str, job: str, command: str
) -> None:
    s = unit_settings(service)
    (exec_start,) = s["ExecStart"]
    assert exec_start.startswith(f"/opt/stemedb/deploy/bin/stemedb-job-metrics {job} ")
    assert f"/opt/stemedb/.venv/bin/stemedb {command}" in exec_start
    assert s["Type"] == ["oneshot"] and s["User"] == ["stemedb"]
    assert "Environment" in s and "STEMEDB_CONFIG=/etc/stemedb/api.toml" in s["Environment"]
    timer = unit_settings(service.replace(".service", ".timer"))
    assert timer["Unit"] == [service] and timer["Persistent"] == ["true"]


def _run_job(textfile_dir: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(JOB_METRICS), "backup", *command],
        env={"STEMEDB_TEXTFILE_DIR": str(textfile_dir), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _values(path: Path) -> dict[str, float]:
    return {
        line.split()[0]: float(line.split()[1])
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    }


def test_job_wrapper_records_success_then_failure_keeping_the_last_success(
    tmp_path: Path,
) -> None:
    prom = tmp_path / "stemedb_backup.prom"
    ok = _run_job(tmp_path, "true")
    assert ok.returncode == 0, ok.stderr
    first = _values(prom)
    assert first["stemedb_backup_failed"] == 0
    assert first["stemedb_backup_last_success_timestamp_seconds"] > 1_600_000_000

    failed = _run_job(tmp_path, "sh", "-c", "exit 7")
    assert failed.returncode == 7  # the job's own status
    second = _values(prom)
    assert second["stemedb_backup_failed"] == 1
    assert (
        second["stemedb_backup_last_success_timestamp_seconds"]
        == (first["stemedb_backup_last_success_timestamp_seconds"])
    )
    assert (
        second["stemedb_backup_last_run_timestamp_seconds"]
        >= (first["stemedb_backup_last_run_timestamp_seconds"])
    )
    assert [p.name for p in tmp_path.iterdir()] == [prom.name]  # no temp files left

    promtool = require_tool("promtool")
    lint = subprocess.run(
        [promtool, "check", "metrics"],
        input=prom.read_text(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr


def test_job_wrapper_never_succeeded_reports_zero(tmp_path: Path) -> None:
    assert _run_job(tmp_path, "false").returncode == 1
    values = _values(tmp_path / "stemedb_backup.prom")
    assert values["stemedb_backup_last_success_timestamp_seconds"] == 0
    assert values["stemedb_backup_failed"] == 1


def test_job_wrapper_without_textfile_dir_still_returns_the_job_status(tmp_path: Path) -> None:
    result = _run_job(tmp_path / "missing", "true")
    assert result.returncode == 0
    assert "no metrics written" in result.stderr
