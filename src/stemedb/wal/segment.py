"""Reading segments: the recovery scan (whole file, find the first damage) and the
chunked record reader used by ``Wal.iter_from``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import crc32c
import msgspec

from stemedb.errors import WalCorruptionError
from stemedb.sys import FileSystem
from stemedb.wal.format import (
    FRAME_CRC_START,
    FRAME_HEADER,
    FRAME_HEADER_SIZE_BYTES,
    MAX_PAYLOAD_BYTES,
    SEGMENT_HEADER_SIZE_BYTES,
    HeaderError,
    decode_segment_header,
)

READ_CHUNK_BYTES = 4 * 1024 * 1024


class WalRecord(NamedTuple):
    lsn: int
    type: int
    payload: bytes


class Damage(msgspec.Struct, frozen=True):
    """The first bad byte range of a segment: where it starts and why it is bad."""

    segment: Path
    offset: int
    reason: str


class SegmentScan(NamedTuple):
    path: Path
    first_lsn: int
    record_count: int
    valid_end: int
    file_size: int
    damage: Damage | None
    # A torn write can leave a short or checksum-failing frame; it cannot produce a
    # frame with a good CRC and a wrong LSN, or a good header naming another LSN.
    damage_could_be_torn: bool
    valid_frame_after_damage: bool


def corruption_error(damage: Damage, why: str) -> WalCorruptionError:
    return WalCorruptionError(
        f"WAL corruption in segment {damage.segment} at byte offset {damage.offset}: "
        f"{damage.reason} ({why}); run `stemedb wal repair` to cut the log at this point",
        details={"segment": str(damage.segment), "offset": damage.offset, "reason": damage.reason},
    )


def scan_segment(fs: FileSystem, path: Path, first_lsn: int) -> SegmentScan:
    """Verify every frame of one segment; stop at the first damage."""
    data = fs.read_file(path)
    view = memoryview(data)
    size = len(data)
    try:
        header_lsn = decode_segment_header(view)
    except HeaderError as exc:
        damage = Damage(path, 0, str(exc))
        valid_after = exc.could_be_torn and valid_frame_after(data, 1, first_lsn)
        return SegmentScan(path, first_lsn, 0, 0, size, damage, exc.could_be_torn, valid_after)
    if header_lsn != first_lsn:
        mismatch = Damage(path, 0, f"header says first LSN {header_lsn}, name says {first_lsn}")
        return SegmentScan(path, first_lsn, 0, 0, size, mismatch, False, False)

    unpack = FRAME_HEADER.unpack_from
    crc = crc32c.crc32c
    pos = SEGMENT_HEADER_SIZE_BYTES
    expected = first_lsn
    reason: str | None = None
    could_be_torn = True
    while pos < size:
        if size - pos < FRAME_HEADER_SIZE_BYTES:
            reason = f"incomplete frame header ({size - pos} bytes)"
            break
        length, checksum, _type, lsn = unpack(view, pos)
        end = pos + FRAME_HEADER_SIZE_BYTES + length
        if length > MAX_PAYLOAD_BYTES or end > size:
            reason = f"frame of {length} payload bytes runs past the end of the file"
            break
        if crc(view[pos + FRAME_CRC_START : end]) != checksum:
            reason = "frame CRC mismatch"
            break
        if lsn != expected:
            reason = f"frame has LSN {lsn}, expected {expected}"
            could_be_torn = False
            break
        expected += 1
        pos = end
    view.release()
    count = expected - first_lsn
    if reason is None:
        return SegmentScan(path, first_lsn, count, pos, size, None, True, False)
    valid_after = could_be_torn and valid_frame_after(data, pos + 1, expected)
    damage = Damage(path, pos, reason)
    return SegmentScan(path, first_lsn, count, pos, size, damage, could_be_torn, valid_after)


def valid_frame_after(data: bytes, start: int, min_lsn: int) -> bool:
    """Whether any byte offset >= ``start`` holds a whole frame with a good CRC and an
    LSN >= ``min_lsn``: then the damage is not a torn tail. Slow (byte by byte), but it
    runs only on a damaged segment, and stops at the first valid frame."""
    size = len(data)
    if start >= size or data.count(0, start) == size - start:
        return False
    max_lsn = min_lsn + (size - start) // FRAME_HEADER_SIZE_BYTES + 1
    unpack = FRAME_HEADER.unpack_from
    view = memoryview(data)
    try:
        for offset in range(start, size - FRAME_HEADER_SIZE_BYTES + 1):
            length, checksum, _type, lsn = unpack(view, offset)
            if lsn < min_lsn or lsn > max_lsn:
                continue
            end = offset + FRAME_HEADER_SIZE_BYTES + length
            if end > size:
                continue
            if crc32c.crc32c(view[offset + FRAME_CRC_START : end]) == checksum:
                return True
        return False
    finally:
        view.release()


def read_records(
    fs: FileSystem,
    path: Path,
    first_lsn: int,
    end_offset: int,
    from_lsn: int,
    chunk_bytes: int = READ_CHUNK_BYTES,
) -> Iterator[WalRecord]:
    """Records with LSN >= ``from_lsn`` of the verified byte range ``[header, end_offset)``.

    Reads ``chunk_bytes`` at a time; re-checks every CRC and LSN on the way.
    """
    unpack = FRAME_HEADER.unpack_from
    crc = crc32c.crc32c
    offset = SEGMENT_HEADER_SIZE_BYTES
    expected = first_lsn
    want = chunk_bytes
    while offset < end_offset:
        data = fs.read_range(path, offset, min(want, end_offset - offset))
        size = len(data)
        pos = 0
        records: list[WalRecord] = []
        while size - pos >= FRAME_HEADER_SIZE_BYTES:
            length, checksum, record_type, lsn = unpack(data, pos)
            end = pos + FRAME_HEADER_SIZE_BYTES + length
            if end > size:
                break
            if lsn >= from_lsn:
                if crc(memoryview(data)[pos + FRAME_CRC_START : end]) != checksum:
                    raise corruption_error(Damage(path, offset + pos, "frame CRC mismatch"), "read")
                records.append(
                    WalRecord(lsn, record_type, data[pos + FRAME_HEADER_SIZE_BYTES : end])
                )
            if lsn != expected:
                reason = f"frame has LSN {lsn}, expected {expected}"
                raise corruption_error(Damage(path, offset + pos, reason), "read")
            expected += 1
            pos = end
        yield from records
        if pos == 0:
            if size < FRAME_HEADER_SIZE_BYTES or offset + size >= end_offset:
                reason = "segment ends inside a frame that was durable"
                raise corruption_error(Damage(path, offset, reason), "read")
            want = FRAME_HEADER_SIZE_BYTES + unpack(data, 0)[0]
        else:
            want = chunk_bytes
        offset += pos
