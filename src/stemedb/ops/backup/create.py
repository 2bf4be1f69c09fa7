"""Online backups: a consistent copy of a data directory while the server keeps writing.

Without the data directory's LOCK (the running server holds it):

1. Each ``*.sqlite`` file is copied with SQLite's online backup API from a read-only
   connection that holds one read transaction for the whole copy, so every file is
   one consistent snapshot (``journal_mode=WAL`` lets the server write meanwhile).
2. The WAL segments are copied afterwards: sealed ones whole (they must verify), the
   active one up to its last complete, CRC-valid record. The WAL is written before the
   store, so the copy reaches at least the snapshot's ``applied_lsn``.
3. The state hash at the backup LSN (the last copied record) is the store snapshot's
   changes up to ``applied_lsn`` followed by the copied WAL records after it;
   ``metadata.json`` records it with every file's size and SHA-256 and is written last.

The layout is normative in docs/design/backup-format.md.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import apsw

from stemedb import __version__
from stemedb.errors import StemeError, StorageError
from stemedb.model.kinds import RecordKind
from stemedb.ops.backup.location import BackupLocation, LocalBackups, list_backups
from stemedb.ops.backup.manifest import (
    DATA_DIR,
    FORMAT_VERSION,
    MANIFEST_FILE,
    STATE_HASH_ALGORITHM,
    STORE_FILE,
    WAL_DIR,
    FileEntry,
    Manifest,
    StateHasher,
    encode_manifest,
    file_digest,
    unique_backup_name,
)
from stemedb.ops.progress import NullProgress, Progress
from stemedb.ops.segments import SegmentBytes, read_segment
from stemedb.sys import FileSystem, RealFileSystem, translate_os_error
from stemedb.sys.durable import sync_file, write_new_file
from stemedb.wal.format import parse_segment_name

SQLITE_STEP_PAGES: Final = 4096  # pages per backup step (16 MiB at 4 KiB pages)
SQLITE_BUSY_TIMEOUT_MS: Final = 10_000
COVERAGE_ATTEMPTS: Final = 3  # retries if the server removed WAL segments mid-backup
SECONDS_PER_DAY: Final = 86_400


@dataclass
class BackupResult:
    url: str
    manifest: Manifest
    pruned: list[str] = field(default_factory=list)


@dataclass
class _StoreSnapshot:
    applied_lsn: int
    assertion_count: int
    hasher: StateHasher
    committed_at: float | None  # of the record at applied_lsn
    kind_and_id_at_applied: tuple[int, str] | None


# -- SQLite --------------------------------------------------------------------------------


def snapshot_sqlite(fs: FileSystem, source: Path, target: Path, progress: Progress) -> None:
    """Copy one SQLite database with the online backup API, as one consistent snapshot."""
    # the copy keeps the source's permission bits (keys.sqlite and custodial.sqlite
    # are 0600: custodial.sqlite holds private keys)
    fs.create(target, mode=stat.S_IMODE(source.stat().st_mode)).close()
    try:
        src = apsw.Connection(str(source), flags=apsw.SQLITE_OPEN_READONLY)
        src.setbusytimeout(SQLITE_BUSY_TIMEOUT_MS)
        dest = apsw.Connection(str(target))
        try:
            src.execute("BEGIN")
            src.execute("SELECT count(*) FROM sqlite_schema").fetchall()  # start the read
            with dest.backup("main", src, "main") as copy:
                started = False
                while not copy.done:
                    copy.step(SQLITE_STEP_PAGES)
                    if not started:
                        progress.start(f"copy {source.name}", copy.page_count)
                        started = True
                    progress.advance(min(SQLITE_STEP_PAGES, copy.page_count))
            src.execute("COMMIT")
            dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dest.close()
            src.close()
    except apsw.Error as exc:
        raise StorageError(
            f"backup of {source} failed: {exc}", code="backup_failed", retryable=True
        ) from exc
    sync_file(fs, target)


def read_store_snapshot(path: Path) -> _StoreSnapshot:
    """applied_lsn, assertion count and the state hash of a copied ``store.sqlite``."""
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'applied_lsn'").fetchone()
        applied = int(row[0]) if row else 0
        count_row = conn.execute("SELECT count(*) FROM assertions").fetchone()
        count = int(count_row[0]) if count_row else 0
        hasher = StateHasher()
        last: tuple[int, str] | None = None
        committed_at: float | None = None
        for lsn, kind, ref, at in conn.execute(
            "SELECT lsn, kind, ref, committed_at FROM changes WHERE lsn <= ? ORDER BY lsn",
            (applied,),
        ):
            hasher.update(lsn, kind, ref.hex())
            last = (int(kind), ref.hex())
            committed_at = float(at)
    except (apsw.Error, ValueError) as exc:
        raise StorageError(
            f"the store copy {path} is not a StemeDB store: {exc}", code="backup_failed"
        ) from exc
    finally:
        conn.close()
    if hasher.last_lsn != applied:
        raise StorageError(
            f"the store copy {path} has changes up to LSN {hasher.last_lsn}"
            f" but applied_lsn {applied}",
            code="backup_failed",
            retryable=False,
        )
    return _StoreSnapshot(applied, count, hasher, committed_at, last)


# -- WAL -----------------------------------------------------------------------------------


def _segment_files(wal_dir: Path) -> list[tuple[int, Path]]:
    try:
        names = os.listdir(wal_dir)
    except OSError as exc:
        raise translate_os_error(exc, "list WAL directory", wal_dir) from exc
    found = [(parse_segment_name(n), wal_dir / n) for n in names]
    return sorted((lsn, path) for lsn, path in found if lsn is not None)


def copy_wal(fs: FileSystem, wal_dir: Path, target: Path, need_lsn: int) -> list[SegmentBytes]:
    """Copy the WAL's valid records into ``target``; the segments copied (in order).

    Raises ``StorageError(code="wal_moved_on")`` if the WAL no longer holds
    ``need_lsn + 1`` (segments removed meanwhile): the caller starts again."""
    files = _segment_files(wal_dir)
    copied: list[SegmentBytes] = []
    for index, (first_lsn, path) in enumerate(files):
        try:
            segment = read_segment(path, first_lsn)
        except StemeError as exc:
            if not copied and exc.code == "file_not_found":
                continue  # removed after archival while we listed: not needed
            raise
        is_active = index == len(files) - 1
        if segment.damage is not None and not is_active:
            raise StorageError(
                f"WAL segment {path} is damaged ({segment.damage}); run `stemedb wal verify`",
                code="wal_corrupt",
                retryable=False,
            )
        if copied and first_lsn != copied[-1].last_lsn + 1:
            raise StorageError(
                f"WAL gap: {path.name} starts at LSN {first_lsn}, expected "
                f"{copied[-1].last_lsn + 1}",
                code="wal_corrupt",
                retryable=False,
            )
        write_new_file(fs, target / path.name, segment.data[: segment.valid_end])
        copied.append(segment)
    if not copied:
        raise StorageError(f"no WAL segments in {wal_dir}", code="wal_moved_on")
    if copied[0].first_lsn > need_lsn + 1 or copied[-1].last_lsn < need_lsn:
        raise StorageError(
            f"the WAL copy holds LSNs {copied[0].first_lsn}..{copied[-1].last_lsn}, "
            f"not LSN {need_lsn} (segments removed meanwhile)",
            code="wal_moved_on",
        )
    return copied


# -- create --------------------------------------------------------------------------------


def _stage(
    fs: FileSystem, data_dir: Path, wal_dir: Path, staging: Path, name: str, progress: Progress
) -> Manifest:
    started = time.monotonic()
    created = time.time()
    sqlite_names = sorted(p.name for p in data_dir.glob("*.sqlite") if p.is_file())
    if STORE_FILE not in sqlite_names:
        raise StorageError(
            f"{data_dir} holds no {STORE_FILE}: not a StemeDB data directory",
            code="backup_failed",
            retryable=False,
        )
    fs.makedirs(staging / DATA_DIR)
    for sqlite_name in sqlite_names:
        snapshot_sqlite(fs, data_dir / sqlite_name, staging / DATA_DIR / sqlite_name, progress)
    snapshot = read_store_snapshot(staging / DATA_DIR / STORE_FILE)
    fs.makedirs(staging / WAL_DIR)
    progress.note(f"store snapshot at LSN {snapshot.applied_lsn}; copying the WAL")
    segments = copy_wal(fs, wal_dir, staging / WAL_DIR, snapshot.applied_lsn)

    applied = snapshot.applied_lsn
    hasher = snapshot.hasher
    assertions = snapshot.assertion_count
    last_committed_at = snapshot.committed_at
    for segment in segments:
        if segment.first_lsn <= applied <= segment.last_lsn and applied >= 1:
            entry = segment.entry(applied - segment.first_lsn)
            if (int(entry.kind), entry.record_id) != snapshot.kind_and_id_at_applied:
                raise StorageError(
                    f"the WAL in {wal_dir} disagrees with the store at LSN {applied}: "
                    "it is not the WAL this store was built from",
                    code="backup_failed",
                    retryable=False,
                )
        for entry in segment.entries_from(applied + 1):
            hasher.update(entry.lsn, int(entry.kind), entry.record_id)
            assertions += entry.kind == RecordKind.ASSERTION
            last_committed_at = entry.committed_at

    files: list[FileEntry] = []
    for sqlite_name in sqlite_names:
        size, digest = file_digest(staging / DATA_DIR / sqlite_name)
        files.append(
            FileEntry(
                path=f"{DATA_DIR}/{sqlite_name}", kind="sqlite", size_bytes=size, sha256=digest
            )
        )
    for segment in segments:
        relative = f"{WAL_DIR}/{segment.first_lsn:016x}.wal"
        size, digest = file_digest(staging / relative)
        files.append(
            FileEntry(
                path=relative,
                kind="wal",
                size_bytes=size,
                sha256=digest,
                first_lsn=segment.first_lsn,
                last_lsn=segment.last_lsn,
            )
        )
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        name=name,
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
        created_at_unix=created,
        stemedb_version=__version__,
        hostname=socket.gethostname(),
        source_data_dir=str(data_dir.resolve()),
        source_wal_dir=str(wal_dir.resolve()),
        assertion_count=assertions,
        record_count=hasher.last_lsn,
        first_lsn=segments[0].first_lsn,
        last_lsn=hasher.last_lsn,
        store_applied_lsn=applied,
        last_committed_at=last_committed_at,
        state_hash=hasher.hexdigest(),
        state_hash_algorithm=STATE_HASH_ALGORITHM,
        total_bytes=sum(f.size_bytes for f in files),
        duration_seconds=round(time.monotonic() - started, 3),
        files=tuple(files),
    )
    write_new_file(fs, staging / MANIFEST_FILE, encode_manifest(manifest))
    for directory in (staging / DATA_DIR, staging / WAL_DIR, staging):
        fs.fsync_directory(directory)
    return manifest


def create_backup(
    data_dir: Path,
    wal_dir: Path,
    location: BackupLocation,
    *,
    keep: int | None = None,
    retention_days: float = 0,
    progress: Progress | None = None,
    fs: FileSystem | None = None,
) -> BackupResult:
    """Back up a (possibly running) node's data directory into ``location``, then prune
    old backups by count (``keep``) and age (``retention_days``; 0 = never). Every
    file is written and fsynced through ``fs``; a failure leaves no backup behind
    (the staging directory is removed), and the backups before it untouched."""
    progress = progress or NullProgress()
    fs = fs or RealFileSystem()
    name = unique_backup_name(time.strftime("%Y%m%d-%H%M%S", time.gmtime()), set(location.names()))
    if isinstance(location, LocalBackups):
        fs.makedirs(location.root)
        scratch_parent = location.root
    else:
        scratch_parent = Path(tempfile.gettempdir())
    for attempt in range(1, COVERAGE_ATTEMPTS + 1):
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=scratch_parent))
        try:
            manifest = _stage(fs, data_dir, wal_dir, staging, name, progress)
            url = location.publish(staging, name, progress)
            break
        except StorageError as exc:
            if exc.code != "wal_moved_on" or attempt == COVERAGE_ATTEMPTS:
                raise
            progress.note(f"{exc.message}; starting again")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    pruned = prune_backups(location, keep=keep, retention_days=retention_days, protect=name)
    return BackupResult(url, manifest, pruned)


# -- retention -----------------------------------------------------------------------------


def expired_backups(
    manifests: list[Manifest],
    *,
    keep: int | None,
    retention_days: float,
    now: float,
    protect: str | None = None,
) -> list[str]:
    """Names of complete backups that retention removes: beyond the newest ``keep``, or
    older than ``retention_days`` (0 = no age limit). The newest backup always stays."""
    newest_first = sorted(manifests, key=lambda m: m.created_at_unix, reverse=True)
    doomed: list[str] = []
    for index, manifest in enumerate(newest_first):
        if index == 0 or manifest.name == protect:
            continue
        too_many = keep is not None and index >= keep
        too_old = retention_days > 0 and now - manifest.created_at_unix > (
            retention_days * SECONDS_PER_DAY
        )
        if too_many or too_old:
            doomed.append(manifest.name)
    return doomed


def prune_backups(
    location: BackupLocation,
    *,
    keep: int | None,
    retention_days: float,
    protect: str | None = None,
    now: float | None = None,
) -> list[str]:
    manifests = [item.manifest for item in list_backups(location) if item.manifest]
    doomed = expired_backups(
        manifests,
        keep=keep,
        retention_days=retention_days,
        now=time.time() if now is None else now,
        protect=protect,
    )
    for name in doomed:
        location.delete(name)
    return doomed
