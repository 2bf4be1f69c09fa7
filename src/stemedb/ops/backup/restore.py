"""Restore a backup into a data directory: full, WAL-only, or to a point in time.

1. The target must not be live: if a process holds ``<data_dir>/LOCK`` the restore is
   refused (always); a non-empty target is refused unless ``force``, which moves the
   existing files aside into ``<data_dir>/pre-restore-<UTC stamp>/`` (nothing deleted).
   The restore holds the LOCK itself until the engine opens the result.
2. Free disk space is checked before any byte is written: the backup's size (twice
   for an S3 backup: download, then install), the archived segments it may need, and
   a margin.
3. The SQLite files are copied with their SHA-256 checked against ``metadata.json``;
   ``store.sqlite`` is left out for a WAL-only restore, or when the target lies before
   the backup's store snapshot (the store is then rebuilt from the WAL from LSN 1).
4. The WAL is the backup's segments followed by archived ones (``ops.wal_plan``), cut
   at the target: ``to_lsn`` keeps LSNs <= N; ``to_time`` keeps the records before the
   first one committed after T (the commit time of the WAL payload).
5. The engine opens the result (replaying the WAL into the store); the restored state
   hash is compared with the backup's when the restore ends at the backup's LSN.

Steps 1 and 2 (the target directory) are ``ops.backup.restore_target``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import apsw

from stemedb.errors import StorageError, ValidationError
from stemedb.ops.archive.reader import WalArchive
from stemedb.ops.backup.location import (
    LocalBackups,
    S3Backups,
    backup_location,
    list_backups,
    split_backup_url,
)
from stemedb.ops.backup.manifest import (
    BACKUP_NAME_PATTERN,
    DATA_DIR,
    MANIFEST_FILE,
    STORE_FILE,
    Manifest,
    decode_manifest,
)
from stemedb.ops.backup.restore_target import (
    check_free_space,
    prepare_target,
    remove_partial_restore,
)
from stemedb.ops.progress import NullProgress, Progress
from stemedb.ops.wal_plan import Gap, WalPlan, archive_candidates, backup_candidates, plan_wal
from stemedb.sys import FileSystem, RealFileSystem, translate_os_error
from stemedb.sys.durable import write_new_file, write_new_file_from

COPY_CHUNK_BYTES: Final = 4 * 1024 * 1024
SCRATCH_DIR: Final = ".restore-scratch"


@dataclass
class RestoreRequest:
    source: str  # a backup (dir or s3:// URL), or a location holding backups
    data_dir: Path
    wal_dir: Path | None = None  # default <data_dir>/wal
    to_lsn: int | None = None
    to_time: float | None = None
    wal_archive: str | None = None  # a directory or s3:// base (see ops.archive_reader)
    wal_only: bool = False
    force: bool = False


@dataclass
class RestoreReport:
    ok: bool
    backup: str
    data_dir: str
    wal_dir: str
    mode: str  # "full" | "wal-only" | "point-in-time"
    target_lsn: int | None
    target_time: float | None
    restored_lsn: int
    last_committed_at: float | None
    store_from_backup: bool
    records_replayed: int
    segments_from_archive: int
    state_hash: str
    expected_state_hash: str | None  # the backup's, when the restore ends at its LSN
    bytes_restored: int
    seconds: float
    moved_aside: str | None
    gaps: list[dict[str, object]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- choosing and reading the backup ---------------------------------------------------------


def resolve_backup(source: str, to_lsn: int | None, to_time: float | None) -> tuple[str, Manifest]:
    """``source`` itself if it is a backup, else the newest complete backup under it that
    does not lie after the target."""
    trimmed = source.rstrip("/")
    if BACKUP_NAME_PATTERN.match(trimmed.rsplit("/", 1)[-1]) or (
        not trimmed.startswith("s3://") and (Path(trimmed) / MANIFEST_FILE).exists()
    ):
        return trimmed, read_manifest(trimmed)
    fitting = [
        item
        for item in list_backups(backup_location(trimmed))
        if item.manifest is not None
        and (to_lsn is None or item.manifest.store_applied_lsn <= to_lsn)
        and (to_time is None or (item.manifest.last_committed_at or 0) <= to_time)
    ]
    if not fitting:
        raise ValidationError(
            "source", "no backup", f"{source} holds no complete backup before the target"
        )
    best = max(fitting, key=lambda item: item.manifest.created_at_unix if item.manifest else 0)
    assert best.manifest is not None
    return best.url, best.manifest


def read_manifest(backup: str) -> Manifest:
    location, name = split_backup_url(backup)
    if isinstance(location, S3Backups):
        data = location.client.get_bytes(
            location.location, location.location.key(name, MANIFEST_FILE)
        )
        return decode_manifest(data)
    path = location.root / name / MANIFEST_FILE
    try:
        return decode_manifest(path.read_bytes())
    except OSError as exc:
        raise translate_os_error(exc, "read backup manifest", path) from exc


def copy_checked(
    fs: FileSystem, source: Path, target: Path, size: int, sha256: str, progress: Progress
) -> None:
    """Copy a backup file, checking its size and SHA-256; fsync the copy (through
    ``fs``: a failed write or fsync leaves no partial copy)."""
    import hashlib

    digest = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        try:
            with source.open("rb") as src:
                while chunk := src.read(COPY_CHUNK_BYTES):
                    digest.update(chunk)
                    yield chunk
                    progress.advance(len(chunk))
        except OSError as exc:
            raise translate_os_error(exc, "restore", source) from exc

    copied = write_new_file_from(fs, target, chunks())
    if copied != size or digest.hexdigest() != sha256:
        raise StorageError(
            f"backup file {source} does not match metadata.json (size {copied} vs {size}, "
            "or sha256 differs): the backup is damaged; run `stemedb backup verify`",
            code="backup_corrupt",
            retryable=False,
        )


def committed_at_of(store_path: Path, lsn: int) -> float | None:
    if lsn < 1:
        return None
    conn = apsw.Connection(str(store_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        row = conn.execute("SELECT committed_at FROM changes WHERE lsn = ?", (lsn,)).fetchone()
        return None if row is None else float(row[0])
    finally:
        conn.close()


# -- restore -------------------------------------------------------------------------------


def restore_backup(
    request: RestoreRequest, progress: Progress | None = None, *, fs: FileSystem | None = None
) -> RestoreReport:
    """Restore as described in the module doc; raises on any failure. Every file is
    written and fsynced through ``fs``; a failure removes what the restore wrote (files
    moved aside with ``force`` stay where they went)."""
    progress = progress or NullProgress()
    fs = fs or RealFileSystem()
    started = time.monotonic()
    if request.to_lsn is not None and request.to_time is not None:
        raise ValidationError("to_lsn", "exclusive", "give --to-lsn or --to-time, not both")
    data_dir = request.data_dir
    wal_dir = request.wal_dir or data_dir / "wal"
    backup_url, manifest = resolve_backup(request.source, request.to_lsn, request.to_time)
    archive = WalArchive(request.wal_archive) if request.wal_archive else None
    lock, moved_aside = prepare_target(fs, data_dir, wal_dir, force=request.force)
    released = False
    try:
        location, name = split_backup_url(backup_url)
        is_s3 = isinstance(location, S3Backups)
        archive_bytes = archive.size_bytes_from(manifest.first_lsn) if archive else 0
        check_free_space(fs, data_dir, manifest.total_bytes * (2 if is_s3 else 1) + archive_bytes)
        scratch = data_dir / SCRATCH_DIR
        if isinstance(location, S3Backups):
            scratch.mkdir(exist_ok=True)
            backup_dir = location.download(name, scratch, progress)
        else:
            assert isinstance(location, LocalBackups)
            backup_dir = location.root / name
        try:
            report = _install(fs, request, manifest, backup_dir, wal_dir, archive, progress)
        except BaseException:
            remove_partial_restore(data_dir, wal_dir)
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        lock.release()
        released = True
        return _open_and_report(
            request, manifest, backup_url, wal_dir, report, moved_aside, started, progress
        )
    finally:
        if not released:
            lock.release()


@dataclass
class _Installed:
    store_from_backup: bool
    plan_last_lsn: int
    last_committed_at: float | None
    from_archive: int
    gaps: list[Gap]
    bytes_restored: int


def _install(
    fs: FileSystem,
    request: RestoreRequest,
    manifest: Manifest,
    backup_dir: Path,
    wal_dir: Path,
    archive: WalArchive | None,
    progress: Progress,
) -> _Installed:
    data_dir = request.data_dir
    applied = manifest.store_applied_lsn
    use_store = not request.wal_only
    if request.to_lsn is not None and request.to_lsn < applied:
        use_store = False
    if request.to_time is not None and use_store and applied >= 1:
        at = committed_at_of(backup_dir / DATA_DIR / STORE_FILE, applied)
        use_store = at is None or at <= request.to_time
    candidates = backup_candidates(
        backup_dir, [(f.path, f.first_lsn or 0, f.last_lsn or 0) for f in manifest.wal_files()]
    )
    start_lsn = manifest.first_lsn if use_store else 1
    if archive is not None:
        candidates += archive_candidates(archive, start_lsn)
    progress.note(f"planning the WAL from LSN {start_lsn}")
    if not any(c.first_lsn == start_lsn for c in candidates) and manifest.last_lsn > 0:
        raise StorageError(
            f"rebuilding the store needs the WAL from LSN {start_lsn}, which neither the"
            f" backup (WAL from LSN {manifest.first_lsn}) nor the archive holds; use an"
            " older backup, or a target after the backup's store snapshot"
            f" (LSN {manifest.store_applied_lsn})",
            code="wal_unavailable",
            retryable=False,
        )
    plan = plan_wal(candidates, start_lsn=start_lsn, to_lsn=request.to_lsn, to_time=request.to_time)
    _check_plan(plan, request, manifest, use_store)

    written = 0
    fs.makedirs(data_dir)
    files = [
        f for f in manifest.sqlite_files() if use_store or f.path != f"{DATA_DIR}/{STORE_FILE}"
    ]
    progress.start("restore the SQLite files", sum(f.size_bytes for f in files))
    for entry in files:
        target = data_dir / Path(entry.path).name
        copy_checked(fs, backup_dir / entry.path, target, entry.size_bytes, entry.sha256, progress)
        written += entry.size_bytes
    fs.makedirs(wal_dir)
    progress.start("restore the WAL", sum(len(data) for _, data in plan.segments))
    for segment_name, data in plan.segments:
        write_new_file(fs, wal_dir / segment_name, data)
        progress.advance(len(data))
        written += len(data)
    fs.fsync_directory(wal_dir)
    fs.fsync_directory(data_dir)
    return _Installed(
        use_store, plan.last_lsn, plan.last_committed_at, plan.from_archive, plan.gaps, written
    )


def _check_plan(
    plan: WalPlan, request: RestoreRequest, manifest: Manifest, use_store: bool
) -> None:
    gaps = "; ".join(
        f"LSNs {g.first_lsn}..{'?' if g.last_lsn is None else g.last_lsn}: {g.reason}"
        for g in plan.gaps
    )
    if use_store and plan.last_lsn < manifest.store_applied_lsn:
        raise StorageError(
            f"the backup's WAL ends at LSN {plan.last_lsn}, before its store snapshot"
            f" (LSN {manifest.store_applied_lsn}){': ' + gaps if gaps else ''}",
            code="backup_corrupt",
            retryable=False,
        )
    if request.to_lsn is not None and plan.last_lsn < request.to_lsn:
        why = f"WAL gap: {gaps}" if gaps else f"the backup and archive end at LSN {plan.last_lsn}"
        raise StorageError(
            f"cannot restore to LSN {request.to_lsn}: {why}",
            code="wal_gap" if gaps else "wal_unavailable",
            retryable=False,
            details={"gaps": [g.to_dict() for g in plan.gaps], "available_lsn": plan.last_lsn},
        )
    if plan.gaps and not plan.target_reached:
        raise StorageError(
            f"WAL gap before the target: {gaps}; records after LSN {plan.last_lsn} are"
            f" unavailable (restore with --to-lsn {plan.last_lsn} to accept that)",
            code="wal_gap",
            retryable=False,
            details={"gaps": [g.to_dict() for g in plan.gaps], "available_lsn": plan.last_lsn},
        )


def _open_and_report(
    request: RestoreRequest,
    manifest: Manifest,
    backup_url: str,
    wal_dir: Path,
    installed: _Installed,
    moved_aside: str | None,
    started: float,
    progress: Progress,
) -> RestoreReport:
    from stemedb.engine import Engine, EngineSettings

    progress.note("opening the restored data directory (replaying the WAL)")
    with Engine.embedded(request.data_dir, EngineSettings(wal_dir=str(wal_dir))) as engine:
        replayed = engine.replayed
        restored_lsn, state_hash = engine.store.state_hash()
        wal_last = engine.wal.last_lsn
    if restored_lsn != wal_last or restored_lsn != installed.plan_last_lsn:
        raise StorageError(
            f"the restored store ends at LSN {restored_lsn}, the WAL at {wal_last}",
            code="restore_failed",
            retryable=False,
        )
    expected = manifest.state_hash if restored_lsn == manifest.last_lsn else None
    pitr = request.to_lsn is not None or request.to_time is not None
    mode = "point-in-time" if pitr else "wal-only" if request.wal_only else "full"
    return RestoreReport(
        ok=expected is None or expected == state_hash,
        backup=backup_url,
        data_dir=str(request.data_dir),
        wal_dir=str(wal_dir),
        mode=mode,
        target_lsn=request.to_lsn,
        target_time=request.to_time,
        restored_lsn=restored_lsn,
        last_committed_at=installed.last_committed_at,
        store_from_backup=installed.store_from_backup,
        records_replayed=replayed,
        segments_from_archive=installed.from_archive,
        state_hash=state_hash,
        expected_state_hash=expected,
        bytes_restored=installed.bytes_restored,
        seconds=round(time.monotonic() - started, 3),
        moved_aside=moved_aside,
        gaps=[g.to_dict() for g in installed.gaps],
    )
