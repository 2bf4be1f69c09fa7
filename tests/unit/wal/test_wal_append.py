"""Appending, rotation, iteration and segment management of the WAL."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from stemedb.errors import StorageError
from stemedb.sys import RealFileSystem
from stemedb.sys.faults import FakeClock, FaultyFileSystem
from stemedb.wal import Wal, WalRecord
from stemedb.wal.format import SEGMENT_HEADER_SIZE_BYTES, encode_segment_header


class RecordingObserver:
    def __init__(self) -> None:
        self.fsyncs: list[float] = []
        self.appends: list[tuple[int, int]] = []
        self.rotations = 0
        self.fsync_errors = 0

    def on_fsync(self, duration_seconds: float) -> None:
        self.fsyncs.append(duration_seconds)

    def on_append(self, records: int, bytes: int) -> None:
        self.appends.append((records, bytes))

    def on_rotation(self) -> None:
        self.rotations += 1

    def on_fsync_error(self) -> None:
        self.fsync_errors += 1


def batch(count: int, start: int = 0) -> list[tuple[int, bytes]]:
    return [(1, f"payload-{start + i}".encode()) for i in range(count)]


def test_open_creates_missing_directory_with_one_empty_segment(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path / "a" / "wal")
    assert wal.last_lsn == 0
    assert wal.recovery.records_scanned == 0
    [segment] = wal.segments()
    assert segment.path.name == "0000000000000001.wal"
    assert (segment.first_lsn, segment.last_lsn, segment.sealed) == (1, 0, False)
    assert segment.path.read_bytes() == encode_segment_header(1)
    assert list(wal.iter_from(1)) == []
    wal.close()


def test_lsns_are_consecutive_from_one_and_append_returns_the_first(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path, fsync=False)
    assert wal.append(batch(3)) == 1
    assert wal.append(batch(1, 3)) == 4
    assert wal.last_lsn == 4
    records = list(wal.iter_from(1))
    assert [r.lsn for r in records] == [1, 2, 3, 4]
    assert records[3] == WalRecord(4, 1, b"payload-3")
    assert [r.lsn for r in wal.iter_from(3)] == [3, 4]
    assert list(wal.iter_from(5)) == []
    wal.close()


def test_batch_is_one_write_and_one_fdatasync(tmp_path: Path) -> None:
    fs = FaultyFileSystem(RealFileSystem())
    wal = Wal.open(tmp_path, fs=fs)
    writes, syncs = fs.write_calls, fs.file_sync_calls
    wal.append(batch(500))
    assert (fs.write_calls - writes, fs.file_sync_calls - syncs) == (1, 1)
    wal.close()


def test_fsync_false_never_syncs(tmp_path: Path) -> None:
    fs = FaultyFileSystem(RealFileSystem())
    wal = Wal.open(tmp_path, fs=fs, fsync=False, segment_size_bytes=200)
    syncs = fs.file_sync_calls
    for i in range(10):
        wal.append(batch(2, 2 * i))
    assert fs.file_sync_calls == syncs
    wal.close()


def test_empty_batch_and_bad_record_type_are_refused_without_writing(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path)
    with pytest.raises(ValueError, match="at least one"):
        wal.append([])
    with pytest.raises(ValueError, match="record type"):
        wal.append([(1, b"ok"), (300, b"bad")])
    assert wal.last_lsn == 0
    assert wal.segments()[0].size_bytes == SEGMENT_HEADER_SIZE_BYTES
    wal.close()


def test_rotation_starts_a_segment_named_after_its_first_lsn(tmp_path: Path) -> None:
    observer = RecordingObserver()
    wal = Wal.open(tmp_path, segment_size_bytes=300, observer=observer)
    for i in range(20):
        wal.append(batch(3, 3 * i))
    segments = wal.segments()
    assert len(segments) > 3
    assert observer.rotations == len(segments) - 1
    assert [s.sealed for s in segments] == [True] * (len(segments) - 1) + [False]
    for previous, current in itertools.pairwise(segments):
        assert current.first_lsn == previous.last_lsn + 1
        assert current.path.name == f"{current.first_lsn:016x}.wal"
        assert previous.size_bytes <= 300
    assert segments[-1].last_lsn == 60
    assert [r.lsn for r in wal.iter_from(1)] == list(range(1, 61))
    assert [r.lsn for r in wal.iter_from(37)] == list(range(37, 61))
    assert wal.disk_usage_bytes() == sum(p.stat().st_size for p in tmp_path.glob("*.wal"))
    wal.close()
    reopened = Wal.open(tmp_path, segment_size_bytes=300)
    assert reopened.last_lsn == 60
    assert reopened.recovery.records_scanned == 60
    assert reopened.append(batch(1)) == 61
    reopened.close()


def test_batch_larger_than_a_segment_gets_a_segment_of_its_own(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path, segment_size_bytes=100)
    wal.append([(1, b"x" * 10)])
    wal.append([(1, b"y" * 500)])
    wal.append([(1, b"z" * 10)])
    assert [(s.first_lsn, s.last_lsn) for s in wal.segments()] == [(1, 1), (2, 2), (3, 3)]
    assert [r.payload[:1] for r in wal.iter_from(1)] == [b"x", b"y", b"z"]
    wal.close()


def test_observer_sees_appends_fsyncs_and_durations_from_the_clock(tmp_path: Path) -> None:
    observer = RecordingObserver()
    clock = FakeClock()
    wal = Wal.open(tmp_path, observer=observer, clock=clock)
    wal.append(batch(2))
    assert observer.appends == [(2, 2 * 17 + len(b"payload-0") * 2)]
    assert observer.fsyncs == [0.0]
    wal.close()


def test_read_records_larger_than_the_read_chunk(tmp_path: Path) -> None:
    from stemedb.wal.segment import read_records

    wal = Wal.open(tmp_path, fsync=False)
    payloads = [bytes([i]) * (1000 + 300 * i) for i in range(10)]
    wal.append([(3, p) for p in payloads])
    segment = wal.segments()[0]
    read = list(read_records(RealFileSystem(), segment.path, 1, segment.size_bytes, 1, 512))
    assert [r.payload for r in read] == payloads
    wal.close()


def test_remove_segments_before_keeps_every_segment_with_a_needed_record(
    tmp_path: Path,
) -> None:
    wal = Wal.open(tmp_path, segment_size_bytes=200)
    for i in range(30):
        wal.append(batch(2, 2 * i))
    segments = wal.segments()
    cut = segments[2].first_lsn + 1  # inside the third segment
    removed = wal.remove_segments_before(cut)
    assert removed == [segments[0].path, segments[1].path]
    assert not segments[0].path.exists()
    assert wal.segments()[0] == segments[2]
    assert next(r.lsn for r in wal.iter_from(cut)) == cut
    with pytest.raises(StorageError) as info:
        wal.iter_from(1)
    assert info.value.code == "wal_lsn_unavailable"
    assert wal.remove_segments_before(10**9)[-1] == segments[-2].path
    assert len(wal.segments()) == 1  # the active segment always stays
    wal.close()
    assert Wal.open(tmp_path, segment_size_bytes=200).last_lsn == 60


def test_closed_wal_refuses_appends(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path)
    wal.close()
    wal.close()
    with pytest.raises(StorageError) as info:
        wal.append(batch(1))
    assert info.value.code == "wal_closed"


def test_iter_from_zero_is_refused(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path)
    with pytest.raises(ValueError):
        wal.iter_from(0)
    wal.close()


def test_reader_never_sees_a_record_beyond_the_durable_lsn_while_writer_appends(
    tmp_path: Path,
) -> None:
    wal = Wal.open(tmp_path, segment_size_bytes=4096, fsync=False)
    wal.append(batch(1))
    stop = threading.Event()
    problems: list[str] = []

    def read_repeatedly() -> None:
        while not stop.is_set():
            durable = wal.last_lsn
            lsns = [r.lsn for r in wal.iter_from(1)]
            if lsns != list(range(1, len(lsns) + 1)) or len(lsns) < durable:
                problems.append(f"read {len(lsns)} records, durable was {durable}")

    reader = threading.Thread(target=read_repeatedly)
    reader.start()
    try:
        for i in range(300):
            wal.append(batch(5, 5 * i))
    finally:
        stop.set()
        reader.join()
    assert problems == []
    wal.close()
