"""The commit step on a shared store (cluster mode, docs/design/cluster.md).

Every HTTP process of every node commits its own batches into the one shared store
(PostgreSQL): per batch, ``with store.batch() as b`` opens a transaction that holds the
store's single LSN row lock; the commit-time checks (``engine.checks.BatchChecker``) run
against ``b``, i.e. against what every node committed, under that lock; the accepted
records get ``b.last_lsn + 1 ..`` and ``committed_at = max(clock, b.last_committed_at)``;
``b.apply`` writes them; leaving the block commits. Waiters are resolved only after the
commit returned. Because the lock is held until the commit, LSN order is commit order
and LSNs are contiguous cluster-wide; a rolled-back batch leaves nothing, so there is no
retry of "durable but unapplied" entries as the WAL writer has.

Commits of the other nodes reach this process through the store's watcher (LISTEN and
a poll): ``observe`` advances ``applied_lsn`` and runs the commit listeners (feed
wake-ups, view invalidation), exactly as for this process's own commits.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Final

from stemedb.engine.checks import BatchChecker
from stemedb.engine.screening import Screener
from stemedb.engine.writer import BatchQueue, CheckedBatch, QueuedItem
from stemedb.errors import StemeError, StorageError, error_type_of
from stemedb.model.kinds import Entry
from stemedb.store.cache import SubjectPredicate
from stemedb.store.protocol import SharedStore
from stemedb.sys.clock import Clock
from stemedb.wal.log import SegmentInfo

log = logging.getLogger("stemedb.engine")

GAP_WAIT_SECONDS: Final = 2.0
"""How long a commit waits for the watcher to deliver other nodes' commits with smaller
LSNs before it advances ``applied_lsn`` past them (normally microseconds: they committed
before this batch took the lock)."""


class SharedCommitWriter(BatchQueue):
    """The cluster-mode commit step: one shared-store transaction per batch."""

    def __init__(
        self,
        store: SharedStore,
        clock: Clock,
        *,
        max_batch: int,
        max_delay_us: int,
        screener: Screener | None = None,
    ) -> None:
        self._store = store
        self._screener = screener
        self._clock = clock
        self._observed = threading.Lock()
        super().__init__(store.seen_lsn(), max_batch=max_batch, max_delay_us=max_delay_us)
        store.add_commit_listener(self.observe)
        self._start()

    def observe(self, lsn: int, touched: set[SubjectPredicate]) -> None:
        """Commits up to ``lsn`` the store's watcher caught up with (any process's,
        this one's too): advance and notify."""
        with self._observed:
            if lsn > self.applied_lsn:
                self._advance(lsn)
            self._notify(lsn, touched)

    def _process(self, batch: list[QueuedItem]) -> None:
        entries: list[Entry] = []
        try:
            with self._store.batch() as txn:
                checked = CheckedBatch(batch, BatchChecker(txn), self._screener)
                if checked.accepted:
                    committed_at = max(self._clock.time(), txn.last_committed_at)
                    entries = checked.entries(txn.last_lsn + 1, committed_at)
                    touched = txn.apply(entries)
        except StemeError as exc:
            _fail(batch, exc if exc.retryable else _retryable(exc))
            return
        except Exception as exc:  # a driver error the store did not translate
            log.exception("Error: %s: batch transaction failed: %s", error_type_of(exc), exc)
            _fail(batch, _retryable(exc))
            return
        if entries:  # committed: visible to every node from now on
            self.stats.add(len(entries))
            self._committed(entries, touched)
        checked.settle(entries)

    def _committed(self, entries: list[Entry], touched: set[SubjectPredicate]) -> None:
        """Advance past this commit once every smaller LSN was observed (the watcher
        delivers other nodes' earlier commits), so ``applied_lsn`` never claims an LSN
        whose changes this process has not absorbed."""
        first, last = entries[0].lsn, entries[-1].lsn
        if self.applied_lsn < first - 1:
            reached = self.wait_for(first - 1, GAP_WAIT_SECONDS)
            if reached < first - 1:
                log.warning(
                    "Error: StorageError: commits %d..%d of other nodes not observed within"
                    " %.1f s; advancing to %d",
                    reached + 1,
                    first - 1,
                    GAP_WAIT_SECONDS,
                    last,
                )
        with self._observed:
            if last > self.applied_lsn:
                self._advance(last)
            self._notify(last, touched)


def _retryable(exc: BaseException) -> StorageError:
    """What the waiters of a batch that did not commit get: retry it (a duplicate of a
    record that did commit after all is then answered ``exists``)."""
    reason = exc.message if isinstance(exc, StemeError) else "the database is unavailable"
    return StorageError(
        f"the batch was not committed ({reason}); retry", code="storage_unavailable"
    )


def _fail(batch: list[QueuedItem], error: StemeError) -> None:
    for _, fut in batch:
        if not fut.done():
            fut.set_exception(error)


class NoWal:
    """What ``Engine.wal`` is in cluster mode: there is no WAL (PostgreSQL's own log is
    the durable record), never read-only, no segments; ``last_lsn`` is the last LSN
    this process knows of."""

    directory: Final = Path()
    read_only: Final = False
    read_only_reason: Final[str | None] = None

    def __init__(self, writer: SharedCommitWriter) -> None:
        self._writer = writer

    @property
    def last_lsn(self) -> int:
        return self._writer.applied_lsn

    def segments(self) -> list[SegmentInfo]:
        return []

    def disk_usage_bytes(self) -> int:
        return 0

    def remove_segments_before(self, lsn: int) -> list[Path]:
        return []
