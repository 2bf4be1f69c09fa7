"""Test doubles for the I/O seam: a file system that fails on purpose, and a fake clock.

Shipped in the package so every layer's tests use the same faults:

- ``fail_fsync(count)``: the next ``count`` fsync/fdatasync calls on files (``None``:
  all of them) raise ``StorageError`` as an ``EIO`` would. The written bytes stay in
  the file, as in a real kernel after a failed writeback.
- ``tear_write(keep_bytes, call=1)``: the ``call``-th write from now writes only its
  first ``keep_bytes`` bytes, then the "process dies": ``SimulatedCrash`` is raised and
  every later operation raises it too, until ``restart()`` (a new process).
- ``fill_disk(budget_bytes)``: once more than ``budget_bytes`` have been written from
  now, writes fail with ENOSPC (``DiskFullError``); the write that crosses the budget
  writes the bytes that still fit first, as a real short write would. ``free_space()``
  lifts the limit.
- ``fail_truncate(count)``: the next ``count`` truncates fail with ``EIO``.
- ``delay_fsync(seconds)``: every file sync sleeps ``seconds`` first (a slow disk).
"""

from __future__ import annotations

import errno
import time
from pathlib import Path

from stemedb.sys.filesystem import FileSystem, WritableFile, translate_os_error


class SimulatedCrash(BaseException):
    """The simulated process died mid-operation. A ``BaseException`` so no handler eats it."""


class FaultyFileSystem:
    """A ``FileSystem`` that delegates to ``real`` and injects the faults it is told to."""

    def __init__(self, real: FileSystem) -> None:
        self.real = real
        self.write_calls = 0
        self.bytes_written = 0
        self.file_sync_calls = 0
        self.directory_sync_calls = 0
        self.crashed = False
        self._fsync_failures: int | None = 0
        self._fail_directory_fsync = False
        self._truncate_failures = 0
        self._tear_call: int | None = None
        self._tear_keep_bytes = 0
        self._disk_budget_bytes: int | None = None
        self.fsync_delay_seconds = 0.0

    # -- fault switches ------------------------------------------------------------

    def fail_fsync(self, count: int | None = 1, *, directories: bool = False) -> None:
        """Fail the next ``count`` file syncs (``None``: every one until ``heal_fsync``)."""
        self._fsync_failures = count
        self._fail_directory_fsync = directories

    def delay_fsync(self, seconds: float) -> None:
        """Make every file sync take at least ``seconds`` (0: no delay)."""
        self.fsync_delay_seconds = max(0.0, seconds)

    def heal_fsync(self) -> None:
        self._fsync_failures = 0
        self._fail_directory_fsync = False

    def fail_truncate(self, count: int = 1) -> None:
        self._truncate_failures = count

    def tear_write(self, keep_bytes: int, *, call: int = 1) -> None:
        """Cut the ``call``-th write from now after ``keep_bytes`` bytes, then crash."""
        if call < 1 or keep_bytes < 0:
            raise ValueError("call must be >= 1 and keep_bytes >= 0")
        self._tear_call = self.write_calls + call
        self._tear_keep_bytes = keep_bytes

    def fill_disk(self, budget_bytes: int = 0) -> None:
        """Let only ``budget_bytes`` more bytes be written; then ENOSPC."""
        self._disk_budget_bytes = self.bytes_written + budget_bytes

    def free_space(self) -> None:
        self._disk_budget_bytes = None

    def restart(self) -> None:
        """A new process starts: the crash is over, the faults are cleared."""
        self.crashed = False
        self._tear_call = None
        self.heal_fsync()
        self._truncate_failures = 0
        self.free_space()

    # -- hooks used by FaultyFile ---------------------------------------------------

    def check_alive(self) -> None:
        if self.crashed:
            raise SimulatedCrash("the simulated process has crashed")

    def crash(self) -> SimulatedCrash:
        self.crashed = True
        return SimulatedCrash("simulated crash")

    def take_fsync_failure(self) -> bool:
        if self._fsync_failures is None:
            return True
        if self._fsync_failures > 0:
            self._fsync_failures -= 1
            return True
        return False

    def take_truncate_failure(self) -> bool:
        if self._truncate_failures > 0:
            self._truncate_failures -= 1
            return True
        return False

    def plan_write(self, length: int) -> tuple[int, str | None]:
        """How many bytes of a ``length``-byte write land, and the fault that follows."""
        self.write_calls += 1
        if self._tear_call is not None and self.write_calls == self._tear_call:
            self._tear_call = None
            return min(length, self._tear_keep_bytes), "tear"
        if self._disk_budget_bytes is not None:
            room = max(0, self._disk_budget_bytes - self.bytes_written)
            if length > room:
                return room, "full"
        return length, None

    # -- FileSystem --------------------------------------------------------------------

    def open_append(self, path: Path) -> WritableFile:
        self.check_alive()
        return FaultyFile(self, self.real.open_append(path))

    def create(self, path: Path, *, mode: int = 0o644) -> WritableFile:
        self.check_alive()
        return FaultyFile(self, self.real.create(path, mode=mode))

    def read_file(self, path: Path) -> bytes:
        self.check_alive()
        return self.real.read_file(path)

    def read_range(self, path: Path, offset: int, length: int) -> bytes:
        self.check_alive()
        return self.real.read_range(path, offset, length)

    def fsync_directory(self, path: Path) -> None:
        self.check_alive()
        self.directory_sync_calls += 1
        if self._fail_directory_fsync and self.take_fsync_failure():
            raise translate_os_error(OSError(errno.EIO, "injected I/O error"), "fsync", path)
        self.real.fsync_directory(path)

    def rename(self, source: Path, target: Path) -> None:
        self.check_alive()
        self.real.rename(source, target)

    def remove(self, path: Path) -> None:
        self.check_alive()
        self.real.remove(path)

    def listdir(self, path: Path) -> list[str]:
        self.check_alive()
        return self.real.listdir(path)

    def exists(self, path: Path) -> bool:
        self.check_alive()
        return self.real.exists(path)

    def makedirs(self, path: Path) -> None:
        self.check_alive()
        self.real.makedirs(path)

    def file_size(self, path: Path) -> int:
        self.check_alive()
        return self.real.file_size(path)

    def disk_free_bytes(self, path: Path) -> int:
        self.check_alive()
        real_free = self.real.disk_free_bytes(path)
        if self._disk_budget_bytes is None:
            return real_free
        return min(real_free, max(0, self._disk_budget_bytes - self.bytes_written))


