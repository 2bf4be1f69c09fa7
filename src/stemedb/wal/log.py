"""The ``Wal`` object: one writer appends batches; any thread may read durable records."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from stemedb.errors import DiskFullError, ReadOnlyError, StorageError
from stemedb.sys import Clock, FileSystem, RealFileSystem, SystemClock, WritableFile
from stemedb.wal.format import SEGMENT_HEADER_SIZE_BYTES, encode_batch, encode_segment_header
from stemedb.wal.format import segment_name as name_of_segment
from stemedb.wal.observer import NullWalObserver, WalObserver
from stemedb.wal.recovery import RecoveryReport, RepairReport, VerifyReport, recover
from stemedb.wal.recovery import repair as repair_directory
from stemedb.wal.recovery import verify as verify_directory
from stemedb.wal.segment import WalRecord, read_records

logger = logging.getLogger("stemedb.wal")

SEGMENT_SIZE_BYTES = 64 * 1024 * 1024


class SegmentInfo(NamedTuple):
    first_lsn: int
    last_lsn: int  # first_lsn - 1 for a segment without records
    path: Path
    size_bytes: int
    sealed: bool


@dataclass
class _Segment:
    first_lsn: int
    path: Path
    record_count: int
    size_bytes: int  # durable bytes: readers never read past this


class Wal:
    """A write-ahead log in one directory. Use ``Wal.open``.

    ``append``, ``remove_segments_before`` and ``close`` must be called from one writer
    thread; ``iter_from``, ``segments``, ``last_lsn`` and ``disk_usage_bytes`` are safe
    from any thread.
    """

    def __init__(
        self,
        *,
        directory: Path,
        fs: FileSystem,
        clock: Clock,
        segment_size_bytes: int,
        fsync: bool,
        observer: WalObserver,
        segments: list[_Segment],
        recovery: RecoveryReport,
    ) -> None:
        self._directory = directory
        self._fs = fs
        self._clock = clock
        self._segment_size_bytes = segment_size_bytes
        self._fsync = fsync
        self._observer = observer
        self._segments = segments
        self._recovery = recovery
        self._lock = threading.Lock()
        last = segments[-1]
        self._last_lsn = last.first_lsn + last.record_count - 1
        self._file: WritableFile | None = fs.open_append(last.path)
        self._read_only_reason: str | None = None

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        fs: FileSystem | None = None,
        clock: Clock | None = None,
        segment_size_bytes: int = SEGMENT_SIZE_BYTES,
        fsync: bool = True,
        observer: WalObserver | None = None,
    ) -> Wal:
        """Open (creating if needed) the WAL in ``directory`` and recover it.

        Raises ``WalCorruptionError`` naming segment and offset if a record is bad and
        is not a torn tail of the last segment.
        """
        if segment_size_bytes <= SEGMENT_HEADER_SIZE_BYTES:
            raise ValueError("segment_size_bytes must exceed the segment header size")
        fs = fs or RealFileSystem()
        clock = clock or SystemClock()
        directory = Path(directory)
        if not fs.exists(directory):
            fs.makedirs(directory)
            fs.fsync_directory(directory.parent)
        report, scans = recover(fs, directory, clock)
        segments = [_Segment(s.first_lsn, s.path, s.record_count, s.valid_end) for s in scans]
        if not segments:
            path = directory / name_of_segment(1)
            handle = fs.create(path)
            try:
                handle.write(encode_segment_header(1))
                handle.fsync()
            finally:
                handle.close()
            fs.fsync_directory(directory)
            segments.append(_Segment(1, path, 0, SEGMENT_HEADER_SIZE_BYTES))
        return cls(
            directory=directory,
            fs=fs,
            clock=clock,
            segment_size_bytes=segment_size_bytes,
            fsync=fsync,
            observer=observer or NullWalObserver(),
            segments=segments,
            recovery=report,
        )

    repair = staticmethod(repair_directory)
    verify = staticmethod(verify_directory)

    # -- state -------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def recovery(self) -> RecoveryReport:
        return self._recovery

    @property
    def last_lsn(self) -> int:
        """The LSN of the last durable record (0 if there is none)."""
        return self._last_lsn

    @property
    def read_only(self) -> bool:
        return self._read_only_reason is not None

    @property
    def read_only_reason(self) -> str | None:
        return self._read_only_reason

    def segments(self) -> list[SegmentInfo]:
        with self._lock:
            last_index = len(self._segments) - 1
            return [
                SegmentInfo(
                    s.first_lsn,
                    s.first_lsn + s.record_count - 1,
                    s.path,
                    s.size_bytes,
                    index != last_index,
                )
                for index, s in enumerate(self._segments)
            ]

    def disk_usage_bytes(self) -> int:
        with self._lock:
            return sum(s.size_bytes for s in self._segments)

    # -- writing -----------------------------------------------------------------

    def append(self, records: Sequence[tuple[int, bytes]]) -> int:
        """Write ``records`` as one durable batch; return the first LSN assigned.

        One ``write`` and one ``fdatasync``. A failed fsync makes the WAL read-only and
        raises ``StorageError(code="fsync_failed")``; the batch is never acknowledged.
        A full disk raises ``DiskFullError`` and leaves no partial batch behind.
        """
        handle = self._writable_file()
        if not records:
            raise ValueError("append needs at least one record")
        first_lsn = self._last_lsn + 1
        buffer = encode_batch(first_lsn, records)
        active = self._segments[-1]
        if active.record_count and active.size_bytes + len(buffer) > self._segment_size_bytes:
            handle = self._rotate(handle, first_lsn)
            active = self._segments[-1]
        try:
            handle.write(buffer)
        except DiskFullError:
            self._truncate_back(handle, active.size_bytes, "a full disk")
            raise
        except StorageError as exc:
            self._truncate_back(handle, active.size_bytes, "a failed write")
            self._enter_read_only(f"write to {handle.path} failed: {exc.message}")
            raise
        if self._fsync:
            self._sync(handle.fdatasync, handle.path)
        with self._lock:
            active.size_bytes += len(buffer)
            active.record_count += len(records)
            self._last_lsn += len(records)
        self._observer.on_append(len(records), len(buffer))
        return first_lsn

    def remove_segments_before(self, lsn: int) -> list[Path]:
        """Delete the oldest sealed segments whose records all have LSN < ``lsn``."""
        removed: list[Path] = []
        while len(self._segments) > 1:
            oldest = self._segments[0]
            if oldest.first_lsn + oldest.record_count > lsn:
                break
            with self._lock:
                self._segments.pop(0)
            self._fs.remove(oldest.path)
            removed.append(oldest.path)
        if removed:
            self._fs.fsync_directory(self._directory)
        return removed

    def close(self) -> None:
        if self._file is not None:
            handle, self._file = self._file, None
            handle.close()

    def _writable_file(self) -> WritableFile:
        if self._read_only_reason is not None:
            raise ReadOnlyError(
                f"the WAL in {self._directory} is read-only: {self._read_only_reason}; "
                "restart the node",
                details={"reason": self._read_only_reason},
            )
        if self._file is None:
            raise StorageError(
                f"the WAL in {self._directory} is closed", code="wal_closed", retryable=False
            )
        return self._file

    def _enter_read_only(self, reason: str) -> None:
        if self._read_only_reason is None:
            self._read_only_reason = reason
            logger.error("WAL %s is now read-only: %s", self._directory, reason)

    def _sync(self, sync: Callable[[], None], path: Path) -> None:
        started = self._clock.monotonic()
        try:
            sync()
        except StorageError as exc:
            self._observer.on_fsync_error()
            self._enter_read_only(f"fsync of {path} failed: {exc.message}")
            raise StorageError(
                f"fsync of {path} failed; the WAL is read-only and the batch was not "
                "acknowledged; restart the node",
                code="fsync_failed",
                retryable=False,
                details={"path": str(path)},
            ) from exc
        self._observer.on_fsync(self._clock.monotonic() - started)

    def _truncate_back(self, handle: WritableFile, size: int, cause: str) -> None:
        try:
            handle.truncate(size)
        except StorageError as exc:
            self._enter_read_only(f"could not cut {handle.path} back after {cause}")
            raise StorageError(
                f"could not truncate {handle.path} to {size} bytes after {cause}; "
                "the WAL is read-only; restart the node",
                code="truncate_failed",
                retryable=False,
                details={"path": str(handle.path), "size": size},
            ) from exc

    def _rotate(self, old: WritableFile, first_lsn: int) -> WritableFile:
        if self._fsync:
            self._sync(old.fsync, old.path)
        path = self._directory / name_of_segment(first_lsn)
        new = self._fs.create(path)
        try:
            new.write(encode_segment_header(first_lsn))
        except StorageError:
            new.close()
            try:
                self._fs.remove(path)
            except StorageError as exc:
                self._enter_read_only(f"could not remove half-created segment {path}")
                raise StorageError(
                    f"could not remove half-created segment {path}; the WAL is read-only",
                    code="rotation_failed",
                    retryable=False,
                ) from exc
            raise
        if self._fsync:
            self._sync(new.fsync, path)
            self._sync(lambda: self._fs.fsync_directory(self._directory), self._directory)
        with self._lock:
            self._segments.append(_Segment(first_lsn, path, 0, SEGMENT_HEADER_SIZE_BYTES))
        self._file = new
        try:
            old.close()
        except StorageError as exc:
            logger.warning("closing sealed segment %s failed: %s", old.path, exc.message)
        self._observer.on_rotation()
        return new

    # -- reading -----------------------------------------------------------------

    def iter_from(self, lsn: int) -> Iterator[WalRecord]:
        """Durable records with LSN >= ``lsn`` in order, as of this call.

        Raises ``StorageError(code="wal_lsn_unavailable")`` if records before ``lsn``
        were already removed from this WAL (``remove_segments_before``).
        """
        if lsn < 1:
            raise ValueError("LSNs start at 1")
        with self._lock:
            snapshot = [(s.path, s.first_lsn, s.record_count, s.size_bytes) for s in self._segments]
        oldest = snapshot[0][1]
        if lsn < oldest:
            raise StorageError(
                f"WAL records before LSN {oldest} were removed; cannot read from LSN {lsn}",
                code="wal_lsn_unavailable",
                retryable=False,
                details={"requested_lsn": lsn, "oldest_lsn": oldest},
            )
        return self._read(snapshot, lsn)

    def _read(self, snapshot: list[tuple[Path, int, int, int]], lsn: int) -> Iterator[WalRecord]:
        for path, first_lsn, count, size in snapshot:
            if count == 0 or first_lsn + count <= lsn:
                continue
            yield from read_records(self._fs, path, first_lsn, size, lsn)


__all__ = ["RepairReport", "SegmentInfo", "VerifyReport", "Wal", "WalRecord"]
