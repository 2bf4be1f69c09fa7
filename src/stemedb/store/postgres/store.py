"""``PostgresStore``: the ``SharedStore`` of cluster mode on PostgreSQL 15.

Every process of every node opens its own. Writes go through ``batch()`` (one
transaction holding the lock of the ``stemedb_lsn`` row, see ``apply``); reads through
a pool on the primary, or on a standby with ``read_from="replica"``. What the store
keeps in memory (trust scores, retracted sources, replaced epochs — read on every query
— and the result cache) follows this store's own batches at once and every other
node's through the ``Watcher`` (``LISTEN stemedb_commit`` + a poll every ``poll_ms``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypedDict, TypeVar, Unpack

import psycopg

from stemedb.errors import StorageError
from stemedb.model.kinds import Entry, RecordKind
from stemedb.model.records import Assertion
from stemedb.store.cache import ResultCache, SubjectPredicate
from stemedb.store.postgres import audit, quarantine, records, search
from stemedb.store.postgres.apply import LOCK_LSN_ROW, Batch
from stemedb.store.postgres.apply import reset as reset_tables
from stemedb.store.postgres.changes import MemoryState, touched_between
from stemedb.store.postgres.connection import (
    DEFAULT_POOL_SIZE,
    Conn,
    Pool,
    is_connection_error,
    primary_dsn,
    replica_dsn,
    translate_error,
)
from stemedb.store.postgres.lookups import Lookups
from stemedb.store.postgres.migrations import check_schema
from stemedb.store.postgres.watcher import DEFAULT_POLL_MS, Watcher
from stemedb.store.protocol import AuditRow, CommitListener, StoreDelta, ViewRow

if TYPE_CHECKING:
    from stemedb.store.protocol import SharedBatch, SharedStore
from stemedb.store.rows import (
    CandidateRow,
    ChangeRow,
    EpochRow,
    PredicateRow,
    QuarantineRow,
    SearchRow,
    SignatureRow,
    SourceRow,
    SubjectRow,
    SupersessionRow,
    TrustRow,
    VoteRow,
)
from stemedb.store.trust import TRUST_INITIAL, relaxed_trust

log = logging.getLogger("stemedb.store.postgres")

DEFAULT_CACHE_BYTES: Final = 64 * 1024 * 1024
WAIT_FOR_LSN_POLL_SECONDS: Final = 0.01
CATCH_UP_CHUNK: Final = 50_000  # LSNs per catch-up query (and per listener call)
ReadFrom = Literal["primary", "replica"]
T = TypeVar("T")


class PostgresOptions(TypedDict, total=False):
    """How a ``PostgresStore`` opens (every key optional)."""

    read_from: ReadFrom
    """``"primary"`` (default) or ``"replica"``: queries on ``read_dsn`` (default: the
    DSN) with ``target_session_attrs=prefer-standby``."""
    read_dsn: str | None
    pool_size: int
    """Connections per pool (default 4; a second pool for replica reads)."""
    cache_bytes: int
    auto_migrate: bool
    """Apply pending migrations on open instead of refusing (default False)."""
    watch: bool
    """Start the commit watcher (default True; off: only this object's batches and
    ``absorb`` refresh the memory state, ``start_watching`` starts it later)."""
    poll_ms: int
    """The watcher's poll of ``last_lsn`` (default 1000): the staleness bound."""
    path: Path | None
    """A local directory for disk-free figures (``StoreStats.path``)."""