class FaultyFile:
    """A ``WritableFile`` whose faults are decided by its ``FaultyFileSystem``."""

    def __init__(self, owner: FaultyFileSystem, inner: WritableFile) -> None:
        self._owner = owner
        self._inner = inner

    @property
    def path(self) -> Path:
        return self._inner.path

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._owner.check_alive()
        view = memoryview(data)
        landed, fault = self._owner.plan_write(len(view))
        if landed:
            self._inner.write(view[:landed])
            self._owner.bytes_written += landed
        if fault == "tear":
            raise self._owner.crash()
        if fault == "full":
            error = OSError(errno.ENOSPC, "No space left on device (injected)")
            raise translate_os_error(error, "write", self.path)
        return len(view)

    def _sync(self, action: str, real_sync_name: str) -> None:
        self._owner.check_alive()
        self._owner.file_sync_calls += 1
        if self._owner.fsync_delay_seconds:
            time.sleep(self._owner.fsync_delay_seconds)
        if self._owner.take_fsync_failure():
            raise translate_os_error(OSError(errno.EIO, "injected I/O error"), action, self.path)
        getattr(self._inner, real_sync_name)()

    def fdatasync(self) -> None:
        self._sync("fdatasync", "fdatasync")

    def fsync(self) -> None:
        self._sync("fsync", "fsync")

    def truncate(self, size: int) -> None:
        self._owner.check_alive()
        if self._owner.take_truncate_failure():
            error = OSError(errno.EIO, "injected I/O error")
            raise translate_os_error(error, "truncate", self.path)
        self._inner.truncate(size)

    def tell(self) -> int:
        return self._inner.tell()

    def size(self) -> int:
        self._owner.check_alive()
        return self._inner.size()

    def close(self) -> None:
        # Closing after a crash is allowed: the OS closes a dead process's files.
        self._inner.close()


class FakeClock:
    """A ``Clock`` that moves only when told to."""

    def __init__(self, start_seconds: float = 1_700_000_000.0) -> None:
        self._wall = start_seconds
        self._monotonic = 0.0

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._monotonic

    def set(self, wall_seconds: float) -> None:
        """Set the wall clock (it may go backwards; the monotonic clock never does)."""
        self._wall = wall_seconds

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock advances by a non-negative number of seconds")
        self._wall += seconds
        self._monotonic += seconds
