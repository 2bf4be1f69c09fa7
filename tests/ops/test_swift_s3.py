"""WAL archival against a real S3-compatible server: OpenStack Swift with its S3 API
(s3api + tempauth) from Debian's packages, started on loopback as the ``swift`` user
(``swift_server.py``). Skipped only when Swift cannot be installed/run here, with the
reason; ``scripts/install-debian-deps.sh`` installs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from archive_helpers import fill, open_engine, wal_files
from swift_server import ACCESS_KEY, REGION, SECRET_KEY, SwiftS3

from stemedb.errors import StorageError
from stemedb.ops.archive.archiving import archive_wal, delete_archived_segments
from stemedb.ops.archive.layout import check_archive, segment_name
from stemedb.ops.archive.target import CONFLICT_CODE, open_archive_target
from stemedb.ops.s3 import S3Client, S3Location

BUCKET = "stemedb-archive"


def _delete(client: S3Client, location: S3Location, name: str) -> None:
    client.delete(location, [location.key(name)])  # must work on Swift (no DeleteObjects)


@pytest.fixture
def swift_env(swift: SwiftS3, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "STEMEDB_S3_ENDPOINT_URL": swift.endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    S3Client.from_env().create_bucket(BUCKET)
    return env


def test_wal_archive_round_trip_on_swift(
    swift_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    base = f"s3://{BUCKET}/{request.node.name}"
    location = S3Location(BUCKET, f"{request.node.name}/wal")
    client = S3Client.from_env()
    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 200)
        first = archive_wal(data_dir / "wal", open_archive_target(base))
        assert len(first.shipped) >= 3 and first.check.ok
        for name in first.shipped:  # byte for byte, checksum in the object's metadata
            stored = client.get_bytes(location, location.key(name))
            assert stored == (data_dir / "wal" / name).read_bytes()
            head = client.head(location, location.key(name))
            assert head is not None and head.sha256 is not None
        # Idempotent retry: nothing is uploaded twice.
        again = archive_wal(data_dir / "wal", open_archive_target(base))
        assert again.shipped == () and again.already_archived == len(first.shipped)
        # Deletion after archival and checkpoint, then the engine goes on writing.
        deleted = archive_wal(
            data_dir / "wal",
            open_archive_target(base),
            delete=delete_archived_segments(engine.wal, data_dir),
        )
        assert list(deleted.deleted) == list(first.shipped)
        assert len(wal_files(data_dir)) == 1 and deleted.check.ok
        fill(engine, 200, 10)


def test_swift_refuses_overwrite_and_reports_a_truncated_segment_as_a_gap(
    swift_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    base = f"s3://{BUCKET}/{request.node.name}"
    location = S3Location(BUCKET, f"{request.node.name}/wal")
    client = S3Client.from_env()
    data_dir = tmp_path / "data"
    with open_engine(data_dir) as engine:
        fill(engine, 0, 120)
        squatter = b"a segment of another database"
        client.put_bytes(location, location.key(segment_name(1)), squatter)
        with pytest.raises(StorageError) as caught:
            archive_wal(data_dir / "wal", open_archive_target(base))
        assert caught.value.code == CONFLICT_CODE
        assert client.get_bytes(location, location.key(segment_name(1))) == squatter
        _delete(client, location, segment_name(1))
        run = archive_wal(data_dir / "wal", open_archive_target(base))
    truncated = client.get_bytes(location, location.key(run.shipped[1]))[:-3]
    _delete(client, location, run.shipped[1])
    client.put_bytes(location, location.key(run.shipped[1]), truncated)
    check = check_archive(open_archive_target(base))
    assert [g.reason for g in check.gaps] == ["segment_truncated"]
    # The CLI says the same, and exits 1.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    environ.update(swift_env)
    environ["STEMEDB_DB_DIR"] = str(data_dir)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("stemedb")), "wal", "archive", "--to", base, "--check"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert '"segment_truncated"' in result.stdout


def test_dr_drill_through_swift(swift_env: dict[str, str], tmp_path: Path) -> None:
    """Backup, archive and point-in-time restore all through Swift's S3 API."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    environ.update(swift_env)
    workdir = tmp_path / "drill"
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("stemedb")),
            "dr-drill",
            "--synthetic",
            "600",
            "--workdir",
            str(workdir),
            "--backup-to",
            f"s3://{BUCKET}/drill-backups",
            "--archive",
            f"s3://{BUCKET}/drill-archive",
        ],
        env=environ,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((workdir / "dr-drill-report.json").read_text())
    assert report["ok"] and report["restored_lsn"] > report["backup_lsn"]
    assert report["archive"].startswith(f"s3://{BUCKET}/drill-archive/dr-drill-")
