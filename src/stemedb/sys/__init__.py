"""The one I/O seam of StemeDB (LevelDB's ``Env``).

Every file write, fsync, directory fsync and clock read of the storage layers goes
through a ``FileSystem`` and a ``Clock`` passed in by the caller, so tests can swap in
``stemedb.sys.faults`` (failed fsync, torn write, full disk, fake clock). ``OSError`` is
translated here into ``StorageError`` / ``DiskFullError``.
"""

from stemedb.sys.clock import Clock, SystemClock
from stemedb.sys.filesystem import (
    FileSystem,
    RealFile,
    RealFileSystem,
    WritableFile,
    translate_os_error,
)

__all__ = [
    "Clock",
    "FileSystem",
    "RealFile",
    "RealFileSystem",
    "SystemClock",
    "WritableFile",
    "translate_os_error",
]
