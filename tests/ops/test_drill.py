"""``stemedb dr-drill`` end to end, as a subprocess: synthetic (local directory and moto
S3), live next to a running server, and failing when a target is missed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from archive_helpers import SEGMENT_SIZE_BYTES, claim, fill, open_engine

from stemedb.client import Client
from stemedb.ops.archive.archiving import archive_wal
from stemedb.ops.archive.target import LocalArchiveTarget
from stemedb.ops.s3 import S3Location

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "client"))

from support.server import ServerProcess

DRILL_TIMEOUT_SECONDS = 240


def _drill(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    environ.update({k: v for k, v in os.environ.items() if k == "STEMEDB_S3_ENDPOINT_URL"})
    environ.update(env or {})
    script = Path(sys.executable).with_name("stemedb")
    return subprocess.run(
        [str(script), "dr-drill", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=DRILL_TIMEOUT_SECONDS,
        check=False,
    )


def _report(workdir: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((workdir / "dr-drill-report.json").read_text())
    return report


def test_synthetic_drill_passes_and_reports_rto_and_rpo(tmp_path: Path) -> None:
    workdir = tmp_path / "drill"
    result = _drill("--synthetic", "1000", "--workdir", str(workdir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DR drill (synthetic)" in result.stdout and ": PASS" in result.stdout
    report = _report(workdir)
    assert report["ok"] and report["state_hash_ok"] and report["rto_ok"] and report["rpo_ok"]
    assert [s["name"] for s in report["steps"]] == [
        "load",
        "backup",
        "write",
        "archive",
        "loss",
        "restore",
        "verify",
    ]
    # The restore went past the backup with archived WAL, and stopped at the archive's end.
    assert report["backup_lsn"] == 500
    assert report["backup_lsn"] < report["restored_lsn"] == report["archived_through_lsn"]
    assert report["loss_lsn"] == 1000
    assert report["records_lost"] == 1000 - report["restored_lsn"] > 0
    assert report["rto_seconds"] > 0 and report["rpo_seconds"] >= 0
    assert report["restored_state_hash"] == report["expected_state_hash"]
    assert not (workdir / "source").exists()  # the loss was real
    assert (workdir / "dr-drill-report.txt").read_text().startswith("StemeDB DR drill")
    # A second run in the same workdir starts from scratch (write-once keys do not clash).
    again = _drill("--synthetic", "200", "--workdir", str(workdir))
    assert again.returncode == 0, again.stdout + again.stderr


def test_synthetic_drill_through_s3(tmp_path: Path, s3_bucket: S3Location) -> None:
    workdir = tmp_path / "drill"
    base = f"s3://{s3_bucket.bucket}"
    env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "STEMEDB_S3"))}
    result = _drill(
        "--synthetic",
        "600",
        "--workdir",
        str(workdir),
        "--backup-to",
        f"{base}/backups",
        "--archive",
        f"{base}/archive",
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = _report(workdir)
    assert report["ok"]
    assert report["archive"].startswith(f"{base}/archive/dr-drill-")
    assert report["backup"].startswith(f"{base}/backups/dr-drill-")


def test_live_drill_next_to_a_running_server_leaves_it_alone(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"STEMEDB_WAL_SEGMENT_SIZE_BYTES": "16384", "STEMEDB_API_MAX_BATCH": "50"}
    server = ServerProcess(data_dir, tmp_path / "server.log", **env)
    try:
        with Client(server.url) as db:
            for first in range(0, 300, 10):
                db.assert_batch([claim(i) for i in range(first, first + 10)])
        segments = sorted(p.name for p in (data_dir / "wal").glob("*.wal"))
        workdir = tmp_path / "drill"
        result = _drill("--workdir", str(workdir), env={"STEMEDB_DB_DIR": str(data_dir), **env})
        assert result.returncode == 0, result.stdout + result.stderr
        report = _report(workdir)
        assert report["mode"] == "live" and report["ok"]
        assert report["loss_lsn"] == 300 and report["restored_lsn"] <= 300
        steps = {s["name"]: s["detail"] for s in report["steps"]}
        assert list(steps) == ["backup", "archive", "loss", "restore", "verify"]
        assert "simulated" in steps["loss"]
        assert httpx.get(server.url + "/ready").status_code == 200
        assert sorted(p.name for p in (data_dir / "wal").glob("*.wal")) == segments
    finally:
        assert server.stop() == 0


def test_drill_fails_when_the_rto_target_is_missed(tmp_path: Path) -> None:
    workdir = tmp_path / "drill"
    result = _drill(
        "--synthetic",
        "200",
        "--workdir",
        str(workdir),
        env={"STEMEDB_DR_RTO_TARGET_SECONDS": "0"},
    )
    assert result.returncode == 1
    report = _report(workdir)
    assert not report["ok"] and not report["rto_ok"] and report["state_hash_ok"]
    assert "RTO" in result.stdout and "FAIL" in result.stdout


def test_live_drill_fails_when_the_archive_is_damaged(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 200)
    base = tmp_path / "archive"
    run = archive_wal(data_dir / "wal", LocalArchiveTarget(base))
    victim = base / "wal" / run.shipped[0]
    victim.write_bytes(victim.read_bytes()[:-1])  # a truncated archived segment
    workdir = tmp_path / "drill"
    result = _drill(
        "--workdir",
        str(workdir),
        "--archive",
        str(base),
        env={
            "STEMEDB_DB_DIR": str(data_dir),
            "STEMEDB_WAL_SEGMENT_SIZE_BYTES": str(SEGMENT_SIZE_BYTES),
        },
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = _report(workdir)
    assert not report["ok"] and report["error"]
    failed = [s["name"] for s in report["steps"] if not s["ok"]]
    assert failed == ["archive"]
    assert "FAIL" in result.stdout
