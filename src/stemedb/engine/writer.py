"""The group-commit writer (ARCHITECTURE §3), with a pluggable commit step.

One thread drains the queue (up to ``max_batch`` records, waiting at most
``max_delay_us`` for more once something is queued) and hands each batch to the commit
step, which checks each record against the stored state and the batch so far, makes the
accepted ones durable and visible, and only then resolves every waiter. A success
therefore means durable and visible. ``BatchQueue`` is the queue and the thread; the
step is its ``_process``:

- ``GroupCommitWriter`` (embedded): append to the WAL with ONE fdatasync, then apply to
  the store in ONE transaction that records ``applied_lsn``.
- ``engine.shared.SharedCommitWriter`` (cluster mode): one transaction of the shared
  store per batch, the checks and the LSNs under its row lock (docs/design/cluster.md).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Final

from stemedb.engine.checks import BatchChecker, Existing
from stemedb.engine.codec import encode_payload
from stemedb.engine.screening import Screener
from stemedb.engine.submission import Prepared, WriteResult
from stemedb.errors import ReadOnlyError, StemeError, StorageError, error_type_of
from stemedb.model.ids import quarantine_id
from stemedb.model.kinds import Entry, RecordKind
from stemedb.model.records import Assertion, TrustOutcome
from stemedb.store.cache import SubjectPredicate
from stemedb.store.protocol import StoreWriter
from stemedb.sys.clock import Clock
from stemedb.wal import Wal

log = logging.getLogger("stemedb.engine")

WRITER_THREAD_NAME: Final = "stemedb-writer"
UNAPPLIED_RETRY_SECONDS: Final = 0.1


CommitListener = Callable[[int, set[SubjectPredicate]], None]
GroupOutcome = WriteResult | BaseException


class _Group:
    """Records submitted together and resolved with ONE future (a list of outcomes in
    submission order): a ``Future`` per record costs several microseconds of GIL time."""

    __slots__ = ("future", "remaining", "results")

    def __init__(self, count: int) -> None:
        self.future: Future[list[GroupOutcome]] = Future()
        self.results: list[GroupOutcome] = [_UNSET] * count
        self.remaining = count
        if count == 0:
            self.future.set_result([])

    def settle(self, index: int, outcome: GroupOutcome) -> None:
        self.results[index] = outcome
        self.remaining -= 1
        if self.remaining == 0:
            self.future.set_result(self.results)


class _GroupSlot:
    """One record's place in a ``_Group``; touched only by the writer thread."""

    __slots__ = ("_done", "_group", "_index")

    def __init__(self, group: _Group, index: int) -> None:
        self._group = group
        self._index = index
        self._done = False

    def set_result(self, result: WriteResult) -> None:
        self._settle(result)

    def set_exception(self, exception: BaseException) -> None:
        self._settle(exception)

    def done(self) -> bool:
        return self._done

    def _settle(self, outcome: GroupOutcome) -> None:
        if not self._done:
            self._done = True
            self._group.settle(self._index, outcome)


QueuedItem = tuple[Prepared, _GroupSlot]  # a record and where the writer puts its outcome
_UNSET: Final = StorageError("no outcome recorded", code="internal")


class BatchStats:
    """Counters of the writer, read by metrics and benchmarks."""

    def __init__(self) -> None:
        self.batches = 0
        self.records = 0
        self.batch_sizes: dict[int, int] = {}

    def add(self, size: int) -> None:
        self.batches += 1
        self.records += size
        self.batch_sizes[size] = self.batch_sizes.get(size, 0) + 1


