"""Files mapped into every process of one node: shared bytes and a shared integer.

Several HTTP processes (``api.workers``) and the writer process use these for what
must be seen across processes at once and cheaply: the writer's applied LSN, the
generation of the API keys and rate-limit overrides (``SharedInt``), the ``memory://``
rate-limit table (``SharedFile``). Not durable, and meaningless after a restart
(whoever owns a file rewrites it at start-up). An aligned 8-byte store into a shared
mapping is seen whole by the other processes; ``increment`` is atomic between
processes (``flock``), ``set`` is for a single writer.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from pathlib import Path
from typing import Final

_VALUE: Final = struct.Struct("<Q")


class SharedFile:
    """A file of ``size`` bytes mapped into every process of a node that opens it, and
    ``with`` it: ``flock`` on it, exclusive between processes. ``reset`` empties it."""

    def __init__(self, path: Path, size: int, *, create: bool, reset: bool = False) -> None:
        self._fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
        try:
            if reset:
                os.ftruncate(self._fd, 0)
            if os.fstat(self._fd).st_size < size:
                os.ftruncate(self._fd, size)
            self.map = mmap.mmap(self._fd, size)
        except BaseException:
            os.close(self._fd)
            raise

    def __enter__(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self.map.close()
        os.close(self._fd)


class SharedInt(SharedFile):
    def __init__(self, path: Path, *, create: bool = False) -> None:
        super().__init__(path, _VALUE.size, create=create)

    def get(self) -> int:
        value: int = _VALUE.unpack_from(self.map)[0]
        return value

    def set(self, value: int) -> None:
        _VALUE.pack_into(self.map, 0, value)

    def increment(self) -> int:
        """Add one, atomically across processes; the new value."""
        with self:
            value = self.get() + 1
            self.set(value)
        return value
