"""The real file system seam: behaviour and OSError translation."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from stemedb.errors import DiskFullError, StorageError
from stemedb.sys import RealFileSystem, SystemClock, translate_os_error


def test_append_file_writes_truncates_and_reports_size(tmp_path: Path) -> None:
    fs = RealFileSystem()
    path = tmp_path / "f.bin"
    handle = fs.open_append(path)
    assert handle.write(b"hello ") == 6
    handle.write(memoryview(b"world"))
    handle.fdatasync()
    handle.fsync()
    assert handle.tell() == handle.size() == 11
    handle.truncate(5)
    handle.write(b"!")
    handle.close()
    handle.close()  # closing twice is harmless
    assert fs.read_file(path) == b"hello!"
    assert fs.read_range(path, 2, 3) == b"llo"
    assert fs.read_range(path, 4, 100) == b"o!"
    assert fs.file_size(path) == 6


def test_reopened_append_file_continues_at_the_end(tmp_path: Path) -> None:
    fs = RealFileSystem()
    path = tmp_path / "f.bin"
    first = fs.open_append(path)
    first.write(b"abc")
    first.close()
    second = fs.open_append(path)
    assert second.tell() == 3
    second.write(b"def")
    second.close()
    assert fs.read_file(path) == b"abcdef"


def test_create_refuses_an_existing_file(tmp_path: Path) -> None:
    fs = RealFileSystem()
    path = tmp_path / "f.bin"
    fs.create(path).close()
    with pytest.raises(StorageError) as info:
        fs.create(path)
    assert str(path) in info.value.message
    assert info.value.details["errno"] == "EEXIST"
    assert isinstance(info.value.__cause__, OSError)


def test_directory_operations(tmp_path: Path) -> None:
    fs = RealFileSystem()
    nested = tmp_path / "a" / "b"
    fs.makedirs(nested)
    fs.makedirs(nested)
    fs.fsync_directory(nested)
    fs.create(nested / "2").close()
    fs.create(nested / "1").close()
    assert fs.listdir(nested) == ["1", "2"]
    fs.rename(nested / "1", nested / "3")
    assert fs.listdir(nested) == ["2", "3"]
    fs.remove(nested / "2")
    assert not fs.exists(nested / "2")
    assert fs.exists(nested / "3")
    assert fs.disk_free_bytes(nested) > 0


def test_missing_file_is_a_storage_error_naming_the_path(tmp_path: Path) -> None:
    fs = RealFileSystem()
    missing = tmp_path / "missing.bin"
    for action in (
        lambda: fs.read_file(missing),
        lambda: fs.read_range(missing, 0, 1),
        lambda: fs.remove(missing),
        lambda: fs.file_size(missing),
        lambda: fs.listdir(missing),
    ):
        with pytest.raises(StorageError) as info:
            action()
        assert info.value.code == "file_not_found"
        assert str(missing) in info.value.message


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EDQUOT])
def test_no_space_errors_become_disk_full(number: int) -> None:
    error = translate_os_error(OSError(number, "full"), "write", Path("/x/y"))
    assert isinstance(error, DiskFullError)
    assert error.code == "disk_full"
    assert "/x/y" in error.message


def test_other_os_errors_become_storage_errors() -> None:
    error = translate_os_error(OSError(errno.EIO, "Input/output error"), "fsync", "/d/f")
    assert type(error) is StorageError
    assert error.code == "storage_error"
    assert error.message == "fsync /d/f: Input/output error [EIO]"
    assert error.details == {"path": "/d/f", "action": "fsync", "errno": "EIO"}


def test_system_clock_moves_forward() -> None:
    clock = SystemClock()
    first = clock.monotonic()
    assert clock.monotonic() >= first
    assert clock.time() > 1_600_000_000
