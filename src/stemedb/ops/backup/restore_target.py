"""The target of a restore (``ops.backup.restore``, steps 1 and 2 of its module doc): a
data directory no process holds, empty (or emptied with ``force``: its files moved aside
into ``pre-restore-<UTC stamp>/``, nothing deleted), with room for the backup; after a
failed restore, what the restore wrote is removed again."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Final

from stemedb.errors import DiskFullError, ValidationError
from stemedb.sys import FileSystem, translate_os_error
from stemedb.sys.lock import LOCK_FILE, DirectoryLock

MARGIN_FRACTION: Final = 0.10
MARGIN_BYTES: Final = 64 * 1024 * 1024
MOVED_ASIDE_PREFIX: Final = "pre-restore-"


def _entries(directory: Path, ignore: set[str]) -> list[Path]:
    if not directory.exists():
        return []
    return sorted(p for p in directory.iterdir() if p.name not in ignore)


def _outside(wal_dir: Path, data_dir: Path) -> bool:
    return not wal_dir.resolve().is_relative_to(data_dir.resolve())


def prepare_target(
    fs: FileSystem, data_dir: Path, wal_dir: Path, *, force: bool
) -> tuple[DirectoryLock, str | None]:
    """Lock the target (refusing a live one) and make sure it is empty (moving the old
    files aside with ``force``). Returns the lock and where old files went."""
    lock = DirectoryLock(data_dir)  # raises StorageError(data_dir_locked) when live
    try:
        existing = _entries(data_dir, {LOCK_FILE})
        external = _entries(wal_dir, set()) if _outside(wal_dir, data_dir) else []
        if not existing and not external:
            return lock, None
        if not force:
            names = ", ".join(str(p) for p in (existing + external)[:5])
            raise ValidationError(
                "data_dir",
                "must be empty",
                f"{data_dir} is not empty ({names}); pass --force to move its files aside"
                f" into {data_dir}/{MOVED_ASIDE_PREFIX}<time>/ and restore anyway",
                code="data_dir_not_empty",
            )
        aside = data_dir / (MOVED_ASIDE_PREFIX + time.strftime("%Y%m%d-%H%M%S", time.gmtime()))
        fs.makedirs(aside)
        for path in existing:
            if not path.name.startswith(MOVED_ASIDE_PREFIX):
                fs.rename(path, aside / path.name)
        if external:
            fs.makedirs(aside / "wal-dir")
            for path in external:
                fs.rename(path, aside / "wal-dir" / path.name)
            fs.fsync_directory(wal_dir)
        fs.fsync_directory(data_dir)
        return lock, str(aside)
    except OSError as exc:
        lock.release()
        raise translate_os_error(exc, "prepare restore target", data_dir) from exc
    except BaseException:
        lock.release()
        raise


def remove_partial_restore(data_dir: Path, wal_dir: Path) -> None:
    """After a failed restore: remove what it wrote (the target was empty, or emptied)."""
    for path in _entries(data_dir, {LOCK_FILE}):
        if path.name.startswith(MOVED_ASIDE_PREFIX):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if _outside(wal_dir, data_dir):
        for path in _entries(wal_dir, set()):
            if path.is_file():
                path.unlink(missing_ok=True)


def check_free_space(fs: FileSystem, directory: Path, needed_bytes: int) -> None:
    required = int(needed_bytes * (1 + MARGIN_FRACTION)) + MARGIN_BYTES
    free = fs.disk_free_bytes(directory)
    if free < required:
        raise DiskFullError(
            f"not enough free space in {directory}: the restore needs about "
            f"{required / 2**20:.0f} MiB (backup + margin), {free / 2**20:.0f} MiB are free",
            details={"required_bytes": required, "free_bytes": free},
        )
