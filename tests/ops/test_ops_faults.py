"""Backup, restore and the drill report under injected I/O faults (``stemedb.sys.faults``):
a failed fsync or a full disk surfaces as ``StorageError`` / ``DiskFullError`` and leaves
no partial result behind, and what was there before stays intact."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from ops_helpers import make_claim

from stemedb.engine import Engine, EngineSettings
from stemedb.errors import DiskFullError, StorageError
from stemedb.ops.backup.create import BackupResult, create_backup
from stemedb.ops.backup.location import LocalBackups, list_backups
from stemedb.ops.backup.restore import RestoreRequest, restore_backup
from stemedb.ops.drill_report import DrillReport, write_reports
from stemedb.sys import RealFileSystem
from stemedb.sys.faults import FaultyFileSystem

NOW = int(time.time())


@pytest.fixture
def engine(data_dir: Path) -> Iterator[Engine]:
    eng = Engine.embedded(data_dir, EngineSettings(segment_size_bytes=32 * 1024, fsync=False))
    eng.write_many([make_claim(i, timestamp=NOW - 60) for i in range(200)])
    yield eng
    eng.close()


@pytest.fixture
def fs() -> FaultyFileSystem:
    return FaultyFileSystem(RealFileSystem())


def _backup(engine: Engine, data_dir: Path, root: Path, fs: Any = None) -> BackupResult:
    return create_backup(data_dir, data_dir / "wal", LocalBackups(root, fs=fs), fs=fs)


def _complete_backups(root: Path) -> list[str]:
    return [item.name for item in list_backups(LocalBackups(root)) if item.manifest]


def test_failed_fsync_during_backup_leaves_no_partial_backup(
    engine: Engine, data_dir: Path, tmp_path: Path, fs: FaultyFileSystem
) -> None:
    root = tmp_path / "backups"
    before = _backup(engine, data_dir, root)
    fs.fail_fsync(None)
    with pytest.raises(StorageError, match="fsync"):
        _backup(engine, data_dir, root, fs)
    assert [p.name for p in root.iterdir()] == [before.manifest.name]  # no .partial left
    assert _complete_backups(root) == [before.manifest.name]


def test_full_disk_during_backup_leaves_the_previous_backup_intact(
    engine: Engine, data_dir: Path, tmp_path: Path, fs: FaultyFileSystem
) -> None:
    root = tmp_path / "backups"
    before = _backup(engine, data_dir, root)
    fs.fill_disk(1000)
    with pytest.raises(DiskFullError):
        _backup(engine, data_dir, root, fs)
    assert [p.name for p in root.iterdir()] == [before.manifest.name]
    restored = restore_backup(RestoreRequest(before.url, tmp_path / "restored"))
    assert restored.ok and restored.restored_lsn == before.manifest.last_lsn


def test_failed_fsync_during_restore_removes_the_partial_restore(
    engine: Engine, data_dir: Path, tmp_path: Path, fs: FaultyFileSystem
) -> None:
    backup = _backup(engine, data_dir, tmp_path / "backups")
    target = tmp_path / "restored"
    fs.fail_fsync(None)
    with pytest.raises(StorageError, match="fsync"):
        restore_backup(RestoreRequest(backup.url, target), fs=fs)
    assert [p.name for p in target.iterdir()] == ["LOCK"]
    fs.heal_fsync()
    assert restore_backup(RestoreRequest(backup.url, target), fs=fs).ok


def test_failed_fsync_during_restore_keeps_the_files_moved_aside(
    engine: Engine, data_dir: Path, tmp_path: Path, fs: FaultyFileSystem
) -> None:
    backup = _backup(engine, data_dir, tmp_path / "backups")
    target = tmp_path / "restored"
    target.mkdir()
    (target / "store.sqlite").write_bytes(b"precious")
    fs.fail_fsync(None)
    with pytest.raises(StorageError, match="fsync"):
        restore_backup(RestoreRequest(backup.url, target, force=True), fs=fs)
    (aside,) = [p for p in target.iterdir() if p.name.startswith("pre-restore-")]
    assert (aside / "store.sqlite").read_bytes() == b"precious"
    assert sorted(p.name for p in target.iterdir()) == sorted(["LOCK", aside.name])


def test_restore_refuses_a_disk_too_full_before_writing_a_byte(
    engine: Engine, data_dir: Path, tmp_path: Path, fs: FaultyFileSystem
) -> None:
    backup = _backup(engine, data_dir, tmp_path / "backups")
    fs.fill_disk(4096)
    with pytest.raises(DiskFullError, match="not enough free space"):
        restore_backup(RestoreRequest(backup.url, tmp_path / "restored"), fs=fs)
    assert fs.bytes_written == 0


def _report() -> DrillReport:
    zero = {bool: False, str: "", int: 0, float: 0.0}
    fields = msgspec.structs.fields(DrillReport)
    values = {f.name: zero.get(f.type, []) for f in fields if f.required}
    return msgspec.convert(values, DrillReport)


def test_failed_fsync_of_the_drill_report_keeps_the_previous_report(
    tmp_path: Path, fs: FaultyFileSystem
) -> None:
    path = tmp_path / "reports" / "dr-drill.json"
    write_reports(_report(), path, fs)
    before = path.read_bytes()
    fs.fail_fsync()
    with pytest.raises(StorageError, match="fsync"):
        write_reports(msgspec.structs.replace(_report(), ok=True), path, fs)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["dr-drill.json", "dr-drill.txt"]
