"""Opening checks for a WAL directory: recover (cut a torn tail), verify (read-only) and
repair (the explicit, logged way past corruption)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from stemedb.errors import WalCorruptionError
from stemedb.sys import Clock, FileSystem, RealFileSystem
from stemedb.wal.format import (
    BROKEN_SUFFIX,
    SEGMENT_HEADER_SIZE_BYTES,
    encode_segment_header,
    parse_segment_name,
)
from stemedb.wal.segment import Damage, SegmentScan, corruption_error, scan_segment

logger = logging.getLogger("stemedb.wal")


class _Report(msgspec.Struct, frozen=True):
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready builtins (paths as strings), e.g. for ``stemedb wal verify``."""
        result: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(self, enc_hook=str))
        return result


class RecoveryReport(_Report, frozen=True):
    records_scanned: int
    last_lsn: int
    truncated_bytes: int
    broken_file: Path | None
    duration_seconds: float


class VerifyReport(_Report, frozen=True):
    """What ``verify`` found. ``ok`` means the WAL opens (a torn tail is cut on open)."""

    directory: Path
    segments: int
    records: int
    first_lsn: int
    last_lsn: int
    torn_tail: Damage | None
    corruption: Damage | None

    @property
    def ok(self) -> bool:
        return self.corruption is None

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "ok": self.ok}


class RepairReport(_Report, frozen=True):
    directory: Path
    cut: Damage | None
    records_kept: int
    last_lsn: int
    bytes_discarded: int
    broken_files: tuple[Path, ...]


class DirectoryVerdict(NamedTuple):
    scans: list[SegmentScan]
    torn_tail: Damage | None
    corruption: Damage | None
    why: str


def segment_paths(fs: FileSystem, directory: Path) -> list[tuple[int, Path]]:
    """``(first_lsn, path)`` of every segment file, in LSN order."""
    found = []
    for name in fs.listdir(directory):
        first_lsn = parse_segment_name(name)
        if first_lsn is not None:
            found.append((first_lsn, directory / name))
    return sorted(found)


def judge_directory(fs: FileSystem, directory: Path) -> DirectoryVerdict:
    """Scan every segment; the first damage is a torn tail or corruption (never both)."""
    scans: list[SegmentScan] = []
    paths = segment_paths(fs, directory)
    for index, (first_lsn, path) in enumerate(paths):
        if scans:
            previous = scans[-1]
            expected = previous.first_lsn + previous.record_count
            if first_lsn != expected:
                reason = f"LSN gap: segment starts at LSN {first_lsn}, expected {expected}"
                damage = Damage(path, 0, reason)
                return DirectoryVerdict(scans, None, damage, "segments are not consecutive")
        scan = scan_segment(fs, path, first_lsn)
        scans.append(scan)
        if scan.damage is None:
            continue
        is_last = index == len(paths) - 1
        if not is_last:
            why = "in an older segment, not the tail of the last one"
        elif not scan.damage_could_be_torn:
            why = "a torn write cannot produce it"
        elif scan.valid_frame_after_damage:
            why = "valid records follow it"
        else:
            return DirectoryVerdict(scans, scan.damage, None, "")
        return DirectoryVerdict(scans, None, scan.damage, why)
    return DirectoryVerdict(scans, None, None, "")


def broken_path(fs: FileSystem, segment: Path) -> Path:
    """A fresh ``<segment>.broken`` name (``<segment>.<n>.broken`` if taken)."""
    candidate = segment.with_name(segment.name + BROKEN_SUFFIX)
    number = 1
    while fs.exists(candidate):
        number += 1
        candidate = segment.with_name(f"{segment.name}.{number}{BROKEN_SUFFIX}")
    return candidate


def cut_segment(fs: FileSystem, segment: Path, offset: int, first_lsn: int) -> tuple[Path, int]:
    """Keep bytes from ``offset`` on as a fsynced ``.broken`` file, then truncate the
    segment there (rewriting its header if the cut is inside it) and fsync it.
    The caller fsyncs the directory. Returns the ``.broken`` path and the bytes cut."""
    size = fs.file_size(segment)
    cut_bytes = fs.read_range(segment, offset, size - offset)
    target = broken_path(fs, segment)
    broken = fs.create(target)
    try:
        broken.write(cut_bytes)
        broken.fsync()
    finally:
        broken.close()
    handle = fs.open_append(segment)
    try:
        if offset < SEGMENT_HEADER_SIZE_BYTES:
            handle.truncate(0)
            handle.write(encode_segment_header(first_lsn))
        else:
            handle.truncate(offset)
        handle.fsync()
    finally:
        handle.close()
    return target, len(cut_bytes)


