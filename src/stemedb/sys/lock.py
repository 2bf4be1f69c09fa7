"""An exclusive lock on a data directory, so two processes never open one WAL."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Final

from stemedb.errors import StorageError

LOCK_FILE: Final = "LOCK"


class DirectoryLock:
    """Holds ``flock(LOCK_EX)`` on ``<directory>/LOCK`` until released (or the process dies)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / LOCK_FILE
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise StorageError(
                f"{directory} is in use by another StemeDB process (lock {self.path});"
                " stop it first",
                code="data_dir_locked",
                retryable=False,
            ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1
