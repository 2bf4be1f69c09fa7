"""The engine: opens the WAL and the store, replays, and owns the single write path.

Write: validate + compute the id + verify signatures (in a thread pool: libsodium
releases the GIL) -> the group-commit writer -> WAL (one fdatasync per batch) -> store
(one transaction per batch) -> acknowledge. With ``writer_process=True`` the WAL, the
replay and the group-commit writer run in a process of their own (``runtime``,
ADR 0002) and this process reads the store.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Final

from stemedb.config import Config
from stemedb.engine.replay import open_and_replay, replay
from stemedb.engine.submission import Prepared, WriteResult
from stemedb.engine.verify import (
    VERIFY_HERE_RECORDS,
    Outcomes,
    Verifier,
    prepare_record,
    settle,
)
from stemedb.engine.writer import CommitListener, GroupCommitWriter, GroupOutcome
from stemedb.errors import StorageError
from stemedb.model.kinds import AnyRecord
from stemedb.runtime.protocol import WriterSettings
from stemedb.runtime.writer_client import RemoteWal, WriterProcess
from stemedb.store.sqlite import SqliteStore
from stemedb.sys.clock import Clock, SystemClock
from stemedb.sys.filesystem import FileSystem
from stemedb.sys.lock import DirectoryLock
from stemedb.wal import Wal, WalObserver

log = logging.getLogger("stemedb.engine")

APPLIED_LSN_FILE: Final = "writer.lsn"


def applied_lsn_path(data_dir: Path) -> Path:
    """Where the writer process shares its applied LSN with several HTTP processes."""
    return data_dir / APPLIED_LSN_FILE


class Engine:
    """One node's storage engine. Thread-safe for writers and readers."""

    def __init__(
        self,
        data_dir: Path,
        *,
        wal_dir: Path | None = None,
        fs: FileSystem | None = None,
        clock: Clock | None = None,
        segment_size_bytes: int = 64 * 1024 * 1024,
        group_commit_max_batch: int = 1024,
        group_commit_max_delay_us: int = 200,
        fsync: bool = True,
        cache_bytes: int = 64 * 1024 * 1024,
        busy_timeout_ms: int = 5000,
        signature_max_skew_seconds: int = 300,
        verify_threads: int = 2,
        wal_observer: WalObserver | None = None,
        writer_process: bool = False,
        http_processes: int = 1,
        writer_link: socket.socket | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.max_skew_seconds = signature_max_skew_seconds
        self.started_at = self.clock.time()
        self._group_commit = (group_commit_max_batch, group_commit_max_delay_us)
        self._cache_bytes, self._busy_timeout_ms = cache_bytes, busy_timeout_ms
        self._closed = False
        # Coalesced single writes are verified in the writer process when one HTTP
        # process sends them all; with several, each verifies its own (see ``_writes``).
        self._single_writes_verified_by_writer = writer_link is None and http_processes == 1
        self._verifier = Verifier(
            lambda items: self.writer.submit_group(items),  # rebuild() replaces the writer
            self.clock.time,
            max_skew_seconds=signature_max_skew_seconds,
            threads=verify_threads,
        )
        self.wal: Wal | RemoteWal
        self.writer: GroupCommitWriter | WriterProcess
        if writer_link is not None:  # another HTTP process's engine (``api.workers``)
            self._join_writer_process(writer_link, data_dir, wal_dir or data_dir / "wal")
            return
        if writer_process:
            if fs is not None or clock is not None:
                raise ValueError("fs and clock are test seams of the in-process writer")
            self._open_writer_process(
                WriterSettings(
                    data_dir=str(data_dir), wal_dir=str(wal_dir or data_dir / "wal"),
                    segment_size_bytes=segment_size_bytes,
                    group_commit_max_batch=group_commit_max_batch,
                    group_commit_max_delay_us=group_commit_max_delay_us, fsync=fsync,
                    cache_bytes=cache_bytes, busy_timeout_ms=busy_timeout_ms,
                    max_skew_seconds=signature_max_skew_seconds, verify_threads=verify_threads,
                    log_level=logging.getLevelName(logging.getLogger().level).lower(),
                    applied_lsn_file=(
                        str(applied_lsn_path(data_dir)) if http_processes > 1 else ""
                    ),
                ),
                wal_observer,
                http_processes,
            )  # fmt: skip
            return
        started = time.monotonic()
        opened = open_and_replay(
            data_dir, wal_dir or data_dir / "wal", fs=fs, clock=self.clock,
            segment_size_bytes=segment_size_bytes, fsync=fsync, observer=wal_observer,
            cache_bytes=cache_bytes, busy_timeout_ms=busy_timeout_ms,
        )  # fmt: skip
        self._lock: DirectoryLock | None = opened.lock
        self.wal, self.store, self.replayed = opened.wal, opened.store, opened.replayed
        self.open_seconds = time.monotonic() - started
        self.writer = self._start_writer()

    def _open_writer_process(
        self, settings: WriterSettings, observer: WalObserver | None, links: int
    ) -> None:
        """The WAL, the replay and group commit in ``runtime.writer_process``'s process; this
        process reads the store and keeps its in-memory state from the writer's deltas.
        ``links`` > 1: the writer also serves that many HTTP processes less one, each
        through a link of ``writer.spare_links`` (``Engine(writer_link=...)``)."""
        writer = WriterProcess.spawn(settings, observer=observer, links=links)
        self._attach(writer, Path(settings.data_dir))

    def _join_writer_process(self, link: socket.socket, data_dir: Path, wal_dir: Path) -> None:
        self._attach(WriterProcess.join(link, wal_dir, applied_lsn_path(data_dir)), data_dir)

    def _attach(self, writer: WriterProcess, data_dir: Path) -> None:
        self._lock = None  # the writer process holds the data directory's lock
        try:
            self.store = SqliteStore(
                data_dir, cache_bytes=self._cache_bytes, busy_timeout_ms=self._busy_timeout_ms
            )
        except BaseException:
            writer.close()
            raise
        writer.attach(self.store)
        self.writer, self.wal = writer, writer.wal
        self.replayed, self.open_seconds = writer.replayed, writer.open_seconds

    def catch_up(self, timeout_seconds: float) -> bool:
        """Absorb what another HTTP process may have acknowledged (``api.workers``);
        False if that took longer than ``timeout_seconds``."""
        writer = self.writer
        return not isinstance(writer, WriterProcess) or writer.catch_up(timeout_seconds)

    def _start_writer(self) -> GroupCommitWriter:
        assert isinstance(self.wal, Wal)
        max_batch, max_delay_us = self._group_commit
        return GroupCommitWriter(
            self.wal, self.store, self.clock, max_batch=max_batch, max_delay_us=max_delay_us
        )

    @classmethod
    def from_config(cls, config: Config, **overrides: object) -> Engine:
        kwargs: dict[str, object] = {
            "wal_dir": config.wal_dir,
            "segment_size_bytes": config.wal.segment_size_bytes,
            "group_commit_max_batch": config.wal.group_commit_max_batch,
            "group_commit_max_delay_us": config.wal.group_commit_max_delay_us,
            "fsync": config.wal.fsync,
            "cache_bytes": config.storage.cache_size_mb * 1024 * 1024,
            "busy_timeout_ms": config.storage.busy_timeout_ms,
            "signature_max_skew_seconds": config.auth.signature_max_skew_seconds,
        }
        kwargs.update(overrides)
        return cls(config.data_dir, **kwargs)  # type: ignore[arg-type]

    # -- recovery ------------------------------------------------------------------

    def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        """Drop the store's derived rows and rebuild them from the WAL (writer paused)."""
        if not isinstance(self.wal, Wal):
            raise StorageError("rebuild needs the in-process writer", code="not_supported")
        self.writer.close()
        self.store.reset()
        count = replay(self.wal, self.store)
        if progress:
            progress(count)
        self.writer = self._start_writer()
        return count

    # -- the write path ------------------------------------------------------------

    def prepare(self, record: AnyRecord) -> Prepared:
        """Validate, compute the content id and verify every signature (CPU-bound)."""
        return prepare_record(record, self.clock.time(), self.max_skew_seconds)

    def submit(self, items: Sequence[Prepared]) -> list[Future[WriteResult]]:
        """Commit records already prepared: a future each (raises the record's error)."""
        futures: list[Future[WriteResult]] = [Future() for _ in items]

        def split(group: Future[list[GroupOutcome]]) -> None:
            for index, future in enumerate(futures):
                settle(future, partial(_nth_result, group, index))

        self.writer.submit_group(items).add_done_callback(split)
        return futures

    def _writes(self, records: Sequence[AnyRecord], *, together: bool) -> Future[Outcomes]:
        """Verify and commit. With the writer process and one HTTP process, records
        that do not belong together (coalesced single writes, which arrive while the
        event loop is busy) are verified there, under its own GIL; batches here, where
        the loop is idle between a few large requests: both processes' cores verify.
        With several HTTP processes each verifies everything it receives: they already
        use both cores, and the writer's commit thread then has its GIL to itself; a
        small group of single writes is verified right here, in the event loop, without
        the hop to a verify thread and back (both measured in docs/performance.md)."""
        if isinstance(self.writer, WriterProcess) and not together:
            if self._single_writes_verified_by_writer:
                sent = self.writer.submit_records(records, together=False)
                if sent is not None:
                    return sent
            elif len(records) <= VERIFY_HERE_RECORDS:
                return self._verifier.submit_here(records)
        return self._verifier.submit(records, together=together)

    def write(self, record: AnyRecord) -> WriteResult:
        """Validate, verify, commit durably; raise the record's error."""
        return _single(self._writes([record], together=True).result())

    def write_many(self, records: Sequence[AnyRecord]) -> Outcomes:
        """Commit many records in as few group commits as possible; errors per item."""
        return self._writes(records, together=True).result()

    async def write_async(self, record: AnyRecord) -> WriteResult:
        return _single(await asyncio.wrap_future(self._writes([record], together=True)))

    async def write_many_async(self, records: Sequence[AnyRecord]) -> Outcomes:
        return await asyncio.wrap_future(self._writes(records, together=True))

    async def write_each_async(self, records: Sequence[AnyRecord]) -> Outcomes:
        """Like ``write_many_async`` for records that do not belong together (coalesced
        single writes): each chunk is committed as soon as it is verified, so chunks may
        land in different group commits; results in order."""
        return await asyncio.wrap_future(self._writes(records, together=False))

    # -- state ---------------------------------------------------------------------

    @property
    def applied_lsn(self) -> int:
        return self.writer.applied_lsn

    @property
    def read_only(self) -> bool:
        return self.wal.read_only

    @property
    def read_only_reason(self) -> str | None:
        return self.wal.read_only_reason

    def add_commit_listener(self, listener: CommitListener) -> None:
        self.writer.add_listener(listener)

    def wait_for_lsn(self, lsn: int, timeout: float) -> int:
        return self.writer.wait_for(lsn, timeout)

    def close(self) -> None:
        """Finish in-flight group commits, then close the WAL and the store."""
        if self._closed:
            return
        self._closed = True
        self._verifier.close()  # what is being verified still reaches the writer
        self.writer.close()
        if isinstance(self.wal, Wal):
            self.wal.close()
        self.store.close()
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _single(outcomes: Outcomes) -> WriteResult:
    (outcome,) = outcomes
    return _result(outcome)


def _nth_result(group: Future[list[GroupOutcome]], index: int) -> WriteResult:
    return _result(group.result()[index])


def _result(outcome: GroupOutcome) -> WriteResult:
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
