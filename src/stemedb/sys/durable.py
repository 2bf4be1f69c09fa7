"""Whole files made durable through a ``FileSystem``: what ``ops/`` and the CLI write
besides the WAL (backup and restore copies, manifests, key files, reports).

- ``write_new_file`` / ``write_new_file_from``: create a file that must not exist,
  write it, fsync it. If a write or the fsync fails, the partial file is removed
  (best effort) before the error goes up: a failure leaves no half-written file.
- ``replace_file``: write a temporary file next to ``path``, fsync it, rename it over
  ``path``, fsync the directory. A failure leaves the previous file as it was.
- ``sync_file``: fsync a file that another library wrote (SQLite's backup API).

The caller fsyncs the directory of a new file once it has written all of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from stemedb.errors import StorageError
from stemedb.sys.filesystem import FileSystem, WritableFile

NEW_FILE_MODE: Final = 0o644
TEMPORARY_SUFFIX: Final = ".tmp"


def write_new_file_from(
    fs: FileSystem, path: Path, chunks: Iterable[bytes], *, mode: int = NEW_FILE_MODE
) -> int:
    """Create ``path`` with the concatenated ``chunks`` and fsync it; the bytes written.

    Raises ``StorageError`` (``DiskFullError`` for a full disk) and leaves no file
    behind if anything fails after the create; an existing ``path`` is never touched.
    """
    handle = fs.create(path, mode=mode)
    written = 0
    try:
        for chunk in chunks:
            written += handle.write(chunk)
        handle.fsync()
    except BaseException:  # a failed write or fsync, or the chunks' producer failed
        _close_and_remove(fs, handle, path)
        raise
    handle.close()
    return written


def write_new_file(fs: FileSystem, path: Path, data: bytes, *, mode: int = NEW_FILE_MODE) -> None:
    """``write_new_file_from`` for bytes already in memory."""
    write_new_file_from(fs, path, (data,), mode=mode)


def replace_file(fs: FileSystem, path: Path, data: bytes) -> None:
    """Atomically make ``path`` hold ``data`` (created or replaced), durably."""
    temporary = path.with_name(path.name + TEMPORARY_SUFFIX)
    if fs.exists(temporary):  # left by an earlier crash
        fs.remove(temporary)
    write_new_file(fs, temporary, data)
    try:
        fs.rename(temporary, path)
    except StorageError:
        with contextlib.suppress(StorageError):
            fs.remove(temporary)
        raise
    fs.fsync_directory(path.parent)


def sync_file(fs: FileSystem, path: Path) -> None:
    """Fsync the existing file ``path``."""
    handle = fs.open_append(path)
    try:
        handle.fsync()
    finally:
        handle.close()


def _close_and_remove(fs: FileSystem, handle: WritableFile, path: Path) -> None:
    with contextlib.suppress(StorageError):
        handle.close()
    with contextlib.suppress(StorageError):
        fs.remove(path)
