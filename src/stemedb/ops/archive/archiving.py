"""WAL archival: ship sealed segments to ``<base>/wal/`` (S3 or a directory), write-once,
with SHA-256 checksums, idempotently; report gaps; delete archived local segments once
the store's durable checkpoint has passed them. Normative text:
``docs/design/wal-archive.md``.

``archive_wal`` reads the WAL directory without opening the ``Wal`` (no recovery, no
data-directory lock), so ``stemedb wal archive`` runs while the server does. Only
*sealed* segments are shipped: every segment file but the newest, whose content is final
(the WAL fsyncs a segment before it creates the next one). Each one is verified frame by
frame before it leaves (a corrupt segment is never archived), uploaded, checked after
upload, and only then gets its sidecar. Local deletion is a separate step,
``delete_archived_segments``, that needs the WAL object (the server's, or one opened by
the CLI under the data-directory lock).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol

import apsw
import msgspec

from stemedb.errors import StemeError, StorageError, WalCorruptionError
from stemedb.ops.archive.layout import (
    ArchiveCheck,
    ArchivedSegment,
    ArchiveIndex,
    check_archive,
    decode_sidecar,
    encode_sidecar,
    read_index,
    segment_name,
    sidecar_name,
)
from stemedb.ops.archive.target import CONFLICT_CODE, ArchiveTarget
from stemedb.sys import Clock, FileSystem, RealFileSystem, SystemClock
from stemedb.wal.log import SegmentInfo
from stemedb.wal.recovery import segment_paths
from stemedb.wal.segment import corruption_error, scan_segment

log = logging.getLogger("stemedb.ops.archive")

STORE_FILE: Final = "store.sqlite"
DAMAGED_CODE: Final = "wal_archive_damaged"
CHECKPOINT_BUSY_TIMEOUT_MS: Final = 2000


class LocalSegment(NamedTuple):
    """A segment file of the local WAL directory."""

    first_lsn: int
    last_lsn: int  # first_lsn - 1: no records; for the active segment: unknown (-1)
    path: Path
    sealed: bool


class ArchiveRun(msgspec.Struct, frozen=True):
    """What one ``archive_wal`` pass did."""

    archive: str
    shipped: tuple[str, ...]  # segment names uploaded now
    already_archived: int  # sealed local segments the archive already held
    deleted: tuple[str, ...]  # local segment files removed after archival
    lag_segments: int  # sealed, non-empty local segments still not archived
    archived_through_lsn: int  # every LSN 1..this is in the archive, without a gap
    check: ArchiveCheck

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = msgspec.to_builtins(self)
        result["check"] = self.check.to_dict()
        result["ok"] = self.check.ok
        return result


def local_segments(wal_dir: Path, fs: FileSystem | None = None) -> list[LocalSegment]:
    """The WAL directory's segments in LSN order; every one but the newest is sealed,
    and a sealed segment ends where the next one begins."""
    fs = fs or RealFileSystem()
    if not fs.exists(wal_dir):
        return []
    found = segment_paths(fs, wal_dir)
    out: list[LocalSegment] = []
    for index, (first_lsn, path) in enumerate(found):
        if index + 1 < len(found):
            out.append(LocalSegment(first_lsn, found[index + 1][0] - 1, path, True))
        else:
            out.append(LocalSegment(first_lsn, -1, path, False))
    return out


def read_sealed_segment(fs: FileSystem, segment: LocalSegment) -> bytes:
    """The bytes of a sealed segment, after checking every frame: header, CRCs, LSNs
    ``first_lsn..last_lsn`` and nothing after the last frame."""
    scan = scan_segment(fs, segment.path, segment.first_lsn)
    if scan.damage is not None:
        raise corruption_error(scan.damage, "sealed segment checked before archival")
    records = segment.last_lsn - segment.first_lsn + 1
    if scan.record_count != records:
        raise WalCorruptionError(
            f"sealed segment {segment.path} holds {scan.record_count} records but the next "
            f"segment starts at LSN {segment.last_lsn + 1} (expected {records}); "
            "it is not archived",
            details={
                "segment": str(segment.path),
                "offset": scan.valid_end,
                "reason": "record count does not match the next segment",
            },
        )
    data = fs.read_file(segment.path)
    if len(data) != scan.valid_end:
        raise StorageError(
            f"sealed segment {segment.path} changed while it was read", code="wal_segment_changed"
        )
    return data


def _ship(
    target: ArchiveTarget,
    segment: LocalSegment,
    data: bytes,
    clock: Clock,
) -> ArchivedSegment:
    """Upload one segment, check it, then write its sidecar (both write-once)."""
    sha256 = hashlib.sha256(data).hexdigest()
    name = segment_name(segment.first_lsn)
    target.put_once(name, data)
    stored = target.stored_sha256(name)
    if stored != sha256:
        raise StorageError(
            f"{target.url}/{name}: the stored object's SHA-256 {stored} is not the segment's "
            f"{sha256} after upload",
            code="wal_archive_verify_failed",
            retryable=True,
        )
    sidecar = ArchivedSegment(
        segment.first_lsn, segment.last_lsn, len(data), sha256, round(clock.time(), 3)
    )
    try:
        target.put_once(sidecar_name(segment.first_lsn), encode_sidecar(sidecar))
    except StorageError as exc:
        if exc.code != CONFLICT_CODE:
            raise
        # Another archiver (the server's, or a second CLI run) wrote it first: fine if it
        # describes the same segment; archived_at differs.
        existing = decode_sidecar(target.read(sidecar_name(segment.first_lsn)))
        if not existing.same_segment(sidecar):
            raise
        return existing
    return sidecar


def _matches(sidecar: ArchivedSegment, segment: LocalSegment, data: bytes) -> bool:
    return sidecar.same_segment(
        ArchivedSegment(
            segment.first_lsn,
            segment.last_lsn,
            len(data),
            hashlib.sha256(data).hexdigest(),
            0.0,
        )
    )


def archive_wal(
    wal_dir: Path,
    target: ArchiveTarget,
    *,
    fs: FileSystem | None = None,
    clock: Clock | None = None,
    known: dict[int, ArchivedSegment] | None = None,
    verified: set[int] | None = None,
    delete: Callable[[list[LocalSegment], ArchiveIndex], list[Path]] | None = None,
) -> ArchiveRun:
    """Ship every sealed, non-empty local segment the archive lacks; return the run.

    ``known`` caches sidecars across runs and ``verified`` the segments already compared
    with their sidecar (the server's archiver keeps both). A sidecar that describes other
    bytes than the local segment raises ``StorageError(code="wal_archive_conflict")``;
    nothing is ever overwritten. ``delete`` (see ``delete_archived_segments``) runs after
    the uploads with the local segments and the archive index.
    """
    fs = fs or RealFileSystem()
    clock = clock or SystemClock()
    known = {} if known is None else known
    verified = set() if verified is None else verified
    index = read_index(target, known)
    segments = local_segments(wal_dir, fs)
    shipped: list[str] = []
    already = 0
    for segment in segments:
        if not segment.sealed or segment.last_lsn < segment.first_lsn:
            continue
        sidecar = index.sidecars.get(segment.first_lsn)
        name = segment_name(segment.first_lsn)
        stored_size = index.sizes.get(name)
        if (
            sidecar is not None
            and segment.first_lsn in verified
            and stored_size == sidecar.size_bytes
        ):
            already += 1
            continue
        try:
            data = read_sealed_segment(fs, segment)
        except StorageError as exc:
            if exc.code == "file_not_found":  # removed meanwhile by the server's archiver
                continue
            raise
        if sidecar is not None:
            if not _matches(sidecar, segment, data):
                raise StorageError(
                    f"{target.url}/{sidecar_name(segment.first_lsn)} describes other bytes "
                    f"(LSNs {sidecar.first_lsn}..{sidecar.last_lsn}, sha256 {sidecar.sha256})"
                    f" than the local segment {segment.path}; archived WAL is write-once: is "
                    "another database archiving to the same base?",
                    code=CONFLICT_CODE,
                    retryable=False,
                )
            if stored_size == sidecar.size_bytes:
                verified.add(segment.first_lsn)
                already += 1
                continue
            if stored_size is not None:
                raise StorageError(
                    f"the archived segment {target.url}/{name} is damaged ({stored_size} bytes"
                    f" stored, its sidecar says {sidecar.size_bytes}); archived keys are never"
                    " replaced: delete the damaged object (and its sidecar) so the next run"
                    " uploads the local copy again",
                    code=DAMAGED_CODE,
                    retryable=False,
                    details={"object": f"{target.url}/{name}"},
                )
            # The sidecar is there but the segment is missing: upload it again.
        archived = _ship(target, segment, data, clock)
        known[segment.first_lsn] = archived
        index.sidecars[segment.first_lsn] = archived
        index.sizes[name] = archived.size_bytes
        index.sizes[sidecar_name(segment.first_lsn)] = len(encode_sidecar(archived))
        verified.add(segment.first_lsn)
        shipped.append(name)
        log.info(
            "archived WAL segment %s (LSN %d..%d, %d bytes) to %s",
            name,
            archived.first_lsn,
            archived.last_lsn,
            archived.size_bytes,
            target.url,
        )
    deleted = [p.name for p in delete(segments, index)] if delete is not None else []
    remaining = [s for s in segments if s.path.name not in set(deleted)]
    local_first = remaining[0].first_lsn if remaining else None
    check = check_archive(target, index=index, local_first_lsn=local_first)
    lag = sum(
        1
        for s in remaining
        if s.sealed and s.last_lsn >= s.first_lsn and s.first_lsn not in index.sidecars
    )
    return ArchiveRun(
        archive=target.url,
        shipped=tuple(shipped),
        already_archived=already,
        deleted=tuple(deleted),
        lag_segments=lag,
        archived_through_lsn=check.contiguous_through_lsn,
        check=check,
    )


def durable_applied_lsn(data_dir: Path) -> int | None:
    """The store's ``applied_lsn``, made durable: read it, then checkpoint SQLite's WAL
    into the database file (which syncs both). None if the checkpoint could not finish
    (readers held it back): then nothing may be deleted now. 0 without a store."""
    path = data_dir / STORE_FILE
    if not path.exists():
        return 0
    try:
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE)
    except apsw.Error as exc:
        raise StorageError(f"cannot open {path} for the checkpoint: {exc}") from exc
    try:
        conn.setbusytimeout(CHECKPOINT_BUSY_TIMEOUT_MS)
        rows = list(conn.execute("SELECT value FROM meta WHERE key = 'applied_lsn'"))
        applied = int(rows[0][0]) if rows else 0
        log_frames, checkpointed = conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
    except apsw.Error as exc:
        raise StorageError(f"checkpoint of {path} failed: {exc}", code="store_error") from exc
    finally:
        conn.close()
    if log_frames > 0 and checkpointed < log_frames:
        return None
    return applied


def deletion_bound(
    segments: list[LocalSegment], index: ArchiveIndex, checkpoint_lsn: int
) -> int | None:
    """The LSN below which every local segment is sealed, archived (sidecar present and
    its segment stored whole) and fully applied at ``checkpoint_lsn``; None: none is."""
    for position, segment in enumerate(segments):
        sidecar = index.sidecars.get(segment.first_lsn)
        empty = segment.sealed and segment.last_lsn < segment.first_lsn
        archived = (
            sidecar is not None
            and sidecar.last_lsn == segment.last_lsn
            and index.sizes.get(segment_name(segment.first_lsn)) == sidecar.size_bytes
        )
        if segment.sealed and (empty or archived) and segment.last_lsn <= checkpoint_lsn:
            continue
        return segment.first_lsn if position > 0 else None
    return None


class SegmentOwner(Protocol):
    """What archiving needs of the WAL: ``Wal``, or ``RemoteWal`` when the writer runs
    in its own process (``runtime.writer_client``)."""

    @property
    def directory(self) -> Path: ...

    def segments(self) -> list[SegmentInfo]: ...

    def remove_segments_before(self, lsn: int) -> list[Path]: ...


def delete_archived_segments(
    wal: SegmentOwner, data_dir: Path
) -> Callable[[list[LocalSegment], ArchiveIndex], list[Path]]:
    """A ``delete`` step for ``archive_wal``: remove the local segments that are archived
    and below the store's durable checkpoint, through ``Wal.remove_segments_before``."""

    def delete(segments: list[LocalSegment], index: ArchiveIndex) -> list[Path]:
        checkpoint = durable_applied_lsn(data_dir)
        if checkpoint is None:
            log.info("SQLite checkpoint did not finish; local WAL segments kept this time")
            return []
        bound = deletion_bound(segments, index, checkpoint)
        if bound is None:
            return []
        removed = wal.remove_segments_before(bound)
        for path in removed:
            log.info("removed archived WAL segment %s (below LSN %d)", path.name, bound)
        return removed

    return delete


def archive_error(exc: StemeError) -> dict[str, Any]:
    """The JSON shape of a failed run, for the CLI and the server's status."""
    return {"ok": False, "error": {"type": exc.type_name, "code": exc.code, "message": exc.message}}


__all__ = [
    "ArchiveRun",
    "LocalSegment",
    "archive_error",
    "archive_wal",
    "delete_archived_segments",
    "deletion_bound",
    "durable_applied_lsn",
    "local_segments",
    "read_sealed_segment",
]
