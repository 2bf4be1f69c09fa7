"""The engine: opens the WAL and the store, replays, and owns the single write path.

Write: validate + compute the id + verify signatures (in a thread pool: libsodium
releases the GIL) -> the group-commit writer -> WAL (one fdatasync per batch) -> store
(one transaction per batch) -> acknowledge.

The engine does not know how many processes run; it has one constructor per way of
running: ``Engine.embedded`` (the WAL, the replay and the group-commit writer in this
process; ``Engine.from_config`` is the same from the configuration),
``Engine.attach`` (the writer runs elsewhere, ``runtime.writer_client`` starts or joins
it, ADR 0002: this process reads the store and keeps its in-memory state from the
writer's deltas) and ``Engine.shared`` (cluster mode: no WAL, this process commits its
own batches into a store every node writes, ``engine.shared``). Each constructor picks
how records are verified (``_WritePath``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Protocol

from stemedb.config import Config
from stemedb.engine.replay import open_and_replay, open_store, replay
from stemedb.engine.screening import screener_for
from stemedb.engine.settings import EngineSettings
from stemedb.engine.shared import NoWal, SharedCommitWriter
from stemedb.engine.submission import Prepared, WriteResult
from stemedb.engine.verify import (
    VERIFY_HERE_RECORDS,
    Outcomes,
    Verifier,
    prepare_record,
    settle,
)
from stemedb.engine.writer import BatchStats, CommitListener, GroupCommitWriter, GroupOutcome
from stemedb.errors import StemeError, StorageError
from stemedb.model.kinds import AnyRecord
from stemedb.store.protocol import SharedStore, Store, StoreWriter
from stemedb.sys.clock import Clock, SystemClock
from stemedb.sys.filesystem import FileSystem
from stemedb.sys.lock import DirectoryLock
from stemedb.wal import Wal, WalObserver
from stemedb.wal.log import SegmentInfo

log = logging.getLogger("stemedb.engine")


class RemoteWal(Protocol):
    """What this process may ask of a WAL another process owns."""

    @property
    def directory(self) -> Path: ...
    @property
    def last_lsn(self) -> int: ...
    @property
    def read_only(self) -> bool: ...
    @property
    def read_only_reason(self) -> str | None: ...
    def segments(self) -> list[SegmentInfo]: ...
    def disk_usage_bytes(self) -> int: ...
    def remove_segments_before(self, lsn: int) -> list[Path]: ...


class RemoteWriter(Protocol):
    """A group-commit writer in another process (``runtime.writer_client.WriterProcess``)."""

    @property
    def applied_lsn(self) -> int: ...
    @property
    def wal(self) -> RemoteWal: ...
    @property
    def replayed(self) -> int: ...
    @property
    def open_seconds(self) -> float: ...
    @property
    def stats(self) -> BatchStats: ...
    def attach(self, store: StoreWriter) -> None: ...
    def submit_group(self, items: Sequence[Prepared]) -> Future[list[GroupOutcome]]: ...
    def submit_records(
        self, records: Sequence[AnyRecord], *, together: bool
    ) -> Future[list[WriteResult | StemeError]] | None: ...
    def catch_up(self, timeout_seconds: float) -> bool: ...
    def add_listener(self, listener: CommitListener) -> None: ...
    def wait_for(self, lsn: int, timeout: float) -> int: ...
    def close(self) -> None: ...


class Engine:
    """One node's storage engine. Thread-safe for writers and readers. Open one with
    ``embedded``, ``from_config``, ``attach`` or ``shared``."""

    wal: Wal | RemoteWal
    writer: GroupCommitWriter | RemoteWriter | SharedCommitWriter

    def __init__(
        self,
        settings: EngineSettings,
        clock: Clock,
        store: Store,
        *,
        lock: DirectoryLock | None,
        replayed: int,
        open_seconds: float,
        started_at: float,
    ) -> None:
        """The parts every way of running shares; a constructor adds the writer."""
        self.settings = settings
        self.clock = clock
        self.max_skew_seconds = settings.signature_max_skew_seconds
        self.started_at = started_at
        self.store = store
        self.replayed = replayed
        self.open_seconds = open_seconds
        self._lock = lock
        self._closed = False
        self._local_wal: Wal | None = None  # the in-process writer's (``rebuild``)
        self._remote: RemoteWriter | None = None
        self._shared: SharedStore | None = None  # cluster mode's store (``shared``)
        self._verifier = Verifier(
            lambda items: self.writer.submit_group(items),  # rebuild() replaces the writer
            self.clock.time,
            max_skew_seconds=settings.signature_max_skew_seconds,
            threads=settings.verify_threads,
        )
        self._writes: _WritePath = _VerifiedHere(self._verifier)

    # -- constructors --------------------------------------------------------------

    @classmethod
    def embedded(
        cls,
        data_dir: Path,
        settings: EngineSettings | None = None,
        *,
        fs: FileSystem | None = None,
        clock: Clock | None = None,
        observer: WalObserver | None = None,
    ) -> Engine:
        """The WAL, the replay and the group-commit writer in this process (``fs``,
        ``clock``: the test seams, which only this way of running has)."""
        settings = settings or EngineSettings()
        clock = clock or SystemClock()
        started_at, started = clock.time(), time.monotonic()
        opened = open_and_replay(data_dir, settings, fs=fs, clock=clock, observer=observer)
        engine = cls(
            settings,
            clock,
            opened.store,
            lock=opened.lock,
            replayed=opened.replayed,
            open_seconds=time.monotonic() - started,
            started_at=started_at,
        )
        engine.wal = engine._local_wal = opened.wal
        engine.writer = engine._start_writer()
        return engine

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        fs: FileSystem | None = None,
        clock: Clock | None = None,
        observer: WalObserver | None = None,
    ) -> Engine:
        """``embedded`` with the configuration's settings (``EngineSettings.from_config``)."""
        settings = EngineSettings.from_config(config)
        return cls.embedded(config.data_dir, settings, fs=fs, clock=clock, observer=observer)

    @classmethod
    def attach(
        cls,
        writer: RemoteWriter,
        data_dir: Path,
        settings: EngineSettings | None = None,
        *,
        verify_in_writer: bool,
    ) -> Engine:
        """Read ``data_dir``'s store beside ``writer``, which runs in another process and
        holds the data directory's lock; closes ``writer`` if the store does not open.
        ``verify_in_writer``: coalesced single writes are verified by the writer process
        (the only HTTP process), else here (one of several, ``_SmallGroupsHere``)."""
        settings = settings or EngineSettings()
        started_at = time.time()
        try:
            store = open_store(data_dir, settings)
        except BaseException:
            writer.close()
            raise
        writer.attach(store)
        engine = cls(
            settings,
            SystemClock(),
            store,
            lock=None,
            replayed=writer.replayed,
            open_seconds=writer.open_seconds,
            started_at=started_at,
        )
        engine.wal, engine.writer, engine._remote = writer.wal, writer, writer
        if verify_in_writer:
            engine._writes = _VerifiedInWriter(engine._verifier, writer)
        else:
            engine._writes = _SmallGroupsHere(engine._verifier)
        return engine

    @classmethod
    def shared(
        cls,
        store: SharedStore,
        settings: EngineSettings | None = None,
        *,
        clock: Clock | None = None,
    ) -> Engine:
        """Cluster mode: commit into ``store``, which other processes and nodes write
        too (opened by ``runtime.topology``); no WAL, no replay, no directory lock. The
        engine owns ``store`` from here on (closes it)."""
        settings = settings or EngineSettings()
        clock = clock or SystemClock()
        started_at, started = clock.time(), time.monotonic()
        try:
            writer = SharedCommitWriter(
                store,
                clock,
                max_batch=settings.group_commit_max_batch,
                max_delay_us=settings.group_commit_max_delay_us,
                screener=screener_for(settings.defence, store),
            )
        except BaseException:
            store.close()
            raise
        engine = cls(
            settings,
            clock,
            store,
            lock=None,
            replayed=0,
            open_seconds=time.monotonic() - started,
            started_at=started_at,
        )
        engine.wal, engine.writer, engine._shared = NoWal(writer), writer, store
        return engine

    def _start_writer(self) -> GroupCommitWriter:
        assert self._local_wal is not None
        return GroupCommitWriter(
            self._local_wal,
            self.store,
            self.clock,
            max_batch=self.settings.group_commit_max_batch,
            max_delay_us=self.settings.group_commit_max_delay_us,
            screener=screener_for(self.settings.defence, self.store),
        )

    def catch_up(self, timeout_seconds: float) -> bool:
        """Absorb what another HTTP process may have acknowledged (``api.workers``);
        False if that took longer than ``timeout_seconds``."""
        remote = self._remote
        return remote is None or remote.catch_up(timeout_seconds)

    # -- recovery ------------------------------------------------------------------

    def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        """Drop the store's derived rows and rebuild them from the WAL (writer paused)."""
        wal = self._local_wal
        if wal is None:
            raise StorageError(
                "rebuild needs the in-process writer of an embedded node", code="not_supported"
            )
        self.writer.close()
        self.store.reset()
        count = replay(wal, self.store)
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

    def write(self, record: AnyRecord) -> WriteResult:
        """Validate, verify, commit durably; raise the record's error."""
        return _single(self._writes.submit([record], together=True).result())

    def write_many(self, records: Sequence[AnyRecord]) -> Outcomes:
        """Commit many records in as few group commits as possible; errors per item."""
        return self._writes.submit(records, together=True).result()

    async def write_async(self, record: AnyRecord) -> WriteResult:
        future = self._writes.submit([record], together=True)
        return _single(await asyncio.wrap_future(future))

    async def write_many_async(self, records: Sequence[AnyRecord]) -> Outcomes:
        return await asyncio.wrap_future(self._writes.submit(records, together=True))

    async def write_each_async(self, records: Sequence[AnyRecord]) -> Outcomes:
        """Like ``write_many_async`` for records that do not belong together (coalesced
        single writes): each chunk is committed as soon as it is verified, so chunks may
        land in different group commits; results in order."""
        return await asyncio.wrap_future(self._writes.submit(records, together=False))

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

    def committed_lsn(self) -> int:
        """The last LSN committed by any node (embedded: this node's ``applied_lsn``;
        cluster mode: the database's, read from it)."""
        shared = self._shared
        return self.applied_lsn if shared is None else shared.applied_lsn()

    def wait_readable(self, min_lsn: int, timeout: float) -> bool:
        """Block until reads through this engine reflect every commit up to
        ``min_lsn`` (read-your-writes: the ``lsn`` a write answered, from any node),
        at most ``timeout`` seconds; False if they do not by then. Cluster mode: this
        process has absorbed it and the read connections (a standby with
        ``storage.read_from = "replica"``) show it."""
        started = time.monotonic()
        if self.writer.wait_for(min_lsn, timeout) < min_lsn:
            return False
        shared = self._shared
        if shared is None:
            return True
        left = max(0.0, timeout - (time.monotonic() - started))
        try:
            shared.wait_for_lsn(min_lsn, left)
        except StorageError as exc:
            if exc.code == "lsn_wait_timeout":
                return False
            raise
        return True

    def close(self) -> None:
        """Finish in-flight group commits, then close the WAL and the store."""
        if self._closed:
            return
        self._closed = True
        self._verifier.close()  # what is being verified still reaches the writer
        self.writer.close()
        if self._local_wal is not None:
            self._local_wal.close()
        self.store.close()
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- where records are verified: one object per way of running, chosen by the constructor