class CommitNotices:
    """``applied_lsn``, waiting for it, and the commit listeners: what readers see of a
    writer, in-process (``GroupCommitWriter``) or in the writer process."""

    def __init__(self, applied_lsn: int) -> None:
        self.applied_lsn = applied_lsn
        self._applied = threading.Condition()
        self._listeners: list[CommitListener] = []

    def add_listener(self, listener: CommitListener) -> None:
        self._listeners.append(listener)

    def wait_for(self, lsn: int, timeout: float) -> int:
        """Block until ``applied_lsn >= lsn`` or the timeout passes; return applied_lsn."""
        with self._applied:
            self._applied.wait_for(lambda: self.applied_lsn >= lsn, timeout=timeout)
            return self.applied_lsn

    def _advance(self, lsn: int) -> None:
        with self._applied:
            self.applied_lsn = lsn
            self._applied.notify_all()

    def _notify(self, lsn: int, touched: set[SubjectPredicate]) -> None:
        """Run the listeners (view invalidation, feed wake-ups): before anyone is
        acknowledged; a failing listener is logged, not fatal."""
        for listener in self._listeners:
            try:
                listener(lsn, touched)
            except Exception as exc:
                log.exception("Error: %s: commit listener failed: %s", error_type_of(exc), exc)


class BatchQueue(CommitNotices):
    """The queue and the writer thread; a subclass's ``_process`` commits one batch
    (and settles every item of it, whatever happens)."""

    def __init__(self, applied_lsn: int, *, max_batch: int, max_delay_us: int) -> None:
        self._max_batch = max(1, max_batch)
        self._max_delay_seconds = max(0, max_delay_us) / 1e6
        super().__init__(applied_lsn)
        self._queue: queue.SimpleQueue[list[QueuedItem] | None] = queue.SimpleQueue()
        self.stats = BatchStats()
        self._thread = threading.Thread(target=self._run, name=WRITER_THREAD_NAME, daemon=True)
        self._running = True

    def _start(self) -> None:
        self._thread.start()

    # -- public --------------------------------------------------------------------

    def submit_group(self, items: Sequence[Prepared]) -> Future[list[GroupOutcome]]:
        """Like ``submit`` but one future for all: it resolves, once every record is
        done, to a list of ``WriteResult`` or the record's exception, in order."""
        group = _Group(len(items))
        slots = [_GroupSlot(group, i) for i in range(len(items))]
        if not self._running:
            for slot in slots:
                slot.set_exception(StorageError("the engine is closed", code="closed"))
            return group.future
        if items:
            self._queue.put(list(zip(items, slots, strict=True)))
        return group.future

    def close(self) -> None:
        """Finish every queued batch, then stop."""
        if not self._running:
            return
        self._running = False
        self._queue.put(None)
        self._thread.join()

    # -- the writer thread ---------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch, stop = self._collect()
            if batch:
                try:
                    self._process(batch)
                except Exception as exc:  # never leave a waiter hanging
                    log.exception("Error: %s: group commit failed: %s", error_type_of(exc), exc)
                    error = exc if isinstance(exc, StemeError) else StorageError(str(exc))
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(error)
            if stop:
                return

    def _collect(self) -> tuple[list[QueuedItem], bool]:
        first = self._next()
        if first is None:
            return [], True
        batch = list(first)
        deadline = time.monotonic() + self._max_delay_seconds
        while len(batch) < self._max_batch:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    more = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if more is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.extend(more)
        return batch, False

    def _next(self) -> list[QueuedItem] | None:
        """The next queued item (None: stop)."""
        return self._queue.get()

    def _process(self, batch: list[QueuedItem]) -> None:
        raise NotImplementedError


