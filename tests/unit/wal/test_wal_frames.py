"""The one frame reader (``stemedb.wal.frames``): where it stops, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from stemedb.errors import WalCorruptionError
from stemedb.wal import Wal
from stemedb.wal.format import (
    FRAME_HEADER_SIZE_BYTES,
    SEGMENT_HEADER_SIZE_BYTES,
    encode_batch,
    encode_frame,
)
from stemedb.wal.frames import Frame, FrameReader, find_frame

THREE = encode_batch(5, [(1, b"a"), (2, b"bb"), (3, b"ccc")])


def _read(data: bytes, first_lsn: int = 5, **kwargs: int) -> tuple[list[Frame], FrameReader]:
    reader = FrameReader(data, 0, first_lsn, **kwargs)
    return list(reader), reader


def test_whole_frames_are_yielded_with_their_offsets_and_no_stop() -> None:
    frames, reader = _read(THREE)
    assert [(f.lsn, f.record_type) for f in frames] == [(5, 1), (6, 2), (7, 3)]
    assert frames[0].start == 0 and frames[0].end == frames[1].start == 18
    assert THREE[frames[2].payload_start : frames[2].end] == b"ccc"
    assert (reader.offset, reader.next_lsn, reader.stop) == (len(THREE), 8, None)


def test_short_tail_stops_as_an_incomplete_header_that_could_be_torn() -> None:
    frames, reader = _read(THREE + b"\x01\x02\x03")
    assert len(frames) == 3
    assert reader.stop is not None and reader.stop.problem == "incomplete_header"
    assert (reader.stop.offset, reader.stop.bytes_left) == (len(THREE), 3)
    assert reader.stop.could_be_torn


def test_frame_cut_inside_its_payload_stops_past_the_end() -> None:
    frames, reader = _read(THREE[:-1])
    assert len(frames) == 2
    assert reader.stop is not None and reader.stop.problem == "past_end"
    assert (reader.stop.offset, reader.stop.payload_length) == (frames[1].end, 3)
    assert reader.offset == frames[1].end and reader.next_lsn == 7


def test_flipped_payload_byte_stops_at_a_crc_mismatch() -> None:
    damaged = bytearray(THREE)
    damaged[18 + FRAME_HEADER_SIZE_BYTES] ^= 0xFF  # the second frame's payload
    frames, reader = _read(bytes(damaged))
    assert [f.lsn for f in frames] == [5]
    assert reader.stop is not None and reader.stop.problem == "crc_mismatch"
    assert reader.stop.offset == 18 and reader.stop.could_be_torn


def test_good_frame_with_the_wrong_lsn_stops_and_cannot_be_torn() -> None:
    data = encode_frame(1, 5, b"a") + encode_frame(1, 9, b"b")
    frames, reader = _read(data)
    assert [f.lsn for f in frames] == [5]
    assert reader.stop is not None and reader.stop.problem == "lsn_mismatch"
    assert (reader.stop.lsn, reader.stop.expected_lsn) == (9, 6)
    assert not reader.stop.could_be_torn


def test_crc_is_not_checked_below_verify_crc_from_lsn_but_the_lsn_is() -> None:
    damaged = bytearray(THREE)
    damaged[FRAME_HEADER_SIZE_BYTES] ^= 0xFF  # the first frame's payload
    frames, reader = _read(bytes(damaged), verify_crc_from_lsn=6)
    assert [f.lsn for f in frames] == [5, 6, 7] and reader.stop is None
    frames, reader = _read(bytes(damaged), verify_crc_from_lsn=5)
    assert frames == [] and reader.stop is not None and reader.stop.problem == "crc_mismatch"


def test_find_frame_skips_garbage_to_the_next_valid_frame() -> None:
    data = b"\xaa" * 7 + encode_frame(1, 12, b"later")
    assert find_frame(data, 0, 10) == 7
    assert find_frame(data, 0, 13) is None  # its LSN is below the minimum
    assert find_frame(b"\x00" * 64, 0, 1) is None  # zeroed tail: nothing follows


def test_record_damaged_after_open_is_refused_on_read_with_segment_and_offset(
    tmp_path: Path,
) -> None:
    wal = Wal.open(tmp_path, fsync=False)
    wal.append([(1, b"first"), (1, b"second")])
    segment = wal.segments()[0]
    damaged = bytearray(segment.path.read_bytes())
    second = SEGMENT_HEADER_SIZE_BYTES + FRAME_HEADER_SIZE_BYTES + len(b"first")
    damaged[-1] ^= 0xFF  # the second record's payload
    segment.path.write_bytes(bytes(damaged))
    with pytest.raises(WalCorruptionError) as caught:
        list(wal.iter_from(1))
    assert caught.value.details == {
        "segment": str(segment.path),
        "offset": second,
        "reason": "frame CRC mismatch",
    }
    wal.close()
