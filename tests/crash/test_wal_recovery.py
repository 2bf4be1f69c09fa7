"""Recovery on open: torn tails are cut, everything else is corruption that names its place."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from stemedb.errors import WalCorruptionError
from stemedb.sys import RealFileSystem
from stemedb.sys.faults import FaultyFileSystem, SimulatedCrash
from stemedb.wal import Wal, WalRecord, repair, verify
from stemedb.wal.format import FRAME_HEADER_SIZE_BYTES, SEGMENT_HEADER_SIZE_BYTES


def records(count: int, start: int = 0) -> list[tuple[int, bytes]]:
    return [(2, f"record-{start + i:04d}".encode()) for i in range(count)]


def make_wal(directory: Path, batches: list[int], segment_size_bytes: int = 1 << 20) -> Wal:
    wal = Wal.open(directory, segment_size_bytes=segment_size_bytes, fsync=False)
    written = 0
    for size in batches:
        wal.append(records(size, written))
        written += size
    return wal


def lsns(wal: Wal) -> list[int]:
    return [r.lsn for r in wal.iter_from(wal.segments()[0].first_lsn)]


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_torn_last_record_is_cut_on_open(tmp_path: Path) -> None:
    source = tmp_path / "source"
    wal = make_wal(source, [2])
    before = wal.segments()[0].size_bytes
    wal.append([(9, b"the last record, torn at every offset")])
    segment = wal.segments()[0].path
    full = segment.read_bytes()
    wal.close()
    expected = [WalRecord(1, 2, b"record-0000"), WalRecord(2, 2, b"record-0001")]
    for keep in range(len(full) - before):
        copy = tmp_path / f"cut-{keep}"
        shutil.copytree(source, copy)
        (copy / segment.name).write_bytes(full[: before + keep])
        reopened = Wal.open(copy)
        assert list(reopened.iter_from(1)) == expected, keep
        assert reopened.recovery.last_lsn == 2
        assert reopened.recovery.truncated_bytes == keep
        broken = copy / (segment.name + ".broken")
        if keep:
            assert reopened.recovery.broken_file == broken
            assert broken.read_bytes() == full[before : before + keep]
        else:
            assert reopened.recovery.broken_file is None
            assert not broken.exists()
        assert (copy / segment.name).stat().st_size == before
        assert reopened.append([(1, b"next")]) == 3
        reopened.close()


def test_torn_batch_write_through_the_seam_recovers_the_acknowledged_batches(
    tmp_path: Path,
) -> None:
    frame_bytes = FRAME_HEADER_SIZE_BYTES + len(b"record-0000")
    for keep in range(0, 3 * frame_bytes, 7):
        directory = tmp_path / f"tear-{keep}"
        fs = FaultyFileSystem(RealFileSystem())
        wal = Wal.open(directory, fs=fs)
        wal.append(records(2))
        fs.tear_write(keep)
        with pytest.raises(SimulatedCrash):
            wal.append(records(3, 2))
        fs.restart()
        reopened = Wal.open(directory, fs=fs)
        # Acknowledged records survive; whole frames of the torn batch may too (they
        # were submitted), a partial frame never does.
        whole_frames = keep // frame_bytes
        assert lsns(reopened) == list(range(1, 3 + whole_frames)), keep
        assert reopened.recovery.truncated_bytes == keep % frame_bytes
        reopened.close()


@pytest.mark.parametrize("garbage", [b"\0" * 4096, b"\xff" * 40, bytes(range(200))])
def test_garbage_after_the_last_record_is_cut_on_open(tmp_path: Path, garbage: bytes) -> None:
    wal = make_wal(tmp_path, [3])
    path = wal.segments()[0].path
    wal.close()
    with path.open("ab") as handle:
        handle.write(garbage)
    reopened = Wal.open(tmp_path)
    assert lsns(reopened) == [1, 2, 3]
    assert reopened.recovery.truncated_bytes == len(garbage)
    reopened.close()


def test_torn_header_of_a_new_segment_is_rewritten_on_open(tmp_path: Path) -> None:
    fs = FaultyFileSystem(RealFileSystem())
    wal = Wal.open(tmp_path, fs=fs, segment_size_bytes=100)
    wal.append(records(5))
    fs.tear_write(10)  # the next write is the new segment's header
    with pytest.raises(SimulatedCrash):
        wal.append(records(1, 5))
    fs.restart()
    reopened = Wal.open(tmp_path, fs=fs, segment_size_bytes=100)
    assert reopened.last_lsn == 5
    assert reopened.recovery.truncated_bytes == 10
    assert reopened.append(records(1, 5)) == 6
    assert lsns(reopened) == [1, 2, 3, 4, 5, 6]
    reopened.close()


def test_corrupt_record_followed_by_valid_records_refuses_to_open_naming_segment_and_offset(
    tmp_path: Path,
) -> None:
    wal = make_wal(tmp_path, [5])
    path = wal.segments()[0].path
    wal.close()
    frame = FRAME_HEADER_SIZE_BYTES + len(b"record-0000")
    second_frame = SEGMENT_HEADER_SIZE_BYTES + frame
    flip_byte(path, second_frame + FRAME_HEADER_SIZE_BYTES + 3)
    with pytest.raises(WalCorruptionError) as info:
        Wal.open(tmp_path)
    error = info.value
    assert error.details["segment"] == str(path)
    assert error.details["offset"] == second_frame
    assert f"{path} at byte offset {second_frame}" in error.message
    assert "valid records follow" in error.message
    assert error.code == "wal_corrupt" and not error.retryable


def test_corrupt_length_field_before_valid_records_is_not_mistaken_for_a_torn_tail(
    tmp_path: Path,
) -> None:
    wal = make_wal(tmp_path, [5])
    path = wal.segments()[0].path
    wal.close()
    data = bytearray(path.read_bytes())
    data[SEGMENT_HEADER_SIZE_BYTES + 3] = 0x7F  # payload length now runs past the file
    path.write_bytes(bytes(data))
    with pytest.raises(WalCorruptionError) as info:
        Wal.open(tmp_path)
    assert info.value.details["offset"] == SEGMENT_HEADER_SIZE_BYTES


def test_corruption_in_an_older_segment_refuses_even_at_its_tail(tmp_path: Path) -> None:
    wal = make_wal(tmp_path, [3, 3, 3], segment_size_bytes=120)
    older = wal.segments()[0]
    assert older.sealed
    wal.close()
    with older.path.open("r+b") as handle:
        handle.truncate(older.size_bytes - 1)
    with pytest.raises(WalCorruptionError) as info:
        Wal.open(tmp_path, segment_size_bytes=120)
    assert info.value.details["segment"] == str(older.path)
    assert "older segment" in info.value.message


def test_missing_middle_segment_is_an_lsn_gap(tmp_path: Path) -> None:
    wal = make_wal(tmp_path, [3, 3, 3], segment_size_bytes=120)
    segments = wal.segments()
    wal.close()
    segments[1].path.unlink()
    with pytest.raises(WalCorruptionError) as info:
        Wal.open(tmp_path)
    assert info.value.details == {
        "segment": str(segments[2].path),
        "offset": 0,
        "reason": "LSN gap: segment starts at LSN 7, expected 4",
    }


def test_valid_frame_with_a_wrong_lsn_at_the_tail_is_corruption(tmp_path: Path) -> None:
    from stemedb.wal.format import encode_frame

    wal = make_wal(tmp_path, [2])
    path = wal.segments()[0].path
    wal.close()
    with path.open("ab") as handle:
        handle.write(encode_frame(1, 7, b"from elsewhere"))
    with pytest.raises(WalCorruptionError, match="LSN 7, expected 3"):
        Wal.open(tmp_path)


def test_segment_header_naming_another_lsn_is_corruption(tmp_path: Path) -> None:
    from stemedb.wal.format import encode_segment_header

    wal = make_wal(tmp_path, [2])
    path = wal.segments()[0].path
    wal.close()
    data = path.read_bytes()
    path.write_bytes(encode_segment_header(5) + data[SEGMENT_HEADER_SIZE_BYTES:])
    with pytest.raises(WalCorruptionError, match="header says first LSN 5"):
        Wal.open(tmp_path)


def test_second_crash_keeps_both_broken_files(tmp_path: Path) -> None:
    for round_number in range(2):
        wal = Wal.open(tmp_path)
        wal.append(records(1, round_number))
        path = wal.segments()[0].path
        wal.close()
        with path.open("ab") as handle:
            handle.write(b"\x05\x00\x00\x00partial")
    Wal.open(tmp_path).close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "0000000000000001.wal",
        "0000000000000001.wal.2.broken",
        "0000000000000001.wal.broken",
    ]


def test_verify_reports_without_changing_anything(tmp_path: Path) -> None:
    wal = make_wal(tmp_path, [3, 3], segment_size_bytes=120)
    last = wal.segments()[-1].path
    wal.close()
    report = verify(tmp_path)
    assert report.ok and report.torn_tail is None
    assert (report.segments, report.records, report.first_lsn, report.last_lsn) == (2, 6, 1, 6)
    with last.open("ab") as handle:
        handle.write(b"\x01\x02")
    size = last.stat().st_size
    torn = Wal.verify(tmp_path)
    assert torn.ok and torn.torn_tail is not None and torn.torn_tail.segment == last
    flip_byte(tmp_path / "0000000000000001.wal", SEGMENT_HEADER_SIZE_BYTES + 20)
    broken = verify(tmp_path)
    assert not broken.ok and broken.corruption is not None
    assert broken.corruption.offset == SEGMENT_HEADER_SIZE_BYTES
    assert last.stat().st_size == size
    assert not list(tmp_path.glob("*.broken"))


def test_repair_cuts_at_the_corruption_keeps_the_bytes_and_reopens(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wal = make_wal(tmp_path, [3, 3, 3], segment_size_bytes=120)
    segments = wal.segments()
    wal.close()
    frame = FRAME_HEADER_SIZE_BYTES + len(b"record-0000")
    bad_offset = SEGMENT_HEADER_SIZE_BYTES + frame  # LSN 5, the second record of segment 2
    flip_byte(segments[1].path, bad_offset + 5)
    with caplog.at_level(logging.WARNING, logger="stemedb.wal"):
        report = Wal.repair(tmp_path)
    assert report.cut is not None
    assert (report.cut.segment, report.cut.offset) == (segments[1].path, bad_offset)
    assert (report.records_kept, report.last_lsn) == (4, 4)
    assert report.broken_files == (
        segments[1].path.with_name(segments[1].path.name + ".broken"),
        segments[2].path.with_name(segments[2].path.name + ".broken"),
    )
    assert report.bytes_discarded == 2 * frame + segments[2].size_bytes
    assert "WAL repair" in caplog.text
    reopened = Wal.open(tmp_path, segment_size_bytes=120)
    assert lsns(reopened) == [1, 2, 3, 4]
    assert reopened.append(records(1)) == 5
    reopened.close()
    assert repair(tmp_path).cut is None


def test_repair_of_a_bad_first_header_leaves_an_empty_log_at_the_same_lsn(
    tmp_path: Path,
) -> None:
    wal = make_wal(tmp_path, [3])
    path = wal.segments()[0].path
    wal.close()
    flip_byte(path, 2)
    with pytest.raises(WalCorruptionError, match="offset 0"):
        Wal.open(tmp_path)
    report = repair(tmp_path)
    assert report.last_lsn == 0
    reopened = Wal.open(tmp_path)
    assert reopened.last_lsn == 0
    reopened.close()


def test_last_segment_of_a_newer_format_version_is_refused_not_cut(tmp_path: Path) -> None:
    import struct

    import crc32c

    wal = make_wal(tmp_path, [2])
    path = wal.segments()[0].path
    wal.close()
    body = b"STEMEWAL" + struct.pack("<HHQ", 2, 0, 1)
    data = path.read_bytes()
    path.write_bytes(body + struct.pack("<I", crc32c.crc32c(body)) + data[24:])
    with pytest.raises(WalCorruptionError, match="version 2"):
        Wal.open(tmp_path)
    assert path.read_bytes()[24:] == data[24:]
    assert not list(tmp_path.glob("*.broken"))


def test_reports_convert_to_json_ready_dicts(tmp_path: Path) -> None:
    make_wal(tmp_path, [2]).close()
    report = verify(tmp_path).to_dict()
    assert report == {
        "directory": str(tmp_path),
        "segments": 1,
        "records": 2,
        "first_lsn": 1,
        "last_lsn": 2,
        "torn_tail": None,
        "corruption": None,
        "ok": True,
    }
    assert repair(tmp_path).to_dict()["broken_files"] == []
    assert Wal.open(tmp_path).recovery.to_dict()["broken_file"] is None