class CheckedBatch:
    """One batch after the commit-time checks: which records are accepted (to get
    LSNs, in batch order) and every item's outcome, settled once the batch committed."""

    __slots__ = ("accepted", "checker", "items", "outcomes")

    def __init__(
        self, items: list[QueuedItem], checker: BatchChecker, screener: Screener | None = None
    ) -> None:
        self.items = items
        self.checker = checker
        self.accepted: list[Prepared] = []
        self.outcomes: list[Existing | StemeError | int] = []  # int = index into accepted
        checker.prefetch_assertions(
            [item.record_id for item, _ in items if item.kind is RecordKind.ASSERTION]
        )
        for item, _ in items:
            outcome = checker.check(item.kind, item.record_id, item.record)
            if outcome is None:
                self.outcomes.append(len(self.accepted))
                self.accepted.append(item)
                if screener is not None:
                    self._screen(screener, item)
            else:
                self.outcomes.append(outcome)  # an error, or an existing / in-batch duplicate

    def _screen(self, screener: Screener, item: Prepared) -> None:
        """The screening step (ADR 0023): its quarantine decisions go into the batch
        right after the assertion, as records of their own (no waiter)."""
        record = item.record
        if type(record) is Assertion:
            for decision in screener.screen(item.record_id, record):
                self.accepted.append(
                    Prepared(RecordKind.QUARANTINE, quarantine_id(decision), decision)
                )
                self.checker.count_derived()
        elif type(record) is TrustOutcome:
            screener.observe_outcome(record)

    def entries(self, first_lsn: int, committed_at: float) -> list[Entry]:
        """The accepted records as entries from ``first_lsn`` on."""
        self.checker.assign_lsns(first_lsn)
        return [
            Entry(first_lsn + i, p.kind, p.record_id, p.record, committed_at)
            for i, p in enumerate(self.accepted)
        ]

    def fail(self, error: StemeError) -> None:
        for _, fut in self.items:
            fut.set_exception(error)

    def settle(self, entries: list[Entry]) -> None:
        """Resolve every waiter: only once ``entries`` are durable and visible."""
        for (_, fut), result in zip(self.items, self.outcomes, strict=True):
            if isinstance(result, int):
                entry = entries[result]
                fut.set_result(WriteResult(entry.record_id, entry.lsn, "created"))
            elif isinstance(result, StemeError):
                fut.set_exception(result)
            else:
                fut.set_result(self.checker.resolve(result))


class GroupCommitWriter(BatchQueue):
    """The embedded commit step: the WAL (one fdatasync per batch), then the store."""

    def __init__(
        self,
        wal: Wal,
        store: StoreWriter,
        clock: Clock,
        *,
        max_batch: int,
        max_delay_us: int,
        screener: Screener | None = None,
    ) -> None:
        self._wal = wal
        self._screener = screener
        self._store = store
        self._clock = clock
        super().__init__(store.applied_lsn(), max_batch=max_batch, max_delay_us=max_delay_us)
        self._unapplied: list[Entry] = []
        self._last_committed_at = 0.0
        self._start()

    def _next(self) -> list[QueuedItem] | None:
        """The next queued item; while durable entries wait to be applied to the store
        (its last transaction failed), retry them every ``UNAPPLIED_RETRY_SECONDS`` so
        they become visible without waiting for another write."""
        while self._unapplied:
            try:
                return self._queue.get(timeout=UNAPPLIED_RETRY_SECONDS)
            except queue.Empty:
                try:
                    self._apply(self._unapplied)
                except StemeError as exc:
                    log.warning("Error: %s: store catch-up failed: %s", exc.type_name, exc.message)
        return self._queue.get()

    def _process(self, batch: list[QueuedItem]) -> None:
        if self._wal.read_only:
            error = ReadOnlyError(
                f"the node is read-only: {self._wal.read_only_reason}; restart it",
                retryable=False,
            )
            for _, fut in batch:
                fut.set_exception(error)
            return
        if self._unapplied:  # a previous store transaction failed: catch up first
            self._apply(self._unapplied)
        checked = CheckedBatch(batch, BatchChecker(self._store), self._screener)
        entries: list[Entry] = []
        touched: set[SubjectPredicate] = set()
        if checked.accepted:
            committed_at = max(self._clock.time(), self._last_committed_at)
            self._last_committed_at = committed_at
            frames = [
                (int(p.kind), encode_payload(p.record_id, committed_at, p.record))
                for p in checked.accepted
            ]
            try:
                first_lsn = self._wal.append(frames)
            except StemeError as exc:
                checked.fail(exc)
                return
            entries = checked.entries(first_lsn, committed_at)
            self.stats.add(len(entries))
            try:
                touched = self._apply(entries)
            except StemeError as exc:
                checked.fail(exc)
                return
            self._notify(entries[-1].lsn, touched)
        checked.settle(entries)

    def _apply(self, entries: list[Entry]) -> set[SubjectPredicate]:
        """Apply durable entries; on failure keep them to retry before the next batch."""
        try:
            touched = self._store.apply(entries)
        except StemeError:
            self._unapplied = entries
            raise
        self._unapplied = []
        self._advance(entries[-1].lsn)
        return touched
