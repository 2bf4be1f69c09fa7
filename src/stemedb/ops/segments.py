"""WAL segments as bytes, for backup and restore: find the valid prefix of a segment
that may be growing (or damaged), and cut a segment after a given record.

The byte layout is ``stemedb.wal.format`` (docs/design/wal-format.md); every frame's
CRC and LSN is checked by the WAL's frame reader (``stemedb.wal.frames``). These
helpers read copies and never touch a live WAL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from stemedb.engine.codec import decode_entry
from stemedb.errors import StorageError
from stemedb.model.kinds import Entry
from stemedb.sys import translate_os_error
from stemedb.wal.format import SEGMENT_HEADER_SIZE_BYTES, HeaderError, decode_segment_header
from stemedb.wal.frames import Frame, FrameReader, FrameStop


@dataclass
class SegmentBytes:
    """A segment's bytes and its verified frames (up to the first damage)."""

    first_lsn: int
    data: bytes
    frames: list[Frame] = field(default_factory=list)
    valid_end: int = 0  # the bytes [0, valid_end) are a header and whole, valid frames
    damage: str | None = None  # why the bytes after valid_end are not frames

    @property
    def last_lsn(self) -> int:
        return self.first_lsn + len(self.frames) - 1

    def entry(self, index: int) -> Entry:
        """The engine entry of the ``index``-th frame (decodes the payload)."""
        frame = self.frames[index]
        payload = self.data[frame.payload_start : frame.end]
        return decode_entry(frame.lsn, frame.record_type, payload)

    def entries_from(self, lsn: int) -> Iterator[Entry]:
        for index in range(max(0, lsn - self.first_lsn), len(self.frames)):
            yield self.entry(index)

    def prefix_through(self, lsn: int) -> bytes:
        """The header and the frames with LSN <= ``lsn``."""
        if lsn < self.first_lsn:
            return self.data[:SEGMENT_HEADER_SIZE_BYTES]
        return self.data[: self.frames[min(lsn, self.last_lsn) - self.first_lsn].end]


def parse_segment(data: bytes, first_lsn: int) -> SegmentBytes:
    """Verify the header and every frame of ``data``; stop at the first damage."""
    segment = SegmentBytes(first_lsn, data)
    try:
        header_lsn = decode_segment_header(data)
    except HeaderError as exc:
        segment.damage = f"bad segment header: {exc}"
        return segment
    if header_lsn != first_lsn:
        segment.damage = f"header says first LSN {header_lsn}, expected {first_lsn}"
        return segment
    reader = FrameReader(data, SEGMENT_HEADER_SIZE_BYTES, first_lsn)
    segment.frames.extend(reader)
    segment.valid_end = reader.offset
    if reader.stop is not None:
        segment.damage = _damage(reader.stop)
    return segment


def _damage(stop: FrameStop) -> str:
    pos = stop.offset
    if stop.problem == "incomplete_header":
        return f"incomplete frame header at offset {pos}"
    if stop.problem == "past_end":
        return f"frame at offset {pos} runs past the end of the data"
    if stop.problem == "crc_mismatch":
        return f"frame CRC mismatch at offset {pos}"
    return f"frame at offset {pos} has LSN {stop.lsn}, expected {stop.expected_lsn}"


def read_segment(path: Path, first_lsn: int) -> SegmentBytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise translate_os_error(exc, "read WAL segment", path) from exc
    return parse_segment(data, first_lsn)


def first_record_after(
    segment: SegmentBytes, from_lsn: int, keep: Callable[[Entry], bool]
) -> int | None:
    """The LSN of the first record (LSN >= ``from_lsn``) that ``keep`` rejects, or None."""
    for entry in segment.entries_from(from_lsn):
        if not keep(entry):
            return entry.lsn
    return None


def require_clean(segment: SegmentBytes, where: str) -> None:
    if segment.damage is not None:
        raise StorageError(
            f"{where}: WAL segment {segment.first_lsn:016x}.wal is damaged: {segment.damage}",
            code="wal_corrupt",
            retryable=False,
        )
