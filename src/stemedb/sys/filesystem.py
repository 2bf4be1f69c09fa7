"""The file-system seam: every file access of StemeDB goes through a ``FileSystem``.

``RealFileSystem`` talks to the operating system; ``stemedb.sys.faults`` wraps it to
inject failed fsyncs, torn writes and a full disk in tests. ``OSError`` never leaves
this module: ENOSPC/EDQUOT become ``DiskFullError``, everything else ``StorageError``
(``raise ... from exc``), with a message naming the action and the path.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Protocol

from stemedb.errors import DiskFullError, StorageError

_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def translate_os_error(exc: OSError, action: str, path: Path | str) -> StorageError:
    """The StemeDB error for an ``OSError`` raised while doing ``action`` on ``path``."""
    code_name = errno.errorcode.get(exc.errno or 0, "EUNKNOWN")
    reason = exc.strerror or str(exc)
    details = {"path": str(path), "action": action, "errno": code_name}
    message = f"{action} {path}: {reason} [{code_name}]"
    if exc.errno in _DISK_FULL_ERRNOS:
        return DiskFullError(message, details=details)
    if exc.errno == errno.ENOENT:
        return StorageError(message, code="file_not_found", details=details, retryable=False)
    return StorageError(message, details=details)


class WritableFile(Protocol):
    """A file opened for writing at its end. Every write appends."""

    @property
    def path(self) -> Path: ...

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write all of ``data`` (looping over short writes); return its length."""
        ...

    def fdatasync(self) -> None: ...

    def fsync(self) -> None: ...

    def truncate(self, size: int) -> None:
        """Cut the file to ``size`` bytes; later writes continue at the new end."""
        ...

    def tell(self) -> int:
        """The offset the next write goes to (equals the file size)."""
        ...

    def size(self) -> int: ...

    def close(self) -> None: ...


class FileSystem(Protocol):
    """Everything StemeDB does with files and directories."""

    def open_append(self, path: Path) -> WritableFile:
        """Open ``path`` for appending, creating it if missing."""
        ...

    def create(self, path: Path, *, mode: int = 0o644) -> WritableFile:
        """Create a new, empty ``path`` (permission bits ``mode``) for writing; fails
        if it exists."""
        ...

    def read_file(self, path: Path) -> bytes: ...

    def read_range(self, path: Path, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer at the end of the file)."""
        ...

    def fsync_directory(self, path: Path) -> None: ...

    def rename(self, source: Path, target: Path) -> None:
        """Atomically rename ``source`` to ``target`` (replacing it)."""
        ...

    def remove(self, path: Path) -> None: ...

    def listdir(self, path: Path) -> list[str]:
        """File names in ``path``, sorted."""
        ...

    def exists(self, path: Path) -> bool: ...

    def makedirs(self, path: Path) -> None:
        """Create ``path`` and missing parents; no error if it exists."""
        ...

    def file_size(self, path: Path) -> int: ...

    def disk_free_bytes(self, path: Path) -> int: ...


class RealFile:
    """A ``WritableFile`` over an ``os.open`` descriptor opened with ``O_APPEND``."""

    def __init__(self, path: Path, flags: int, mode: int = 0o644) -> None:
        self._path = path
        try:
            self._fd = os.open(path, flags | os.O_WRONLY | os.O_APPEND, mode)
            self._offset = os.fstat(self._fd).st_size
        except OSError as exc:
            raise translate_os_error(exc, "open", path) from exc
        self._closed = False

    @property
    def path(self) -> Path:
        return self._path

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        total = len(view)
        written = 0
        try:
            while written < total:
                count = os.write(self._fd, view[written:])
                if count == 0:
                    raise OSError(errno.EIO, "write returned 0 bytes")
                written += count
        except OSError as exc:
            raise translate_os_error(exc, "write", self._path) from exc
        finally:
            self._offset += written
        return total

    def fdatasync(self) -> None:
        sync = getattr(os, "fdatasync", os.fsync)
        try:
            sync(self._fd)
        except OSError as exc:
            raise translate_os_error(exc, "fdatasync", self._path) from exc

    def fsync(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise translate_os_error(exc, "fsync", self._path) from exc

    def truncate(self, size: int) -> None:
        try:
            os.ftruncate(self._fd, size)
        except OSError as exc:
            raise translate_os_error(exc, "truncate", self._path) from exc
        self._offset = size

    def tell(self) -> int:
        return self._offset

    def size(self) -> int:
        try:
            return os.fstat(self._fd).st_size
        except OSError as exc:
            raise translate_os_error(exc, "stat", self._path) from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            os.close(self._fd)
        except OSError as exc:
            raise translate_os_error(exc, "close", self._path) from exc


class RealFileSystem:
    """The operating system's file system."""

    def open_append(self, path: Path) -> WritableFile:
        return RealFile(path, os.O_CREAT)

    def create(self, path: Path, *, mode: int = 0o644) -> WritableFile:
        return RealFile(path, os.O_CREAT | os.O_EXCL, mode)

    def read_file(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise translate_os_error(exc, "read", path) from exc

    def read_range(self, path: Path, offset: int, length: int) -> bytes:
        try:
            with path.open("rb") as handle:
                handle.seek(offset)
                return handle.read(length)
        except OSError as exc:
            raise translate_os_error(exc, "read", path) from exc

    def fsync_directory(self, path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise translate_os_error(exc, "fsync directory", path) from exc

    def rename(self, source: Path, target: Path) -> None:
        try:
            os.replace(source, target)
        except OSError as exc:
            raise translate_os_error(exc, f"rename to {target}", source) from exc

    def remove(self, path: Path) -> None:
        try:
            os.remove(path)
        except OSError as exc:
            raise translate_os_error(exc, "remove", path) from exc

    def listdir(self, path: Path) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except OSError as exc:
            raise translate_os_error(exc, "list", path) from exc

    def exists(self, path: Path) -> bool:
        return path.exists()

    def makedirs(self, path: Path) -> None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise translate_os_error(exc, "create directory", path) from exc

    def file_size(self, path: Path) -> int:
        try:
            return os.stat(path).st_size
        except OSError as exc:
            raise translate_os_error(exc, "stat", path) from exc

    def disk_free_bytes(self, path: Path) -> int:
        try:
            return shutil.disk_usage(path).free
        except OSError as exc:
            raise translate_os_error(exc, "disk usage", path) from exc