class PostgresStore:
    """The records, views and audit log of a cluster in one PostgreSQL database."""

    backend: Final = "postgres"

    def __init__(self, dsn: str, **options: Unpack[PostgresOptions]) -> None:
        """``dsn``: the libpq DSN or URL of the primary (multi-host allowed; writes
        always ask for ``target_session_attrs=read-write``); ``options``: see
        ``PostgresOptions``."""
        read_from = options.get("read_from", "primary")
        read_dsn = options.get("read_dsn")
        pool_size = options.get("pool_size", DEFAULT_POOL_SIZE)
        cache_bytes = options.get("cache_bytes", DEFAULT_CACHE_BYTES)
        auto_migrate = options.get("auto_migrate", False)
        poll_ms = options.get("poll_ms", DEFAULT_POLL_MS)
        path = options.get("path")
        self.dsn = dsn
        self.read_from = read_from
        self.path = path or Path.cwd() / "postgres"
        check_schema(dsn, auto_migrate=auto_migrate)
        self.cache = ResultCache(cache_bytes)
        self.delta_hook: Callable[[StoreDelta], None] | None = None
        self._lookups = Lookups()
        self._write = Pool(primary_dsn(dsn), size=pool_size, name="stemedb-write")
        self._read = self._write
        if read_from == "replica":
            try:
                self._read = Pool(replica_dsn(read_dsn or dsn), size=pool_size, name="stemedb-read")
            except StorageError:
                self._write.close()
                raise
        self._memory = MemoryState()
        self._listeners: list[CommitListener] = []
        self._catch_up_lock = threading.Lock()
        self._closed = False
        self._seen = self._read.run("open", self._load)
        self._poll_ms = poll_ms
        self._watcher: Watcher | None = None
        if options.get("watch", True):
            self.start_watching()

    def _load(self, conn: Conn) -> int:
        """The memory state from the tables, and the LSN it is current at (one snapshot)."""
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            self._memory.load(conn)
            return records.last_lsn(conn)

    # -- search (``SearchReads``: store/postgres/search.py) ---------------------------

    def search(
        self, text: str, *, fts: bool, bound: int | None, offset: int, limit: int
    ) -> tuple[list[SearchRow], int]:
        return self._reading("search", lambda c: search.search(c, text, fts, bound, offset, limit))

    def list_subjects(self, prefix: str, *, after: str | None, limit: int) -> list[SubjectRow]:
        return self._reading(
            "list_subjects", lambda c: search.list_subjects(c, prefix, after, limit)
        )

    def list_predicates(self, subject: str, *, after: str | None, limit: int) -> list[PredicateRow]:
        return self._reading(
            "list_predicates", lambda c: search.list_predicates(c, subject, after, limit)
        )

    def similar_names(self, field: str, text: str, limit: int) -> list[str]:
        return self._reading("similar_names", lambda c: search.similar_names(c, field, text, limit))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._watcher is not None:
            self._watcher.stop()
        if self._read is not self._write:
            self._read.close()
        self._write.close()

    def _reading(self, operation: str, fn: Callable[[Conn], T]) -> T:
        return self._read.run(operation, fn)

    def _writing(self, operation: str, fn: Callable[[Conn], T]) -> T:
        """On the primary; not retried (a write may have happened before the error)."""
        try:
            with self._write.connection() as conn:
                return fn(conn)
        except (psycopg.Error, StorageError) as exc:
            raise translate_error(exc, operation) from exc
        except Exception as exc:
            if is_connection_error(exc):
                raise translate_error(exc, operation) from exc
            raise

    # -- SharedStore -----------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        try:
            with self._write.connection() as conn:
                yield from self._batch_on(conn)
        except StorageError:
            raise
        except Exception as exc:
            if isinstance(exc, psycopg.Error) or is_connection_error(exc):
                raise translate_error(exc, "apply") from exc
            raise

    def _batch_on(self, conn: Conn) -> Iterator[Batch]:
        conn.execute("BEGIN")
        committed = False
        try:
            row = conn.execute(LOCK_LSN_ROW).fetchone()
            if row is None:
                raise StorageError(
                    "the stemedb_lsn row is missing: run `stemedb db migrate`",
                    code="schema_behind",
                    retryable=False,
                )
            batch = Batch(conn, self._lookups, int(row[0]), float(row[1]))
            yield batch
            batch.finish()
            try:
                conn.execute("COMMIT")
            except psycopg.Error as exc:
                if is_connection_error(exc):
                    raise StorageError(
                        f"the connection broke during COMMIT ({exc}): the batch may or may"
                        " not be committed",
                        code="commit_unknown",
                        retryable=True,
                    ) from exc
                raise
            committed = True
        finally:
            if not committed and not conn.closed:
                try:
                    conn.execute("ROLLBACK")
                except psycopg.Error:
                    conn.close()  # the pool drops a closed connection
        if batch.applied:
            delta = batch.delta()
            self.absorb(delta)
            if self.delta_hook is not None:
                self.delta_hook(delta)

    def add_commit_listener(self, listener: CommitListener) -> None:
        self._listeners.append(listener)

    def remove_commit_listener(self, listener: CommitListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def seen_lsn(self) -> int:
        return self._seen

    def read_lsn(self) -> int:
        """The last LSN the read connections show (a standby's replayed one with
        ``read_from="replica"``)."""
        return self._reading("lsn", records.last_lsn)

    def start_watching(self, poll_ms: int | None = None) -> None:
        """Start the commit watcher if it does not run yet (``watch=False`` on open)."""
        if self._watcher is None and not self._closed:
            self._watcher = Watcher(self.dsn, self._catch_up, poll_ms=poll_ms or self._poll_ms)
            self._watcher.start()

    def wait_for_lsn(self, min_lsn: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            visible = self._reading("wait", records.last_lsn)
            if visible >= min_lsn:
                return visible
            if time.monotonic() >= deadline:
                raise StorageError(
                    f"LSN {min_lsn} is not visible on the read connections after"
                    f" {timeout:g} s (they are at {visible})",
                    code="lsn_wait_timeout",
                    retryable=True,
                    details={"min_lsn": min_lsn, "lsn": visible},
                )
            time.sleep(WAIT_FOR_LSN_POLL_SECONDS)

    def _catch_up(self, notified: int) -> None:
        """On the watcher thread: refresh memory and cache up to what the read side
        shows (with replicas, wait up to a poll interval for it to show ``notified``)."""
        with self._catch_up_lock:
            visible = self._reading("watch", records.last_lsn)
            if self.read_from == "replica" and visible < notified:
                try:
                    visible = self.wait_for_lsn(notified, 1.0)
                except StorageError:
                    visible = self._reading("watch", records.last_lsn)
            seen = self._seen
            if visible < seen:  # the database was reset (or restored to an earlier point)
                self._seen = self._read.run("watch", self._load)
                self.cache.invalidate(())
                self.cache.clear()
                self._notify(self._seen, set())
                return
            while seen < visible:
                end = min(visible, seen + CATCH_UP_CHUNK)
                touched = self._reading(
                    "watch", partial(touched_between, memory=self._memory, start=seen, end=end)
                )
                self.cache.invalidate(touched)
                self._seen = seen = end
                self._notify(end, touched)

    def _notify(self, lsn: int, touched: set[SubjectPredicate]) -> None:
        for listener in list(self._listeners):
            try:
                listener(lsn, touched)
            except Exception:
                log.exception("commit listener %r failed", listener)

    # -- StoreWriter -----------------------------------------------------------------

    def applied_lsn(self) -> int:
        """The last LSN committed by any node, as the read connections show it."""
        return self.read_lsn()

    def apply(self, entries: Sequence[Entry], *, drop_views: bool = False) -> set[SubjectPredicate]:
        if not entries:
            return set()
        with self.batch() as batch:
            return batch.apply_history(entries, drop_views=drop_views)

    def absorb(self, delta: StoreDelta) -> None:
        self._memory.absorb(delta)
        self.cache.invalidate(delta.touched)

    def reset(self) -> None:
        """Empty every record table of the database (every node's data: ``store
        rebuild`` and imports, never a running cluster)."""
        with self._catch_up_lock:
            self._writing("reset", reset_tables)
            self._memory.clear()
            self._seen = 0
            self.cache.invalidate(())
            self.cache.clear()

    def assertion_lsns(self, ids: Sequence[str]) -> dict[str, int]:
        return self._writing("lookup", lambda c: self._lookups.assertion_lsns(c, ids))

    def record_lsn(self, kind: RecordKind, record_id: str) -> int | None:
        return self._writing("lookup", lambda c: self._lookups.record_lsn(c, kind, record_id))

    def cosignature_lsn(self, assertion_id: str, agent_id: str) -> int | None:
        return self._writing(
            "lookup", lambda c: self._lookups.cosignature_lsn(c, assertion_id, agent_id)
        )

    # -- ClaimReads ------------------------------------------------------------------

    def candidates(
        self, subject: str, predicate: str | None, *, prefix: bool = False, limit: int = 0
    ) -> list[CandidateRow]:
        return self._reading(
            "query", lambda c: records.candidates(c, subject, predicate, prefix, limit)
        )

    def candidates_by_ids(self, ids: Sequence[str]) -> list[CandidateRow]:
        return self._reading("query", lambda c: records.candidates_by_ids(c, ids))

    def subject_predicates(
        self,
        subject: str,
        predicate: str | None,
        *,
        prefix: bool,
        after: tuple[str, str] | None,
        limit: int,
    ) -> list[SubjectPredicate]:
        return self._reading(
            "query",
            lambda c: records.subject_predicates(c, subject, predicate, prefix, after, limit),
        )

    def signers_at(
        self, assertion_lsns: Sequence[int], lsn_bound: int
    ) -> dict[int, tuple[str, ...]]:
        return self._reading("query", lambda c: records.signers_at(c, assertion_lsns, lsn_bound))

    def vote_weights_at(self, assertion_lsns: Sequence[int], lsn_bound: int) -> dict[int, float]:
        return self._reading(
            "query", lambda c: records.vote_weights_at(c, assertion_lsns, lsn_bound)
        )

    def lsn_at(self, at: float) -> int:
        return self._reading("query", lambda c: records.lsn_at(c, at))

    def assertions_by_lsn(self, lsns: Sequence[int]) -> dict[int, Assertion]:
        return self._reading("get", lambda c: records.assertions_by_lsn(c, lsns))

    def retracted_sources(self) -> dict[str, int]:
        return self._memory.retracted

    def superseded_epochs(self) -> dict[str, int]:
        return self._memory.superseded_epochs

    def trust(self, agent_id: str, now: float) -> float:
        current = self._memory.trust.get(agent_id)
        if current is None:
            return TRUST_INITIAL
        return relaxed_trust(current[0], current[1], now)

    # -- RecordReads -----------------------------------------------------------------

    def assertion(self, record_id: str) -> tuple[int, Assertion, float] | None:
        return self._reading("get", lambda c: records.assertion(c, record_id))

    def signatures(self, assertion_lsn: int) -> list[SignatureRow]:
        return self._reading("get", lambda c: records.signatures(c, assertion_lsn))

    def votes(self, assertion_lsn: int) -> list[VoteRow]:
        return self._reading("get", lambda c: records.votes(c, assertion_lsn))

    def supersessions_of(self, record_id: str) -> list[SupersessionRow]:
        return self._reading("get", lambda c: records.supersessions_of(c, record_id))

    def children(self, record_id: str) -> list[str]:
        return self._reading("get", lambda c: records.children(c, record_id))

    def citing(self, source_hash: str, limit: int) -> list[str]:
        return self._reading("get", lambda c: records.citing(c, source_hash, limit))

    def source(self, source_hash: str, *, with_content: bool = False) -> SourceRow | None:
        return self._reading("get", lambda c: self._lookups.source(c, source_hash, with_content))

    def sources(self, *, after: str | None, limit: int) -> list[SourceRow]:
        return self._reading("list", lambda c: records.sources(c, after, limit))

    def epochs(self) -> list[EpochRow]:
        return self._reading("list", records.epochs)

    def epoch(self, epoch_id: str) -> EpochRow | None:
        found = self._reading("get", lambda c: records.epochs(c, epoch_id))
        return found[0] if found else None

    def trust_row(self, agent_id: str) -> TrustRow | None:
        return self._reading("get", lambda c: records.trust_row(c, agent_id))

    def agent_counts(self, agent_id: str) -> dict[str, int]:
        return self._reading("get", lambda c: records.agent_counts(c, agent_id))

    def recent_signers(self, after: int, limit: int) -> list[tuple[str, int]]:
        return self._reading("get", lambda c: records.recent_signers(c, after, limit))

    def changes(self, after: int, limit: int) -> list[ChangeRow]:
        return self._reading("feed", lambda c: records.changes(c, after, limit))

    def record_blob(self, kind: int, ref: str, lsn: int) -> bytes | None:
        return self._reading("feed", lambda c: records.record_blob(c, kind, lsn))

    # -- QuarantineStore -------------------------------------------------------------

    def quarantined(
        self,
        *,
        status: str | None = None,
        reason: str | None = None,
        agent_id: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[QuarantineRow]:
        return self._reading(
            "quarantine",
            lambda c: quarantine.quarantined(
                c, status=status, reason=reason, agent_id=agent_id, after=after, limit=limit
            ),
        )

    def quarantine_item(self, assertion_id: str) -> QuarantineRow | None:
        return self._reading("quarantine", lambda c: quarantine.quarantine_item(c, assertion_id))

    def quarantine_counts(self) -> dict[tuple[str, str], int]:
        return self._reading("quarantine", quarantine.quarantine_counts)

    # -- ViewStore -------------------------------------------------------------------

    def put_views(self, views: Sequence[ViewRow]) -> None:
        if views:
            self._writing("views", lambda c: records.put_views(c, views))

    def view(self, subject: str, predicate: str) -> tuple[int, float, bytes] | None:
        return self._reading("view", lambda c: records.view(c, subject, predicate))

    # -- AuditStore ------------------------------------------------------------------

    def write_audit(self, rows: Sequence[AuditRow], claims: Sequence[tuple[str, str]]) -> None:
        self._writing("audit", lambda c: audit.write_audit(c, rows, claims))

    def expired_audit(self, before: float, limit: int) -> list[tuple[int, bytes]]:
        return self._writing("audit", lambda c: audit.expired_audit(c, before, limit))

    def delete_audit(self, seqs: Sequence[int], claims: Sequence[tuple[str, int]]) -> None:
        self._writing("audit", lambda c: audit.delete_audit(c, seqs, claims))

    def audit_queries(
        self, *, agent: str | None, since: float | None, until: float | None, limit: int
    ) -> list[bytes]:
        return self._reading("audit", lambda c: audit.audit_queries(c, agent, since, until, limit))

    def audit_query(self, query_id: str) -> bytes | None:
        return self._reading("audit", lambda c: audit.audit_query(c, query_id))

    def audit_queries_using(self, assertion_id: str, limit: int) -> list[str]:
        return self._reading("audit", lambda c: audit.audit_queries_using(c, assertion_id, limit))

    # -- StoreStats ------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return self._reading("stats", records.counts)

    def assertion_count(self) -> int:
        return self._reading("stats", records.assertion_count)

    def disk_bytes(self) -> int:
        return self._reading("stats", records.disk_bytes)

    def state_hash(self, from_lsn: int = 1) -> tuple[int, str]:
        return self._reading("verify", lambda c: records.state_hash(c, from_lsn))

    def pool_stats(self) -> dict[str, Any]:
        """Connection pool figures (for metrics)."""
        out = {"write": self._write.stats()}
        if self._read is not self._write:
            out["read"] = self._read.stats()
        return out


if TYPE_CHECKING:  # mypy (tests/test_code_quality.py) checks both roles are fulfilled

    def _roles(store: PostgresStore, batch: Batch) -> tuple[SharedStore, SharedBatch]:
        return store, batch
