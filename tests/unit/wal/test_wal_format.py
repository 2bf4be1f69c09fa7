"""The byte format of docs/design/wal-format.md, pinned by hand-built bytes and a golden file."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import pytest

from stemedb.sys import RealFileSystem
from stemedb.wal.format import (
    FRAME_HEADER_SIZE_BYTES,
    SEGMENT_HEADER_SIZE_BYTES,
    HeaderError,
    decode_segment_header,
    encode_batch,
    encode_frame,
    encode_segment_header,
    parse_segment_name,
    segment_name,
)
from stemedb.wal.segment import WalRecord, read_records, scan_segment

GOLDEN_DIR = Path(__file__).parents[2] / "data" / "wal"
GOLDEN_SEGMENT = GOLDEN_DIR / "golden" / "0000000000000001.wal"


def crc32c_by_hand(data: bytes) -> int:
    """Bitwise CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), no library."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_crc_is_crc32c_castagnoli() -> None:
    assert crc32c_by_hand(b"123456789") == 0xE3069283


def test_hand_built_frame_matches_encoder() -> None:
    covered = bytes([1]) + (1).to_bytes(8, "little") + b"abc"
    expected = (3).to_bytes(4, "little") + crc32c_by_hand(covered).to_bytes(4, "little") + covered
    assert encode_frame(1, 1, b"abc") == expected
    assert expected.hex() == "03000000610a4fdb010100000000000000616263"
    assert FRAME_HEADER_SIZE_BYTES == 17


def test_hand_built_segment_header_matches_encoder() -> None:
    body = b"STEMEWAL" + struct.pack("<HHQ", 1, 0, 0x1234)
    expected = body + crc32c_by_hand(body).to_bytes(4, "little")
    assert encode_segment_header(0x1234) == expected
    assert SEGMENT_HEADER_SIZE_BYTES == len(expected) == 24
    assert decode_segment_header(expected) == 0x1234


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h: h[:23], "needs 24"),
        (lambda h: b"X" + h[1:], "CRC mismatch"),
        (lambda h: h[:20] + b"\0\0\0\0", "CRC mismatch"),
    ],
)
def test_damaged_segment_header_is_rejected(mutate: object, message: str) -> None:
    header = encode_segment_header(1)
    assert callable(mutate)
    with pytest.raises(HeaderError, match=message):
        decode_segment_header(mutate(header))


def test_future_format_version_is_rejected_even_with_a_good_crc() -> None:
    body = b"STEMEWAL" + struct.pack("<HHQ", 2, 0, 1)
    header = body + crc32c_by_hand(body).to_bytes(4, "little")
    with pytest.raises(HeaderError, match="version 2"):
        decode_segment_header(header)


def test_segment_names_are_sixteen_hex_digits_of_the_first_lsn() -> None:
    assert segment_name(1) == "0000000000000001.wal"
    assert segment_name(0xABC) == "0000000000000abc.wal"
    assert parse_segment_name("0000000000000abc.wal") == 0xABC
    for other in ("0000000000000abc.wal.broken", "abc.wal", "0000000000000ABC.wal", "x"):
        assert parse_segment_name(other) is None


def test_invalid_records_are_refused_before_encoding() -> None:
    with pytest.raises(ValueError, match="record type"):
        encode_batch(1, [(256, b"")])
    with pytest.raises(ValueError, match="record type"):
        encode_batch(1, [(-1, b"")])


def _golden_records() -> list[tuple[int, bytes]]:
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN_DIR / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    records: list[tuple[int, bytes]] = module.GOLDEN_RECORDS
    return records


def test_golden_segment_decodes_to_the_expected_records() -> None:
    fs = RealFileSystem()
    size = GOLDEN_SEGMENT.stat().st_size
    decoded = list(read_records(fs, GOLDEN_SEGMENT, 1, size, 1))
    expected = [WalRecord(lsn, t, p) for lsn, (t, p) in enumerate(_golden_records(), start=1)]
    assert decoded == expected
    scan = scan_segment(fs, GOLDEN_SEGMENT, 1)
    assert (scan.record_count, scan.valid_end, scan.damage) == (4, size, None)


def test_golden_segment_is_byte_for_byte_what_the_encoder_writes() -> None:
    data = GOLDEN_SEGMENT.read_bytes()
    assert data == encode_segment_header(1) + encode_batch(1, _golden_records())
    # Spot-check the second frame by hand: offset 24 + 17 (first frame, empty payload).
    second = data[41:]
    length, crc, record_type, lsn = struct.unpack_from("<IIBQ", second)
    assert (length, record_type, lsn) == (10, 2, 2)
    assert second[17:27] == b"hello, wal"
    assert crc == crc32c_by_hand(second[8:27])
