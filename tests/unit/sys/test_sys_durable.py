"""Whole durable files through the I/O seam: a failure never leaves half a file, and
never damages the file that was there before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stemedb.errors import DiskFullError, StorageError
from stemedb.sys import RealFileSystem
from stemedb.sys.durable import replace_file, sync_file, write_new_file, write_new_file_from
from stemedb.sys.faults import FaultyFileSystem


@pytest.fixture
def fs() -> FaultyFileSystem:
    return FaultyFileSystem(RealFileSystem())


def test_new_file_is_written_fsynced_and_gets_the_mode_asked_for(
    fs: FaultyFileSystem, tmp_path: Path
) -> None:
    path = tmp_path / "key"
    write_new_file(fs, path, b"secret\n", mode=0o600)
    assert path.read_bytes() == b"secret\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert fs.file_sync_calls == 1


def test_failed_fsync_of_a_new_file_leaves_no_file(fs: FaultyFileSystem, tmp_path: Path) -> None:
    fs.fail_fsync()
    with pytest.raises(StorageError, match="fsync"):
        write_new_file(fs, tmp_path / "f", b"data")
    assert list(tmp_path.iterdir()) == []


def test_full_disk_while_writing_a_new_file_leaves_no_file(
    fs: FaultyFileSystem, tmp_path: Path
) -> None:
    fs.fill_disk(3)
    with pytest.raises(DiskFullError):
        write_new_file_from(fs, tmp_path / "f", [b"ab", b"cd"])
    assert list(tmp_path.iterdir()) == []


def test_failing_chunk_producer_leaves_no_file(fs: FaultyFileSystem, tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"first"
        raise StorageError("the source vanished")

    with pytest.raises(StorageError, match="vanished"):
        write_new_file_from(fs, tmp_path / "f", chunks())
    assert list(tmp_path.iterdir()) == []


def test_new_file_never_replaces_an_existing_one(fs: FaultyFileSystem, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"before")
    with pytest.raises(StorageError) as caught:
        write_new_file(fs, path, b"after")
    assert caught.value.details["errno"] == "EEXIST"
    assert path.read_bytes() == b"before"


def test_replace_file_swaps_the_content_and_fsyncs_the_directory(
    fs: FaultyFileSystem, tmp_path: Path
) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(b"old")
    replace_file(fs, path, b"new")
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    assert fs.directory_sync_calls == 1


def test_failed_fsync_while_replacing_a_file_keeps_the_previous_one(
    fs: FaultyFileSystem, tmp_path: Path
) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(b"old")
    fs.fail_fsync()
    with pytest.raises(StorageError):
        replace_file(fs, path, b"new")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_failed_fsync_of_an_existing_file_is_reported(fs: FaultyFileSystem, tmp_path: Path) -> None:
    path = tmp_path / "copy.sqlite"
    path.write_bytes(b"pages")
    fs.fail_fsync()
    with pytest.raises(StorageError, match="fsync"):
        sync_file(fs, path)
    assert path.read_bytes() == b"pages"
