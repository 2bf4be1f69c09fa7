"""A model of the WAL's promise under torn writes, failed fsyncs, full disks and reopens.

The rule (docs/design/wal-format.md, "Durability contract"):
- acknowledged => present: every record whose ``append`` returned is there after any
  crash and reopen, with its LSN, type and payload;
- present => submitted: every record present was passed to ``append`` with that LSN
  (a batch whose fsync failed or whose write was torn may survive in whole or in part:
  its bytes reached the file, it was just never acknowledged);
- LSNs are consecutive from 1, and a full disk leaves no bytes of the failed batch.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from stemedb.errors import DiskFullError, ReadOnlyError, StorageError
from stemedb.sys import RealFileSystem
from stemedb.sys.faults import FaultyFileSystem, SimulatedCrash
from stemedb.wal import Wal
from stemedb.wal.format import SEGMENT_HEADER_SIZE_BYTES

SEGMENT_SIZE_BYTES = 256

batches = st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), min_size=1, max_size=6)


class WalModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="wal-model-"))
        self.fs = FaultyFileSystem(RealFileSystem())
        self.wal = self._open()
        self.acknowledged: dict[int, tuple[int, bytes]] = {}
        self.submitted: set[tuple[int, int, bytes]] = set()
        self.disk_full = False

    def teardown(self) -> None:
        self.wal.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _open(self) -> Wal:
        return Wal.open(self.directory, fs=self.fs, segment_size_bytes=SEGMENT_SIZE_BYTES)

    def _submit(self, batch: list[tuple[int, bytes]]) -> None:
        first = self.wal.last_lsn + 1
        for offset, (record_type, payload) in enumerate(batch):
            self.submitted.add((first + offset, record_type, payload))

    def _acknowledge(self, first_lsn: int, batch: list[tuple[int, bytes]]) -> None:
        for offset, record in enumerate(batch):
            self.acknowledged[first_lsn + offset] = record

    def _check_log(self) -> None:
        present = list(self.wal.iter_from(1))
        assert [r.lsn for r in present] == list(range(1, len(present) + 1))
        assert len(present) == self.wal.last_lsn
        for record in present:
            assert (record.lsn, record.type, record.payload) in self.submitted
        for lsn, acknowledged in self.acknowledged.items():
            assert lsn <= len(present), f"acknowledged LSN {lsn} lost"
            assert (present[lsn - 1].type, present[lsn - 1].payload) == acknowledged

    @rule(batch=batches)
    def append(self, batch: list[tuple[int, bytes]]) -> None:
        if self.wal.read_only:
            with pytest.raises(ReadOnlyError):
                self.wal.append(batch)
            return
        sizes_before = {s.path: s.size_bytes for s in self.wal.segments()}
        self._submit(batch)
        try:
            first_lsn = self.wal.append(batch)
        except DiskFullError:
            assert self.disk_full
            # No garbage: old segments keep their size; a segment started for this
            # batch holds only its header.
            for segment in self.wal.segments():
                expected = sizes_before.get(segment.path, SEGMENT_HEADER_SIZE_BYTES)
                assert segment.size_bytes == segment.path.stat().st_size == expected
            return
        self._acknowledge(first_lsn, batch)

    @rule(batch=batches)
    def append_with_failed_fsync(self, batch: list[tuple[int, bytes]]) -> None:
        if self.wal.read_only or self.disk_full:
            return
        self._submit(batch)
        self.fs.fail_fsync(1)
        with pytest.raises(StorageError) as info:
            self.wal.append(batch)
        self.fs.heal_fsync()
        assert info.value.code == "fsync_failed"
        assert self.wal.read_only

    @rule(batch=batches, keep=st.integers(0, 400))
    def crash_during_append(self, batch: list[tuple[int, bytes]], keep: int) -> None:
        if self.wal.read_only:
            return
        self._submit(batch)
        self.fs.tear_write(keep)
        with pytest.raises(SimulatedCrash):
            self.wal.append(batch)
        self.wal.close()
        self.fs.restart()
        self.disk_full = False
        self.wal = self._open()
        self._check_log()

    @rule(budget=st.integers(0, 300))
    def fill_disk(self, budget: int) -> None:
        self.fs.fill_disk(budget)
        self.disk_full = True

    @rule()
    def free_space(self) -> None:
        self.fs.free_space()
        self.disk_full = False

    @rule()
    def reopen(self) -> None:
        self.wal.close()
        self.fs.restart()
        self.disk_full = False
        self.wal = self._open()
        assert not self.wal.read_only
        self._check_log()

    @invariant()
    def acknowledged_records_are_readable(self) -> None:
        self._check_log()


TestWalModel = WalModel.TestCase
TestWalModel.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
