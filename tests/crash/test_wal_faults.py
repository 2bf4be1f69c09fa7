"""Failed fsync (fsyncgate), full disk and failed truncate: what the WAL promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from stemedb.errors import DiskFullError, ReadOnlyError, StorageError
from stemedb.sys import RealFileSystem
from stemedb.sys.faults import FaultyFileSystem
from stemedb.wal import Wal


class CountingObserver:
    def __init__(self) -> None:
        self.fsync_errors = 0
        self.appends = 0

    def on_fsync(self, duration_seconds: float) -> None:
        pass

    def on_append(self, records: int, bytes: int) -> None:
        self.appends += 1

    def on_rotation(self) -> None:
        pass

    def on_fsync_error(self) -> None:
        self.fsync_errors += 1


def records(count: int, start: int = 0) -> list[tuple[int, bytes]]:
    return [(1, f"r{start + i}".encode()) for i in range(count)]


@pytest.fixture
def fs() -> FaultyFileSystem:
    return FaultyFileSystem(RealFileSystem())


def test_failed_fsync_never_acknowledges_and_leaves_the_wal_read_only(
    fs: FaultyFileSystem, tmp_path: Path
) -> None:
    observer = CountingObserver()
    wal = Wal.open(tmp_path, fs=fs, observer=observer)
    wal.append(records(2))
    fs.fail_fsync(1)  # only one failure: a retry would succeed, and must not happen
    with pytest.raises(StorageError) as info:
        wal.append(records(3, 2))
    assert info.value.code == "fsync_failed"
    assert info.value.retryable is False
    assert isinstance(info.value.__cause__, StorageError)
    assert wal.read_only
    assert wal.read_only_reason is not None and "fsync" in wal.read_only_reason
    assert wal.last_lsn == 2
    assert [r.lsn for r in wal.iter_from(1)] == [1, 2]
    assert observer.fsync_errors == 1
    assert observer.appends == 1
    syncs = fs.file_sync_calls
    with pytest.raises(ReadOnlyError) as later:
        wal.append(records(1))
    assert later.value.code == "read_only"
    assert fs.file_sync_calls == syncs  # never retried
    wal.close()
    # After a restart, the unacknowledged batch may be there (its bytes reached the
    # file) -- "present implies submitted" -- and the WAL is writable again.
    reopened = Wal.open(tmp_path, fs=fs)
    assert reopened.last_lsn in (2, 5)
    assert not reopened.read_only
    reopened.close()


def test_failed_fsync_while_sealing_a_segment_is_fatal_too(
    fs: FaultyFileSystem, tmp_path: Path
) -> None:
    wal = Wal.open(tmp_path, fs=fs, segment_size_bytes=80)
    wal.append(records(2))
    fs.fail_fsync(1)
    with pytest.raises(StorageError, match="fsync") as info:
        wal.append(records(2, 2))
    assert info.value.code == "fsync_failed"
    assert wal.read_only and wal.last_lsn == 2
    wal.close()


def test_failed_directory_fsync_after_rotation_is_fatal(
    fs: FaultyFileSystem, tmp_path: Path
) -> None:
    wal = Wal.open(tmp_path, fs=fs, segment_size_bytes=80)
    wal.append(records(2))
    fs.fail_fsync(None, directories=True)
    with pytest.raises(StorageError):
        wal.append(records(2, 2))
    assert wal.read_only and wal.last_lsn == 2
    wal.close()


def test_disk_full_raises_leaves_no_garbage_and_appends_resume_after_free_space(
    fs: FaultyFileSystem, tmp_path: Path
) -> None:
    wal = Wal.open(tmp_path, fs=fs)
    wal.append(records(2))
    size_before = wal.segments()[0].path.stat().st_size
    fs.fill_disk(budget_bytes=10)  # part of the next batch lands, then ENOSPC
    with pytest.raises(DiskFullError) as info:
        wal.append(records(4, 2))
    assert info.value.code == "disk_full"
    assert wal.segments()[0].path.stat().st_size == size_before
    assert not wal.read_only
    assert wal.last_lsn == 2
    with pytest.raises(DiskFullError):
        wal.append(records(1, 2))
    fs.free_space()
    assert wal.append(records(2, 2)) == 3
    assert [r.payload for r in wal.iter_from(1)] == [b"r0", b"r1", b"r2", b"r3"]
    wal.close()
    reopened = Wal.open(tmp_path, fs=fs)
    assert reopened.recovery.truncated_bytes == 0
    assert reopened.last_lsn == 4
    reopened.close()


def test_disk_full_while_starting_a_segment_keeps_the_wal_writable(
    fs: FaultyFileSystem, tmp_path: Path
) -> None:
    wal = Wal.open(tmp_path, fs=fs, segment_size_bytes=80)
    wal.append(records(2))
    fs.fill_disk(budget_bytes=5)  # the new segment's header does not fit
    with pytest.raises(DiskFullError):
        wal.append(records(2, 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0000000000000001.wal"]
    assert not wal.read_only
    fs.free_space()
    assert wal.append(records(2, 2)) == 3
    assert [s.first_lsn for s in wal.segments()] == [1, 3]
    wal.close()


def test_failed_truncate_after_disk_full_makes_the_wal_read_only(
    fs: FaultyFileSystem, tmp_path: Path
) -> None:
    wal = Wal.open(tmp_path, fs=fs)
    wal.append(records(1))
    fs.fill_disk(budget_bytes=3)
    fs.fail_truncate()
    with pytest.raises(StorageError) as info:
        wal.append(records(2, 1))
    assert info.value.code == "truncate_failed"
    assert info.value.__cause__ is not None
    assert isinstance(info.value.__cause__.__context__, DiskFullError)
    assert wal.read_only
    fs.free_space()
    with pytest.raises(ReadOnlyError):
        wal.append(records(1, 1))
    wal.close()
    # The garbage is a torn tail: the next open cuts it.
    reopened = Wal.open(tmp_path, fs=fs)
    assert reopened.last_lsn == 1 and reopened.recovery.truncated_bytes == 3
    reopened.close()
