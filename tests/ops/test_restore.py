"""Restore: point-in-time (by time and by LSN) from a backup plus archived WAL, gaps,
WAL-only rebuilds, and the refusals (live directory, non-empty directory, no space)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_helpers import make_claim

from stemedb.engine import Engine, EngineSettings
from stemedb.errors import DiskFullError, StorageError, ValidationError
from stemedb.ops.backup import restore as restore_module
from stemedb.ops.backup.create import BackupResult, create_backup
from stemedb.ops.backup.location import LocalBackups
from stemedb.ops.backup.restore import RestoreRequest, restore_backup
from stemedb.ops.s3 import S3Client, S3Location
from stemedb.ops.segments import read_segment
from stemedb.ops.state import wal_state_hash
from stemedb.store.sqlite import SqliteStore
from stemedb.sys.faults import FakeClock

T0 = 1_800_000_000.0
SEGMENT_SIZE_BYTES = 32 * 1024
BATCH = 300


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def engine(data_dir: Path, clock: FakeClock) -> Iterator[Engine]:
    settings = EngineSettings(segment_size_bytes=SEGMENT_SIZE_BYTES, fsync=False)
    eng = Engine.embedded(data_dir, settings, clock=clock)
    yield eng
    eng.close()


def write_batch(engine: Engine, number: int) -> int:
    """Batch ``number`` (distinct records); the LSN of its last record."""
    claims = [make_claim(number * BATCH + i, timestamp=int(T0) - 60) for i in range(BATCH)]
    engine.write_many(claims)
    return engine.wal.last_lsn


def archive_wal(wal_dir: Path, base: Path) -> None:
    """Archive every segment like ``ops.archive`` does: bytes + sidecar (the contract)."""
    (base / "wal").mkdir(parents=True, exist_ok=True)
    for segment in sorted(wal_dir.glob("*.wal")):
        data = segment.read_bytes()
        first = int(segment.stem, 16)
        records = record_count(segment)
        (base / "wal" / segment.name).write_bytes(data)
        sidecar = {
            "first_lsn": first,
            "last_lsn": first + records - 1,
            "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "archived_at": T0,
        }
        (base / "wal" / (segment.name + ".json")).write_text(json.dumps(sidecar))


def record_count(segment: Path) -> int:
    return len(read_segment(segment, int(segment.stem, 16)).frames)


def store_summary(data_dir: Path) -> tuple[int, int, str]:
    """(assertions, last LSN, state hash) of a restored data directory."""
    store = SqliteStore(data_dir)
    try:
        lsn, digest = store.state_hash()
        return store.assertion_count(), lsn, digest
    finally:
        store.close()


@pytest.fixture
def history(engine: Engine, data_dir: Path, clock: FakeClock, tmp_path: Path) -> dict[str, object]:
    """Batch 1 at T0, backup, batch 2 at T0+100, batch 3 at T0+200; all WAL archived."""
    end1 = write_batch(engine, 0)
    backup = create_backup(data_dir, data_dir / "wal", LocalBackups(tmp_path / "backups"))
    clock.advance(100)
    end2 = write_batch(engine, 1)
    clock.advance(100)
    end3 = write_batch(engine, 2)
    hashes = {lsn: wal_state_hash(engine.wal, lsn)[1] for lsn in (end1, end2, end3, end2 - 7)}
    engine.close()
    archive_wal(data_dir / "wal", tmp_path / "archive")
    return {"backup": backup, "ends": (end1, end2, end3), "hashes": hashes}


def test_point_in_time_between_two_batches_holds_exactly_the_records_up_to_it(
    history: dict[str, object], tmp_path: Path
) -> None:
    backup: BackupResult = history["backup"]  # type: ignore[assignment]
    _end1, end2, end3 = history["ends"]  # type: ignore[misc]
    hashes: dict[int, str] = history["hashes"]  # type: ignore[assignment]
    report = restore_backup(
        RestoreRequest(
            backup.url, tmp_path / "pitr", to_time=T0 + 150, wal_archive=str(tmp_path / "archive")
        )
    )
    assert report.mode == "point-in-time" and report.store_from_backup
    assert report.restored_lsn == end2 == 2 * BATCH
    assert report.last_committed_at == T0 + 100
    assert report.segments_from_archive > 0
    assert store_summary(tmp_path / "pitr") == (2 * BATCH, end2, hashes[end2])
    assert end3 > end2


def test_point_in_time_to_an_lsn_inside_a_batch(history: dict[str, object], tmp_path: Path) -> None:
    backup: BackupResult = history["backup"]  # type: ignore[assignment]
    _end1, end2, _end3 = history["ends"]  # type: ignore[misc]
    hashes: dict[int, str] = history["hashes"]  # type: ignore[assignment]
    target = end2 - 7
    report = restore_backup(
        RestoreRequest(
            backup.url, tmp_path / "pitr", to_lsn=target, wal_archive=str(tmp_path / "archive")
        )
    )
    assert report.restored_lsn == target and report.state_hash == hashes[target]
    assert store_summary(tmp_path / "pitr")[:2] == (target, target)


def test_point_in_time_before_the_backup_rebuilds_the_store_from_lsn_1(
    history: dict[str, object], tmp_path: Path
) -> None:
    backup: BackupResult = history["backup"]  # type: ignore[assignment]
    report = restore_backup(
        RestoreRequest(
            backup.url, tmp_path / "pitr", to_lsn=100, wal_archive=str(tmp_path / "archive")
        )
    )
    assert not report.store_from_backup and report.restored_lsn == 100
    assert store_summary(tmp_path / "pitr")[:2] == (100, 100)


def test_truncated_archived_segment_is_reported_as_a_gap(
    history: dict[str, object], tmp_path: Path
) -> None:
    backup: BackupResult = history["backup"]  # type: ignore[assignment]
    _end1, end2, end3 = history["ends"]  # type: ignore[misc]
    archived = sorted((tmp_path / "archive" / "wal").glob("*.wal"))
    victim = next(p for p in archived if int(p.stem, 16) > end2)  # a segment of batch 3
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    first = int(victim.stem, 16)
    archive = str(tmp_path / "archive")
    for request in (
        RestoreRequest(backup.url, tmp_path / "a", to_lsn=end3, wal_archive=archive),
        RestoreRequest(backup.url, tmp_path / "b", to_time=T0 + 500, wal_archive=archive),
    ):
        with pytest.raises(StorageError) as caught:
            restore_backup(request)
        assert caught.value.code == "wal_gap"
        assert "truncated" in caught.value.message and f"{victim.name}" in caught.value.message
        gap = caught.value.details["gaps"][0]
        assert first <= gap["first_lsn"] <= gap["last_lsn"]
        assert not any(p.name != "LOCK" for p in request.data_dir.iterdir())  # cleaned up
    # a target before the gap is still reachable
    ok = restore_backup(
        RestoreRequest(
            backup.url, tmp_path / "c", to_lsn=first - 1, wal_archive=str(tmp_path / "archive")
        )
    )
    assert ok.restored_lsn == first - 1 and ok.gaps == []


def test_wal_only_restore_rebuilds_the_store_from_the_wal(
    engine: Engine, data_dir: Path, tmp_path: Path
) -> None:
    write_batch(engine, 0)
    backup = create_backup(data_dir, data_dir / "wal", LocalBackups(tmp_path / "backups"))
    report = restore_backup(RestoreRequest(backup.url, tmp_path / "r", wal_only=True))
    assert report.ok and report.mode == "wal-only" and not report.store_from_backup
    assert report.records_replayed == BATCH
    assert report.state_hash == backup.manifest.state_hash


def test_restore_refuses_a_live_data_directory_even_with_force(
    engine: Engine, data_dir: Path, tmp_path: Path
) -> None:
    write_batch(engine, 0)
    backup = create_backup(data_dir, data_dir / "wal", LocalBackups(tmp_path / "backups"))
    before = sorted(p.name for p in (data_dir / "wal").iterdir())
    with pytest.raises(StorageError) as caught:
        restore_backup(RestoreRequest(backup.url, data_dir, force=True))
    assert caught.value.code == "data_dir_locked"
    assert sorted(p.name for p in (data_dir / "wal").iterdir()) == before


def test_restore_refuses_a_non_empty_directory_without_force(
    engine: Engine, data_dir: Path, tmp_path: Path
) -> None:
    write_batch(engine, 0)
    backup = create_backup(data_dir, data_dir / "wal", LocalBackups(tmp_path / "backups"))
    target = tmp_path / "old"
    target.mkdir()
    (target / "store.sqlite").write_bytes(b"precious")
    with pytest.raises(ValidationError) as caught:
        restore_backup(RestoreRequest(backup.url, target))
    assert caught.value.code == "data_dir_not_empty"
    assert (target / "store.sqlite").read_bytes() == b"precious"
    report = restore_backup(RestoreRequest(backup.url, target, force=True))
    assert report.ok and report.moved_aside is not None
    assert (Path(report.moved_aside) / "store.sqlite").read_bytes() == b"precious"


def test_restore_checks_free_space_before_writing(
    engine: Engine, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_batch(engine, 0)
    backup = create_backup(data_dir, data_dir / "wal", LocalBackups(tmp_path / "backups"))
    real = shutil.disk_usage

    def tiny(path: object) -> object:
        usage = real(str(path))
        return type(usage)(usage.total, usage.total - 1024, 1024)

    monkeypatch.setattr(restore_module.shutil, "disk_usage", tiny)
    with pytest.raises(DiskFullError):
        restore_backup(RestoreRequest(backup.url, tmp_path / "r"))
    assert [p.name for p in (tmp_path / "r").iterdir()] == ["LOCK"]


def test_restore_from_a_location_picks_the_newest_backup_before_the_target(
    engine: Engine, data_dir: Path, clock: FakeClock, tmp_path: Path
) -> None:
    location = LocalBackups(tmp_path / "backups")
    write_batch(engine, 0)
    first = create_backup(data_dir, data_dir / "wal", location)
    clock.advance(100)
    write_batch(engine, 1)
    second = create_backup(data_dir, data_dir / "wal", location)
    latest = restore_backup(RestoreRequest(str(location.root), tmp_path / "a"))
    assert latest.backup == second.url and latest.restored_lsn == 2 * BATCH
    older = restore_backup(RestoreRequest(str(location.root), tmp_path / "b", to_time=T0 + 50))
    assert older.backup == first.url and older.restored_lsn == BATCH


def test_point_in_time_from_an_s3_backup_and_an_s3_wal_archive(
    history: dict[str, object], tmp_path: Path, s3_bucket: S3Location
) -> None:
    backup: BackupResult = history["backup"]  # type: ignore[assignment]
    _end1, end2, _end3 = history["ends"]  # type: ignore[misc]
    hashes: dict[int, str] = history["hashes"]  # type: ignore[assignment]
    client = S3Client.from_env()
    backups = S3Location(s3_bucket.bucket, "backups")
    name = backup.manifest.name
    for path in sorted(Path(backup.url).rglob("*")):
        if path.is_file():
            key = backups.key(name, path.relative_to(backup.url).as_posix())
            client.put_file(backups, key, path)
    archive = S3Location(s3_bucket.bucket, "archive")
    for path in sorted((tmp_path / "archive" / "wal").iterdir()):
        client.put_file(archive, archive.key("wal", path.name), path)
    report = restore_backup(
        RestoreRequest(
            backups.url(name), tmp_path / "pitr", to_time=T0 + 150, wal_archive=archive.url()
        )
    )
    assert report.restored_lsn == end2 and report.state_hash == hashes[end2]
    assert report.segments_from_archive > 0
