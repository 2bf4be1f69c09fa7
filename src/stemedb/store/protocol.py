"""What the layers above need from a store, as ``typing.Protocol``s (ARCHITECTURE §1).

``engine``, ``query``, ``ops`` (and ``api`` where it reads stats) depend on these
protocols, never on an implementation; only the code that opens the embedded store
names ``SqliteStore``. Each protocol is one role, named after who uses it:

- ``StoreWriter``: the group-commit writer, its commit-time checks and recovery
  (``engine``): apply a batch with ``applied_lsn``, absorb another process's batch,
  reset for a rebuild, and the lookups of the semantic checks.
- ``ClaimReads``: candidate selection (``query.service``, ``query.selection``).
- ``RecordReads``: single records, provenance, the registries, the change feed
  (``query.provenance``, ``api`` registry routes).
- ``ViewStore``: materialized default-lens views (``query.views``).
- ``AuditStore``: the audit log's rows (``query.audit``).
- ``StoreStats``: counts, size and the state hash (``ops``, ``api`` admin routes).
- ``SearchReads``: full-text search, subject and predicate listings, similar names
  (``query.search``).
- ``QuarantineStore``: the quarantined assertions (``api`` admin routes; ADR 0023).
- ``Store``: all of them; what an engine holds.
- ``SharedStore``: a ``Store`` that several nodes write at once (cluster mode, the
  PostgreSQL store): its writes go through ``batch()`` transactions (``SharedBatch``)
  that assign LSNs under a lock of the whole database, and a watcher tells it about the
  commits of the other nodes (``add_commit_listener``, ``wait_for_lsn``).

Every implementation passes ``tests/store_contract/`` unchanged; the normative rules
are in ``docs/design/store-and-reads.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from stemedb.model.kinds import Entry, RecordKind
from stemedb.model.records import Assertion
from stemedb.store.cache import ResultCache, SubjectPredicate
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

AuditRow = tuple[Any, ...]
"""(query_id, at, agent, endpoint, lens, subject, predicate, winner, duration_ms, record)."""

ViewRow = tuple[str, str, int, float, bytes]
"""(subject, predicate, lsn, computed_at, result) of one materialized view."""


class StoreDelta(NamedTuple):
    """What one applied batch changed besides the tables: what a store that only reads
    (another process's) must ``absorb`` to answer like the one that applied it."""

    lsn: int
    touched: set[SubjectPredicate]
    trust: dict[str, tuple[float, float]]  # agent -> (score, updated_at)
    retracted: dict[str, int]  # source_hash -> LSN of its retraction
    epochs: dict[str, int]  # epoch id -> LSN of the first `replace` epoch over it


class CommitLookups(Protocol):
    """The lookups of the commit-time checks (``engine.checks.BatchChecker``): is a
    record stored, and at which LSN. A ``StoreWriter`` answers them against what it has
    applied; a ``SharedBatch`` against what is committed plus its own rows so far."""

    def assertion_lsns(self, ids: Sequence[str]) -> dict[str, int]:
        """The LSN of each of ``ids`` that names a stored assertion."""
        ...

    def record_lsn(self, kind: RecordKind, record_id: str) -> int | None:
        """The LSN of a stored assertion, vote, epoch, supersession (by id) or source
        (by source hash)."""
        ...

    def cosignature_lsn(self, assertion_id: str, agent_id: str) -> int | None:
        """The LSN of ``agent_id``'s signature on the assertion (its own LSN for the
        author), or None."""
        ...

    def source(self, source_hash: str, *, with_content: bool = False) -> SourceRow | None: ...

    def changes(self, after: int, limit: int) -> list[ChangeRow]:
        """Change rows with LSN > ``after``, in LSN order."""
        ...


class StoreWriter(CommitLookups, Protocol):
    """The write side (``engine``): one writer applies batches in LSN order."""

    delta_hook: Callable[[StoreDelta], None] | None
    """Called with each applied batch's delta after ``absorb`` (the writer process sends
    it to the HTTP processes, whose stores only read)."""

    def applied_lsn(self) -> int:
        """The LSN of the last applied record (0 when empty); durable with the rows."""
        ...

    def apply(self, entries: Sequence[Entry], *, drop_views: bool = False) -> set[SubjectPredicate]:
        """Apply one batch, in LSN order, atomically with ``applied_lsn``; return the
        touched (subject, predicate) keys. A batch that raises leaves nothing behind and
        may be applied again. ``drop_views`` deletes the views of touched keys (replay)."""
        ...

    def absorb(self, delta: StoreDelta) -> None:
        """Bring the in-memory state and the result cache up to a batch applied to the
        tables by another process."""
        ...

    def reset(self) -> None:
        """Drop every derived row and set ``applied_lsn`` to 0 (``store rebuild``)."""
        ...


class ClaimReads(Protocol):
    """Candidate selection and lens input (``query.service``, ``query.selection``)."""

    @property
    def cache(self) -> ResultCache:
        """The result cache, invalidated per key by ``apply`` and ``absorb``."""
        ...

    def candidates(
        self, subject: str, predicate: str | None, *, prefix: bool = False, limit: int = 0
    ) -> list[CandidateRow]:
        """Assertions on ``subject`` (``prefix``: on every subject whose UTF-8 bytes start
        with its bytes) and ``predicate`` (None: any); ``limit`` 0 is no limit."""
        ...

    def candidates_by_ids(self, ids: Sequence[str]) -> list[CandidateRow]:
        """The stored ones of ``ids``, in the order given."""
        ...

    def subject_predicates(
        self,
        subject: str,
        predicate: str | None,
        *,
        prefix: bool,
        after: tuple[str, str] | None,
        limit: int,
    ) -> list[SubjectPredicate]:
        """Distinct (subject, predicate) keys in byte order, after a keyset cursor."""
        ...

    def signers_at(
        self, assertion_lsns: Sequence[int], lsn_bound: int
    ) -> dict[int, tuple[str, ...]]:
        """Signers of each assertion, counting signatures with LSN <= ``lsn_bound``."""
        ...

    def vote_weights_at(self, assertion_lsns: Sequence[int], lsn_bound: int) -> dict[int, float]:
        """Sum of each agent's latest vote (by timestamp, then LSN) with LSN <= bound."""
        ...

    def lsn_at(self, at: float) -> int:
        """The last LSN committed at or before ``at`` (0: none)."""
        ...

    def retracted_sources(self) -> dict[str, int]:
        """source_hash -> LSN of its retraction."""
        ...

    def superseded_epochs(self) -> dict[str, int]:
        """epoch id -> LSN of the first `replace` epoch that superseded it."""
        ...

    def trust(self, agent_id: str, now: float) -> float:
        """The agent's trust score relaxed to ``now`` (0.5 when it has none)."""
        ...

    def assertions_by_lsn(self, lsns: Sequence[int]) -> dict[int, Assertion]:
        """The stored assertions at ``lsns``, as first written."""
        ...

    def signatures(self, assertion_lsn: int) -> list[SignatureRow]:
        """Every signature of the assertion in LSN order: its own (by agent), then
        co-signatures."""
        ...

    def source(self, source_hash: str, *, with_content: bool = False) -> SourceRow | None: ...


class RecordReads(Protocol):
    """Single records, provenance and the change feed (``query.provenance``, ``api``)."""

    def applied_lsn(self) -> int: ...

    def assertion(self, record_id: str) -> tuple[int, Assertion, float] | None:
        """(lsn, the assertion as first written, committed_at) or None."""
        ...

    def candidates_by_ids(self, ids: Sequence[str]) -> list[CandidateRow]: ...

    def signatures(self, assertion_lsn: int) -> list[SignatureRow]: ...

    def votes(self, assertion_lsn: int) -> list[VoteRow]:
        """Every vote on the assertion, in LSN order."""
        ...

    def supersessions_of(self, record_id: str) -> list[SupersessionRow]:
        """Supersessions naming ``record_id`` as old or new, in LSN order."""
        ...

    def children(self, record_id: str) -> list[str]:
        """Ids of the assertions whose ``parent`` is ``record_id``, in LSN order."""
        ...

    def citing(self, source_hash: str, limit: int) -> list[str]:
        """Ids of the first ``limit`` assertions whose ``source_hash`` is
        ``source_hash``, in LSN order (what a retraction's cascade starts from)."""
        ...

    def source(self, source_hash: str, *, with_content: bool = False) -> SourceRow | None:
        """A registered source (its content only ``with_content``), or None."""
        ...

    def sources(self, *, after: str | None, limit: int) -> list[SourceRow]:
        """Registered sources in source-hash order after ``after``, without content."""
        ...

    def epochs(self) -> list[EpochRow]:
        """Every epoch, in LSN order."""
        ...

    def epoch(self, epoch_id: str) -> EpochRow | None: ...

    def trust(self, agent_id: str, now: float) -> float: ...

    def trust_row(self, agent_id: str) -> TrustRow | None:
        """The stored (unrelaxed) trust of an agent with outcomes, or None."""
        ...

    def agent_counts(self, agent_id: str) -> dict[str, int]:
        """{"assertions": authored, "cosignatures": signed not authored, "votes": …}."""
        ...

    def recent_signers(self, after: int, limit: int) -> list[tuple[str, int]]:
        """The agents who signed the assertions committed after LSN ``after`` (authors
        and co-signers), each with its number of signatures, most first (ties by agent
        id), at most ``limit`` (the dashboard's Agents page)."""
        ...

    def changes(self, after: int, limit: int) -> list[ChangeRow]: ...

    def record_blob(self, kind: int, ref: str, lsn: int) -> bytes | None:
        """The msgpack of the record a change row points at."""
        ...


class ViewStore(Protocol):
    """Materialized default-lens results per (subject, predicate) (``query.views``)."""

    @property
    def cache(self) -> ResultCache: ...

    def put_views(self, views: Sequence[ViewRow]) -> None:
        """Insert or replace views; a view never replaces one of a later LSN (several
        processes' refreshers share the views)."""
        ...

    def view(self, subject: str, predicate: str) -> tuple[int, float, bytes] | None:
        """(lsn, computed_at, result) of the key's view, or None."""
        ...


class AuditStore(Protocol):
    """The audit log's rows (``query.audit``); not derived from the WAL."""

    def write_audit(self, rows: Sequence[AuditRow], claims: Sequence[tuple[str, str]]) -> None:
        """Append audit rows and their (assertion_id, query_id) links; a query_id
        already stored is kept as it was."""
        ...

    def expired_audit(self, before: float, limit: int) -> list[tuple[int, bytes]]:
        """The oldest rows (seq, record) of queries asked before ``before``."""
        ...

    def delete_audit(self, seqs: Sequence[int], claims: Sequence[tuple[str, int]]) -> None:
        """Delete rows by seq and their (assertion_id, seq) links, in one transaction."""
        ...

    def audit_queries(
        self, *, agent: str | None, since: float | None, until: float | None, limit: int
    ) -> list[bytes]:
        """Records of matching queries, newest first."""
        ...

    def audit_query(self, query_id: str) -> bytes | None: ...

    def audit_queries_using(self, assertion_id: str, limit: int) -> list[str]:
        """Ids of the queries whose answer used the assertion, newest first."""
        ...


class StoreStats(Protocol):
    """What operators see (``ops``, ``api`` admin and health routes)."""

    @property
    def backend(self) -> str:
        """The implementation's name in stats (``"sqlite"``)."""
        ...

    @property
    def path(self) -> Path:
        """The store's main file (its directory for disk-free figures)."""
        ...

    def applied_lsn(self) -> int: ...

    def counts(self) -> dict[str, int]:
        """Row counts of assertions, signatures, votes, epochs and sources."""
        ...

    def assertion_count(self) -> int: ...

    def disk_bytes(self) -> int:
        """Bytes the store's files take on disk."""
        ...

    def state_hash(self, from_lsn: int = 1) -> tuple[int, str]:
        """(last LSN, SHA-256 over ``lsn:kind:id`` of every change from ``from_lsn`` in
        LSN order): the definition ``stemedb verify`` compares with the WAL's."""
        ...


class SearchReads(Protocol):
    """Search and discovery over the stored claims (``query.search``; ADR 0014).

    The index is derived like every other table: written in the transaction of the
    batch it indexes (``apply``), emptied by ``reset``. It holds, per (subject,
    predicate) key, the key's subject and predicate, each distinct text value of its
    assertions and each registered source they cite (title and URI); words are split at
    every character that is not a letter or a digit (``drugs/semaglutide``,
    ``gastroparesis_risk``), case and diacritics ignored."""

    def search(
        self, text: str, *, fts: bool, bound: int | None, offset: int, limit: int
    ) -> tuple[list[SearchRow], int]:
        """Matches of ``text`` best first (ties by the order they were indexed), from
        ``offset``, at most ``limit``, among the documents indexed up to ``bound`` (None:
        all, and the bound used is returned: page on with it for a stable order).
        ``fts`` False: ``text`` is words, all required, never syntax; True: the store's
        query language, whose syntax error is a ``ValidationError`` (code
        ``bad_fts_query``). Subject matches rank above predicate, object, source title
        and source URI matches of the same words."""
        ...

    def list_subjects(self, prefix: str, *, after: str | None, limit: int) -> list[SubjectRow]:
        """Subjects whose bytes start with ``prefix``, in byte order after ``after``,
        with their number of predicates and of stored assertions."""
        ...

    def list_predicates(self, subject: str, *, after: str | None, limit: int) -> list[PredicateRow]:
        """The subject's predicates in byte order after ``after``, with their number of
        stored assertions."""
        ...

    def similar_names(self, field: str, text: str, limit: int) -> list[str]:
        """Stored subjects (``field`` "subject") or predicates ("predicate") closest to
        ``text`` by shared trigrams, best first (under three characters: those that
        start with it); the caller re-ranks them."""
        ...


class QuarantineStore(Protocol):
    """The quarantine's rows (``api`` admin routes, metrics; ADR 0023). Derived from the
    WAL's ``Quarantine`` and ``QuarantineReview`` records like every other table."""

    def quarantined(
        self,
        *,
        status: str | None = None,
        reason: str | None = None,
        agent_id: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[QuarantineRow]:
        """Quarantined assertions in the LSN order of their decision, after ``after``;
        ``status`` pending, approved or rejected (None: any)."""
        ...

    def quarantine_item(self, assertion_id: str) -> QuarantineRow | None:
        """The quarantine row of one assertion, or None if it was never quarantined."""
        ...

    def quarantine_counts(self) -> dict[tuple[str, str], int]:
        """(reason, status) -> how many assertions."""
        ...


class Store(
    StoreWriter,
    ClaimReads,
    RecordReads,
    ViewStore,
    AuditStore,
    StoreStats,
    SearchReads,
    QuarantineStore,
    Protocol,
):
    """Every role: what an engine opens and holds."""

    def close(self) -> None: ...


CommitListener = Callable[[int, set[SubjectPredicate]], None]
"""``(lsn, touched)``: the last LSN of a range of commits the store has caught up with,
and the (subject, predicate) keys those commits touched."""


class SharedBatch(CommitLookups, Protocol):
    """One batch transaction of a ``SharedStore``, opened by ``SharedStore.batch()``.

    When it is handed out, the transaction holds the lock of the database's LSN counter
    (PostgreSQL: ``SELECT ... FROM stemedb_lsn FOR UPDATE``), so no other batch of any
    node commits until this one ends: ``last_lsn`` and ``last_committed_at`` are those of
    the last committed batch cluster-wide, and the lookups (``CommitLookups``, on the
    transaction's own connection) see every committed record plus the rows this batch
    applied so far. Run the commit-time checks on these lookups, then ``apply`` the
    accepted records with LSNs ``last_lsn + 1 ..``.

    Not thread-safe: one thread uses a batch, inside the ``with`` block only.
    """

    @property
    def last_lsn(self) -> int:
        """The last LSN committed before this batch plus those ``apply`` gave so far
        (0 for an empty database): the next record gets ``last_lsn + 1``."""
        ...

    @property
    def last_committed_at(self) -> float:
        """The ``committed_at`` of the record at ``last_lsn`` (0.0 when none). Give the
        records of this batch ``max(now, last_committed_at)`` so that commit times are
        non-decreasing in LSN order across nodes (``lsn_at`` relies on it)."""
        ...

    @property
    def touched(self) -> set[SubjectPredicate]:
        """The keys touched by every ``apply`` of this batch so far."""
        ...

    def apply(self, entries: Sequence[Entry], *, drop_views: bool = False) -> set[SubjectPredicate]:
        """Insert ``entries`` in this transaction and return the keys they touched.

        The entries' LSNs must increase from ``last_lsn`` and their ``committed_at``
        be at least ``last_committed_at`` and non-decreasing; else ``StorageError``
        (code ``lsn_out_of_order``) and nothing of the call is kept. The group-commit
        writer gives ``last_lsn + 1, last_lsn + 2, ..`` to the records it accepts, so
        LSNs stay contiguous.
        May be called more than once per batch (each call continues the LSNs of the
        previous one). Any ``StorageError`` raised here leaves the transaction unusable:
        let it propagate out of the ``with`` block, which rolls the batch back.
        ``drop_views`` deletes the materialized views of touched keys (imports)."""
        ...


class SharedStore(Store, Protocol):
    """A ``Store`` that several nodes (processes) write at once, each with its own
    object: cluster mode's PostgreSQL store. ``Store.apply(entries)`` is one ``batch()``
    that applies a history as the embedded store does (``stemedb cluster import``, the
    contract suite): the entries as given, the LSN row set to the last entry's LSN, an
    LSN already stored fails it; ``applied_lsn()`` is the last committed LSN of the
    database, whoever committed it.

    Write path of a node (the group-commit writer)::

        with store.batch() as batch:          # BEGIN; lock the LSN row
            checker = BatchChecker(batch)     # checks see committed state, under the lock
            ...                               # accept / refuse each record
            touched = batch.apply(entries)    # LSNs batch.last_lsn + 1 ..
        # here: committed (acknowledge now), cache invalidated, memory state updated

    Leaving the block normally bumps the LSN row, sends ``NOTIFY stemedb_commit`` with
    the batch's last LSN (in the transaction, so it is delivered only if it commits),
    COMMITs, and returns only after COMMIT returned; then it updates what the store
    keeps in memory (result cache for the touched keys, retracted sources, replaced
    epochs, trust) and calls ``delta_hook``. A batch that applied nothing just ends its
    transaction (no LSN, no notification). Leaving it with an exception rolls the
    transaction back (the LSN counter too: LSNs stay contiguous) and re-raises.

    A failed COMMIT raises ``StorageError``: code ``commit_unknown`` (retryable) when
    the connection broke during COMMIT, so the batch may or may not be committed (the
    records are content-addressed: a retry answers ``exists`` for what did commit); any
    other error means it is not committed. Connection errors (a dead primary, a
    failover in progress) are ``StorageError`` with ``retryable=True``.
    """

    def batch(self) -> AbstractContextManager[SharedBatch]:
        """A batch transaction holding the LSN lock (blocks while another node's batch
        holds it)."""
        ...

    def add_commit_listener(self, listener: CommitListener) -> None:
        """Call ``listener(lsn, touched)`` from the store's watcher thread after it has
        caught up with commits of any node (this one's included) up to ``lsn``: the
        in-memory state and the result cache are already refreshed when it is called.
        Consecutive calls have increasing ``lsn``; each LSN is covered by exactly one
        call (a ``reset`` of the database starts over: one call with its new last LSN
        and no keys, after the whole cache was dropped). A listener must be quick and
        must not raise (exceptions are logged)."""
        ...

    def remove_commit_listener(self, listener: CommitListener) -> None: ...

    def seen_lsn(self) -> int:
        """The LSN the watcher has caught up with (its last listener call's ``lsn``):
        reads of this store reflect at least every commit up to it."""
        ...

    def wait_for_lsn(self, min_lsn: int, timeout: float) -> int:
        """Block until the read side (the connections queries use, a standby with
        ``read_from = "replica"``) shows every commit up to ``min_lsn``; return its
        last LSN (>= ``min_lsn``). Raise ``StorageError`` (code ``lsn_wait_timeout``,
        retryable) after ``timeout`` seconds (read-your-writes with ``min_lsn``)."""
        ...