class _WritePath(Protocol):
    def submit(self, records: Sequence[AnyRecord], *, together: bool) -> Future[Outcomes]:
        """Verify and commit ``records``; ``together``: in one group commit (a batch)."""
        ...


class _VerifiedHere:
    """The writer in this process: every record is verified on this process's pool."""

    __slots__ = ("submit",)

    def __init__(self, verifier: Verifier) -> None:
        self.submit = verifier.submit


class _VerifiedInWriter:
    """The writer process and one HTTP process: records that do not belong together
    (coalesced single writes, which arrive while the event loop is busy) are verified
    there, under its own GIL; batches here, where the loop is idle between a few large
    requests: both processes' cores verify (ADR 0008)."""

    __slots__ = ("_verifier", "_writer")

    def __init__(self, verifier: Verifier, writer: RemoteWriter) -> None:
        self._verifier = verifier
        self._writer = writer

    def submit(self, records: Sequence[AnyRecord], *, together: bool) -> Future[Outcomes]:
        if not together:
            sent = self._writer.submit_records(records, together=False)
            if sent is not None:
                return sent
        return self._verifier.submit(records, together=together)


class _SmallGroupsHere:
    """One of several HTTP processes: each verifies everything it receives (they already
    use both cores, and the writer's commit thread then has its GIL to itself); a small
    group of single writes is verified right here, in the event loop, without the hop
    to a verify thread and back (both measured in ADR 0008)."""

    __slots__ = ("_verifier",)

    def __init__(self, verifier: Verifier) -> None:
        self._verifier = verifier

    def submit(self, records: Sequence[AnyRecord], *, together: bool) -> Future[Outcomes]:
        if not together and len(records) <= VERIFY_HERE_RECORDS:
            return self._verifier.submit_here(records)
        return self._verifier.submit(records, together=together)


def _single(outcomes: Outcomes) -> WriteResult:
    (outcome,) = outcomes
    return _result(outcome)


def _nth_result(group: Future[list[GroupOutcome]], index: int) -> WriteResult:
    return _result(group.result()[index])


def _result(outcome: GroupOutcome) -> WriteResult:
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