def recover(
    fs: FileSystem, directory: Path, clock: Clock
) -> tuple[RecoveryReport, list[SegmentScan]]:
    """Check the directory on open: cut a torn tail, refuse corruption."""
    started = clock.monotonic()
    verdict = judge_directory(fs, directory)
    if verdict.corruption is not None:
        raise corruption_error(verdict.corruption, verdict.why)
    scans = verdict.scans
    broken: Path | None = None
    truncated = 0
    if verdict.torn_tail is not None:
        last = scans[-1]
        broken, truncated = cut_segment(fs, last.path, last.valid_end, last.first_lsn)
        fs.fsync_directory(directory)
        logger.warning(
            "WAL: cut a torn tail of %d bytes from %s at offset %d (%s); kept as %s",
            truncated,
            last.path,
            last.valid_end,
            verdict.torn_tail.reason,
            broken,
        )
        scans[-1] = scan_segment(fs, last.path, last.first_lsn)
    records = sum(scan.record_count for scan in scans)
    last_lsn = scans[-1].first_lsn + scans[-1].record_count - 1 if scans else 0
    report = RecoveryReport(records, last_lsn, truncated, broken, clock.monotonic() - started)
    return report, scans


def verify(directory: Path, *, fs: FileSystem | None = None) -> VerifyReport:
    """Check every record of the WAL in ``directory`` without changing anything."""
    fs = fs or RealFileSystem()
    verdict = judge_directory(fs, directory)
    scans = verdict.scans
    records = sum(scan.record_count for scan in scans)
    first_lsn = scans[0].first_lsn if scans else 0
    last_lsn = scans[-1].first_lsn + scans[-1].record_count - 1 if scans else 0
    return VerifyReport(
        directory, len(scans), records, first_lsn, last_lsn, verdict.torn_tail, verdict.corruption
    )


def repair(directory: Path, *, fs: FileSystem | None = None) -> RepairReport:
    """Cut the WAL at its first damage; every byte cut away is kept in a ``.broken``
    file. Records after the cut are lost to the WAL (they stay in the ``.broken`` files)."""
    fs = fs or RealFileSystem()
    verdict = judge_directory(fs, directory)
    damage = verdict.corruption or verdict.torn_tail
    scans = verdict.scans
    if damage is None:
        logger.info("WAL repair: %s has no damage; nothing to do", directory)
        kept = sum(scan.record_count for scan in scans)
        last_lsn = scans[-1].first_lsn + scans[-1].record_count - 1 if scans else 0
        return RepairReport(directory, None, kept, last_lsn, 0, ())
    paths = segment_paths(fs, directory)
    index = next(i for i, (_lsn, path) in enumerate(paths) if path == damage.segment)
    broken_files: list[Path] = []
    discarded = 0
    first_lsn, path = paths[index]
    if damage.offset >= SEGMENT_HEADER_SIZE_BYTES or index == 0:
        target, cut = cut_segment(fs, path, damage.offset, first_lsn)
        broken_files.append(target)
        discarded += cut
        kept_segments = index + 1
    else:
        kept_segments = index
    for _lsn, later in paths[kept_segments:]:
        target = broken_path(fs, later)
        discarded += fs.file_size(later)
        fs.rename(later, target)
        broken_files.append(target)
    fs.fsync_directory(directory)
    after = judge_directory(fs, directory)
    if after.corruption is not None or after.torn_tail is not None:
        raise WalCorruptionError(f"WAL repair of {directory} left damage behind: {after}")
    kept = sum(scan.record_count for scan in after.scans)
    last = after.scans[-1] if after.scans else None
    last_lsn = last.first_lsn + last.record_count - 1 if last else 0
    logger.warning(
        "WAL repair: cut %s at offset %d (%s); %d bytes moved to %s; %d records kept, last LSN %d",
        damage.segment,
        damage.offset,
        damage.reason,
        discarded,
        ", ".join(str(p) for p in broken_files),
        kept,
        last_lsn,
    )
    return RepairReport(directory, damage, kept, last_lsn, discarded, tuple(broken_files))
