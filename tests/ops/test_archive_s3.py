"""WAL archival to S3 (moto in server mode: real HTTP), the ``stemedb wal archive`` CLI
next to a running server, and the server's background archiver with its lag metric."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from archive_helpers import SEGMENT_SIZE_BYTES, claim, fill, open_engine, wal_files

from stemedb.client import Client
from stemedb.errors import StorageError
from stemedb.ops.archive.archiving import archive_wal
from stemedb.ops.archive.layout import check_archive, segment_name
from stemedb.ops.archive.target import CONFLICT_CODE, S3ArchiveTarget, open_archive_target
from stemedb.ops.s3 import S3Client, S3Location

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "client"))

from support.server import ServerProcess

CLI_TIMEOUT_SECONDS = 120


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    environ.update(env)
    script = Path(sys.executable).with_name("stemedb")
    return subprocess.run(
        [str(script), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.fixture
def base(s3_bucket: S3Location) -> str:
    return f"s3://{s3_bucket.bucket}/archive"


def test_s3_archive_is_idempotent_and_write_once(tmp_path: Path, base: str) -> None:
    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 200)
        target = open_archive_target(base)
        assert isinstance(target, S3ArchiveTarget)
        first = archive_wal(data_dir / "wal", target)
        assert len(first.shipped) >= 3 and first.check.ok
        again = archive_wal(data_dir / "wal", open_archive_target(base))
        assert again.shipped == () and again.already_archived == len(first.shipped)
    client = S3Client.from_env()
    location = S3Location(base.split("/")[2], "archive/wal")
    names = sorted(o.key.rsplit("/", 1)[1] for o in client.list_objects(location, "archive/wal/"))
    assert names == sorted([*first.shipped, *(f"{n}.json" for n in first.shipped)])
    head = client.head(location, location.key(first.shipped[0]))
    assert head is not None and head.sha256 is not None  # the checksum travels with it


def test_s3_refuses_to_overwrite_a_different_archived_segment(tmp_path: Path, base: str) -> None:
    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 120)
        bucket = base.split("/")[2]
        location = S3Location(bucket, "archive/wal")
        squatter = b"not this database's segment"
        S3Client.from_env().put_bytes(location, location.key(segment_name(1)), squatter)
        with pytest.raises(StorageError) as caught:
            archive_wal(data_dir / "wal", open_archive_target(base))
    assert caught.value.code == CONFLICT_CODE
    assert S3Client.from_env().get_bytes(location, location.key(segment_name(1))) == squatter


def test_s3_gaps_missing_and_truncated_segments(tmp_path: Path, base: str) -> None:
    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 200)
        run = archive_wal(data_dir / "wal", open_archive_target(base))
    client = S3Client.from_env()
    location = S3Location(base.split("/")[2], "archive/wal")
    truncated = client.get_bytes(location, location.key(run.shipped[0]))[:-5]
    client.delete(location, [location.key(run.shipped[0]), location.key(run.shipped[2])])
    client.put_bytes(location, location.key(run.shipped[0]), truncated)
    client.delete(location, [location.key(f"{run.shipped[2]}.json")])
    check = check_archive(open_archive_target(base))
    assert (check.gaps[0].from_lsn, check.gaps[0].reason) == (1, "segment_truncated")
    assert "missing_range" in {g.reason for g in check.gaps}
    assert check.contiguous_through_lsn == 0


def _server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "STEMEDB_WAL_SEGMENT_SIZE_BYTES": str(SEGMENT_SIZE_BYTES),
        "STEMEDB_WAL_FSYNC": "false",
        "STEMEDB_API_MAX_BATCH": "50",
        **extra,
    }


def _write(url: str, start: int, count: int) -> None:
    with Client(url) as db:
        for first in range(start, start + count, 10):
            db.assert_batch([claim(i) for i in range(first, min(first + 10, start + count))])


def test_cli_archives_next_to_a_running_server_and_leaves_deletion_to_it(
    tmp_path: Path, base: str
) -> None:
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir, tmp_path / "server.log", **_server_env(tmp_path))
    try:
        _write(server.url, 0, 200)
        before = wal_files(data_dir)
        env = {
            "STEMEDB_DB_DIR": str(data_dir),
            **{k: v for k, v in os.environ.items() if k.startswith(("AWS_", "STEMEDB_S3"))},
        }
        result = _cli("wal", "archive", "--to", base, env=env)
        assert result.returncode == 0, result.stderr
        assert "its archiver" in result.stderr  # the server holds the lock: no deletion
        assert wal_files(data_dir) == before
        again = _cli("wal", "archive", "--to", base, env=env)
        assert again.returncode == 0, again.stderr
        assert '"shipped": []' in again.stdout
        check = _cli("wal", "archive", "--to", base, "--check", env=env)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        assert server.stop() == 0
    # Stopped: the CLI may delete what is archived and checkpointed.
    result = _cli("wal", "archive", "--to", base, env=env)
    assert result.returncode == 0, result.stderr
    assert wal_files(data_dir) == [before[-1]]


def test_server_archiver_ships_deletes_and_reports_lag(tmp_path: Path, base: str) -> None:
    data_dir = tmp_path / "data"
    env = _server_env(
        tmp_path,
        STEMEDB_ARCHIVE_ENABLED="true",
        STEMEDB_ARCHIVE_S3_URL=base,
        STEMEDB_ARCHIVE_INTERVAL_SECONDS="1",
    )
    server = ServerProcess(data_dir, tmp_path / "server.log", **env)
    try:
        _write(server.url, 0, 200)
        deadline = time.monotonic() + 30
        metrics = ""
        while time.monotonic() < deadline:
            metrics = httpx.get(server.url + "/metrics").text
            if len(wal_files(data_dir)) == 1 and "stemedb_wal_archive_lag_segments 0.0" in metrics:
                break
            time.sleep(0.2)
        assert len(wal_files(data_dir)) == 1, wal_files(data_dir)
        assert "stemedb_wal_archive_lag_segments 0.0" in metrics
        assert "stemedb_wal_archive_failures_total 0.0" in metrics
        if shutil.which("promtool"):
            lint = subprocess.run(
                ["promtool", "check", "metrics"],
                input=metrics,
                capture_output=True,
                text=True,
                check=False,
            )
            assert "wal_archive" not in lint.stdout + lint.stderr, lint.stdout + lint.stderr
        check = check_archive(open_archive_target(base))
        assert check.ok and check.contiguous_through_lsn > 150
        _write(server.url, 200, 20)  # writes go on after the deletion
    finally:
        assert server.stop() == 0
    restarted = ServerProcess(data_dir, tmp_path / "server2.log", **env)
    try:
        assert httpx.get(restarted.url + "/ready").status_code == 200
    finally:
        assert restarted.stop() == 0
