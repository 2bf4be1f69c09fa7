"""Reading segments: the recovery scan (whole file, find the first damage) and the
chunked record reader used by ``Wal.iter_from``, both over ``wal.frames``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import msgspec

from stemedb.errors import WalCorruptionError
from stemedb.sys import FileSystem
from stemedb.wal.format import (
    FRAME_HEADER_SIZE_BYTES,
    SEGMENT_HEADER_SIZE_BYTES,
    HeaderError,
    decode_segment_header,
)
from stemedb.wal.frames import FrameReader, FrameStop, find_frame

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
    size = len(data)
    try:
        header_lsn = decode_segment_header(data)
    except HeaderError as exc:
        damage = Damage(path, 0, str(exc))
        valid_after = exc.could_be_torn and find_frame(data, 1, first_lsn) is not None
        return SegmentScan(path, first_lsn, 0, 0, size, damage, exc.could_be_torn, valid_after)
    if header_lsn != first_lsn:
        mismatch = Damage(path, 0, f"header says first LSN {header_lsn}, name says {first_lsn}")
        return SegmentScan(path, first_lsn, 0, 0, size, mismatch, False, False)

    reader = FrameReader(data, SEGMENT_HEADER_SIZE_BYTES, first_lsn)
    for _frame in reader:
        pass
    pos, expected, stop = reader.offset, reader.next_lsn, reader.stop
    count = expected - first_lsn
    if stop is None:
        return SegmentScan(path, first_lsn, count, pos, size, None, True, False)
    could_be_torn = stop.could_be_torn
    valid_after = could_be_torn and find_frame(data, pos + 1, expected) is not None
    damage = Damage(path, pos, _scan_reason(stop))
    return SegmentScan(path, first_lsn, count, pos, size, damage, could_be_torn, valid_after)


def _scan_reason(stop: FrameStop) -> str:
    if stop.problem == "incomplete_header":
        return f"incomplete frame header ({stop.bytes_left} bytes)"
    if stop.problem == "past_end":
        return f"frame of {stop.payload_length} payload bytes runs past the end of the file"
    if stop.problem == "crc_mismatch":
        return "frame CRC mismatch"
    return f"frame has LSN {stop.lsn}, expected {stop.expected_lsn}"


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
    header = FRAME_HEADER_SIZE_BYTES
    offset = SEGMENT_HEADER_SIZE_BYTES
    expected = first_lsn
    want = chunk_bytes
    while offset < end_offset:
        data = fs.read_range(path, offset, min(want, end_offset - offset))
        reader = FrameReader(data, 0, expected, verify_crc_from_lsn=from_lsn)
        records = [
            WalRecord(frame.lsn, frame.record_type, data[frame.start + header : frame.end])
            for frame in reader
            if frame.lsn >= from_lsn
        ]
        stop = reader.stop
        if stop is not None and stop.problem in ("crc_mismatch", "lsn_mismatch"):
            reason = _scan_reason(stop)
            raise corruption_error(Damage(path, offset + stop.offset, reason), "read")
        yield from records
        pos, expected = reader.offset, reader.next_lsn
        if pos == 0:  # not one whole frame in the chunk: read the first one whole
            if stop is None or stop.problem != "past_end" or offset + len(data) >= end_offset:
                reason = "segment ends inside a frame that was durable"
                raise corruption_error(Damage(path, offset, reason), "read")
            want = header + stop.payload_length
        else:
            want = chunk_bytes
        offset += pos
