"""Each fault of the test double does what it says, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from stemedb.errors import DiskFullError, StorageError
from stemedb.sys import RealFileSystem
from stemedb.sys.faults import FakeClock, FaultyFileSystem, SimulatedCrash


@pytest.fixture
def fs() -> FaultyFileSystem:
    return FaultyFileSystem(RealFileSystem())


def test_faulty_fs_without_faults_behaves_like_the_real_one(
    fs: FaultyFileSystem, tmp_path: Path
) -> None:
    path = tmp_path / "f"
    handle = fs.open_append(path)
    handle.write(b"abc")
    handle.fdatasync()
    handle.fsync()
    handle.truncate(2)
    assert handle.tell() == handle.size() == 2
    handle.close()
    assert fs.read_file(path) == b"ab"
    assert fs.write_calls == 1
    assert fs.bytes_written == 3
    assert fs.file_sync_calls == 2


def test_failed_fsync_fails_the_next_n_syncs_then_heals(
    fs: FaultyFileSystem, tmp_path: Path
) -> None:
    handle = fs.open_append(tmp_path / "f")
    handle.write(b"data")
    fs.fail_fsync(2)
    with pytest.raises(StorageError) as info:
        handle.fdatasync()
    assert info.value.details["errno"] == "EIO"
    with pytest.raises(StorageError):
        handle.fsync()
    handle.fsync()
    fs.directory_sync_calls = 0
    fs.fsync_directory(tmp_path)  # directories are not affected unless asked
    assert fs.read_file(tmp_path / "f") == b"data"  # the bytes stay in the file


def test_failed_fsync_forever_until_healed(fs: FaultyFileSystem, tmp_path: Path) -> None:
    handle = fs.open_append(tmp_path / "f")
    fs.fail_fsync(None, directories=True)
    for _ in range(3):
        with pytest.raises(StorageError):
            handle.fdatasync()
    with pytest.raises(StorageError):
        fs.fsync_directory(tmp_path)
    fs.heal_fsync()
    handle.fdatasync()
    fs.fsync_directory(tmp_path)


def test_torn_write_keeps_k_bytes_then_crashes_everything(
    fs: FaultyFileSystem, tmp_path: Path
) -> None:
    path = tmp_path / "f"
    handle = fs.open_append(path)
    fs.tear_write(3, call=2)
    handle.write(b"first")
    with pytest.raises(SimulatedCrash):
        handle.write(b"second")
    assert fs.crashed
    with pytest.raises(SimulatedCrash):
        handle.write(b"more")
    with pytest.raises(SimulatedCrash):
        fs.read_file(path)
    handle.close()
    fs.restart()
    assert fs.read_file(path) == b"firstsec"


def test_simulated_crash_is_not_caught_by_except_exception() -> None:
    assert not issubclass(SimulatedCrash, Exception)


def test_full_disk_writes_what_fits_then_raises_until_space_is_freed(
    fs: FaultyFileSystem, tmp_path: Path
) -> None:
    path = tmp_path / "f"
    handle = fs.open_append(path)
    fs.fill_disk(budget_bytes=4)
    assert fs.disk_free_bytes(tmp_path) == 4
    handle.write(b"ab")
    with pytest.raises(DiskFullError) as info:
        handle.write(b"cdef")
    assert info.value.code == "disk_full"
    assert str(path) in info.value.message
    with pytest.raises(DiskFullError):
        handle.write(b"g")
    assert fs.read_file(path) == b"abcd"
    handle.truncate(2)
    fs.free_space()
    handle.write(b"xyz")
    assert fs.read_file(path) == b"abxyz"


def test_failed_truncate(fs: FaultyFileSystem, tmp_path: Path) -> None:
    handle = fs.open_append(tmp_path / "f")
    handle.write(b"abc")
    fs.fail_truncate()
    with pytest.raises(StorageError):
        handle.truncate(0)
    handle.truncate(1)
    assert fs.read_file(tmp_path / "f") == b"a"


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(start_seconds=100.0)
    assert clock.time() == 100.0
    assert clock.monotonic() == 0.0
    clock.advance(2.5)
    assert (clock.time(), clock.monotonic()) == (102.5, 2.5)
    clock.set(50.0)
    assert (clock.time(), clock.monotonic()) == (50.0, 2.5)
    with pytest.raises(ValueError):
        clock.advance(-1)
