"""An integer shared by the processes of one node through an mmap'd 8-byte file.

Several HTTP processes (``api.workers``) and the writer process use these for what
must be seen across processes at once and cheaply: the writer's applied LSN, the
generation of the API keys and rate-limit overrides. Not durable, and meaningless
after a restart (whoever owns a file rewrites it at start-up). An aligned 8-byte store
into a shared mapping is seen whole by the other processes; ``increment`` is atomic
between processes (``flock``), ``set`` is for a single writer.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from pathlib import Path
from typing import Final

_VALUE: Final = struct.Struct("<Q")


class SharedInt:
    def __init__(self, path: Path, *, create: bool = False) -> None:
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        self._fd = os.open(path, flags, 0o600)
        try:
            if create or os.fstat(self._fd).st_size < _VALUE.size:
                os.ftruncate(self._fd, _VALUE.size)
            self._map = mmap.mmap(self._fd, _VALUE.size)
        except BaseException:
            os.close(self._fd)
            raise

    def get(self) -> int:
        value: int = _VALUE.unpack_from(self._map)[0]
        return value

    def set(self, value: int) -> None:
        _VALUE.pack_into(self._map, 0, value)

    def increment(self) -> int:
        """Add one, atomically across processes; the new value."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            value = self.get() + 1
            self.set(value)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        return value

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)
