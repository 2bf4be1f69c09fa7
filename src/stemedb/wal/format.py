"""Byte layout of WAL segments: the segment header and the record frame.

Normative description: ``docs/design/wal-format.md``. All integers little-endian.

Segment header (24 bytes)::

    0   8  magic            b"STEMEWAL"
    8   2  format_version   u16 = 1
    10  2  flags            u16 = 0 (reserved; readers reject non-zero)
    12  8  first_lsn        u64, equals the LSN in the file name
    20  4  header_crc       u32 CRC-32C of bytes 0..20

Record frame (17-byte header + payload)::

    0   4  payload_length   u32
    4   4  crc              u32 CRC-32C of bytes 8..17+payload_length
    8   1  record_type      u8
    9   8  lsn              u64
    17  n  payload
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence

import crc32c

MAGIC = b"STEMEWAL"
FORMAT_VERSION = 1
SEGMENT_HEADER = struct.Struct("<8sHHQ")
SEGMENT_HEADER_CRC = struct.Struct("<I")
SEGMENT_HEADER_SIZE_BYTES = SEGMENT_HEADER.size + SEGMENT_HEADER_CRC.size  # 24
FRAME_HEADER = struct.Struct("<IIBQ")
FRAME_HEADER_SIZE_BYTES = FRAME_HEADER.size  # 17
FRAME_CRC_START = 8  # the CRC covers the frame from this offset to its end
TYPE_AND_LSN = struct.Struct("<BQ")
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
MAX_RECORD_TYPE = 255
SEGMENT_SUFFIX = ".wal"
BROKEN_SUFFIX = ".broken"
SEGMENT_NAME_PATTERN = re.compile(r"^([0-9a-f]{16})\.wal$")


class HeaderError(ValueError):
    """A segment header is short, has a bad CRC, or a good CRC and an unknown
    magic/version/flags. Only the first two can come from a torn write."""

    def __init__(self, message: str, *, could_be_torn: bool) -> None:
        super().__init__(message)
        self.could_be_torn = could_be_torn


def segment_name(first_lsn: int) -> str:
    return f"{first_lsn:016x}{SEGMENT_SUFFIX}"


def parse_segment_name(name: str) -> int | None:
    """The first LSN encoded in a segment file name, or None for other files."""
    match = SEGMENT_NAME_PATTERN.match(name)
    return int(match.group(1), 16) if match else None


def encode_segment_header(first_lsn: int) -> bytes:
    body = SEGMENT_HEADER.pack(MAGIC, FORMAT_VERSION, 0, first_lsn)
    return body + SEGMENT_HEADER_CRC.pack(crc32c.crc32c(body))


def decode_segment_header(data: bytes | memoryview) -> int:
    """The first LSN of a segment header; ``HeaderError`` says what is wrong."""
    if len(data) < SEGMENT_HEADER_SIZE_BYTES:
        raise HeaderError(f"segment header is {len(data)} bytes, needs 24", could_be_torn=True)
    magic, version, flags, first_lsn = SEGMENT_HEADER.unpack_from(data, 0)
    (stored_crc,) = SEGMENT_HEADER_CRC.unpack_from(data, SEGMENT_HEADER.size)
    if crc32c.crc32c(data[: SEGMENT_HEADER.size]) != stored_crc:
        raise HeaderError("segment header CRC mismatch", could_be_torn=True)
    if magic != MAGIC:
        raise HeaderError(f"bad segment magic {bytes(magic)!r}", could_be_torn=False)
    if version != FORMAT_VERSION:
        raise HeaderError(f"unsupported WAL format version {version}", could_be_torn=False)
    if flags != 0:
        raise HeaderError(f"unsupported segment flags {flags:#x}", could_be_torn=False)
    return int(first_lsn)


def frame_crc(record_type: int, lsn: int, payload: bytes | memoryview) -> int:
    return crc32c.crc32c(payload, crc32c.crc32c(TYPE_AND_LSN.pack(record_type, lsn)))


def check_record(record_type: int, payload: bytes) -> None:
    if not 0 <= record_type <= MAX_RECORD_TYPE:
        raise ValueError(f"record type {record_type} is outside 0..255")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")


def encode_frame(record_type: int, lsn: int, payload: bytes) -> bytes:
    """One record frame: header followed by the payload."""
    check_record(record_type, payload)
    header = FRAME_HEADER.pack(len(payload), frame_crc(record_type, lsn, payload), record_type, lsn)
    return header + payload


def encode_batch(first_lsn: int, records: Sequence[tuple[int, bytes]]) -> bytes:
    """Consecutive frames for ``records``, numbered from ``first_lsn``, in one buffer."""
    parts: list[bytes] = []
    pack = FRAME_HEADER.pack
    pack_type_lsn = TYPE_AND_LSN.pack
    crc = crc32c.crc32c
    for index, (record_type, payload) in enumerate(records):
        check_record(record_type, payload)
        lsn = first_lsn + index
        checksum = crc(payload, crc(pack_type_lsn(record_type, lsn)))
        parts.append(pack(len(payload), checksum, record_type, lsn))
        parts.append(payload)
    return b"".join(parts)
