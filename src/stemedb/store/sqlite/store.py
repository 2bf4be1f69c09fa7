"""``SqliteStore``: the embedded ``Store``, composed of one part per concern.

Each method answers from one part; ``store/protocol.py`` states what each one promises.
The parts share the open ``Database`` and, for the write side, the ``MemoryState``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from stemedb.model.kinds import Entry, RecordKind
from stemedb.model.records import Assertion
from stemedb.store.cache import ResultCache, SubjectPredicate
from stemedb.store.protocol import AuditRow, StoreDelta, ViewRow
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
from stemedb.store.sqlite.apply import BatchApplier
from stemedb.store.sqlite.audit import AuditTables
from stemedb.store.sqlite.candidates import CandidateReads
from stemedb.store.sqlite.database import BUSY_TIMEOUT_MS, Database
from stemedb.store.sqlite.feed import FeedReads
from stemedb.store.sqlite.lookups import Lookups
from stemedb.store.sqlite.memory import MemoryState
from stemedb.store.sqlite.quarantine import QuarantineReads
from stemedb.store.sqlite.records import RecordReads
from stemedb.store.sqlite.search import SearchReads
from stemedb.store.sqlite.views import Views
from stemedb.store.trust import TRUST_INITIAL, relaxed_trust

DEFAULT_CACHE_BYTES: Final = 64 * 1024 * 1024


class SqliteStore:
    """Indexes and derived state of one node, in ``<data_dir>/store.sqlite`` (and the
    audit log in ``audit.sqlite``)."""

    backend: Final = "sqlite"

    def __init__(
        self,
        data_dir: Path,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    ) -> None:
        self._db = Database(data_dir, busy_timeout_ms=busy_timeout_ms)
        self.path = self._db.path
        self.audit_path = self._db.audit_path
        self.cache = ResultCache(cache_bytes)
        self.delta_hook: Callable[[StoreDelta], None] | None = None
        self._memory = MemoryState()
        self._memory.load(self._db.writer)
        self._applier = BatchApplier(self._db, self._memory)
        self._lookups = Lookups(self._db)
        self._candidates = CandidateReads(self._db)
        self._records = RecordReads(self._db)
        self._feed = FeedReads(self._db)
        self._views = Views(self._db)
        self._audit = AuditTables(self._db)
        self._search = SearchReads(self._db)
        self._quarantine = QuarantineReads(self._db)

    @property
    def read_fault(self) -> Callable[[str], None] | None:
        """Test seam: called with the operation name before every read (``Database``)."""
        return self._db.read_fault

    @read_fault.setter
    def read_fault(self, fault: Callable[[str], None] | None) -> None:
        self._db.read_fault = fault

    def close(self) -> None:
        self._db.close()

    # -- StoreWriter -----------------------------------------------------------------

    def applied_lsn(self) -> int:
        return int(self._db.meta("applied_lsn") or 0)

    def apply(self, entries: Sequence[Entry], *, drop_views: bool = False) -> set[SubjectPredicate]:
        delta = self._applier.apply(entries, drop_views=drop_views)
        if delta is None:
            return set()
        self.absorb(delta)
        if self.delta_hook is not None:
            self.delta_hook(delta)
        return delta.touched

    def absorb(self, delta: StoreDelta) -> None:
        self._memory.absorb(delta)
        self.cache.invalidate(delta.touched)

    def reload(self) -> None:
        """Read the in-memory state from the tables again and empty the result cache:
        a respawned writer process replayed batches this process never absorbed."""
        self._memory.load(self._db.writer)
        self.cache.clear()

    def reset(self) -> None:
        self._applier.reset()
        self._memory.load(self._db.writer)
        self.cache.clear()

    def assertion_lsns(self, ids: Sequence[str]) -> dict[str, int]:
        return self._lookups.assertion_lsns(ids)

    def record_lsn(self, kind: RecordKind, record_id: str) -> int | None:
        return self._lookups.record_lsn(kind, record_id)

    def cosignature_lsn(self, assertion_id: str, agent_id: str) -> int | None:
        return self._lookups.cosignature_lsn(assertion_id, agent_id)

    # -- ClaimReads ------------------------------------------------------------------

    def candidates(
        self, subject: str, predicate: str | None, *, prefix: bool = False, limit: int = 0
    ) -> list[CandidateRow]:
        return self._candidates.candidates(subject, predicate, prefix=prefix, limit=limit)

    def candidates_by_ids(self, ids: Sequence[str]) -> list[CandidateRow]:
        return self._candidates.candidates_by_ids(ids)

    def subject_predicates(
        self,
        subject: str,
        predicate: str | None,
        *,
        prefix: bool,
        after: tuple[str, str] | None,
        limit: int,
    ) -> list[SubjectPredicate]:
        return self._candidates.subject_predicates(
            subject, predicate, prefix=prefix, after=after, limit=limit
        )

    def signers_at(
        self, assertion_lsns: Sequence[int], lsn_bound: int
    ) -> dict[int, tuple[str, ...]]:
        return self._candidates.signers_at(assertion_lsns, lsn_bound)

    def vote_weights_at(self, assertion_lsns: Sequence[int], lsn_bound: int) -> dict[int, float]:
        return self._candidates.vote_weights_at(assertion_lsns, lsn_bound)

    def lsn_at(self, at: float) -> int:
        return self._candidates.lsn_at(at)

    def assertions_by_lsn(self, lsns: Sequence[int]) -> dict[int, Assertion]:
        return self._candidates.assertions_by_lsn(lsns)

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
        return self._records.assertion(record_id)

    def signatures(self, assertion_lsn: int) -> list[SignatureRow]:
        return self._records.signatures(assertion_lsn)

    def votes(self, assertion_lsn: int) -> list[VoteRow]:
        return self._records.votes(assertion_lsn)

    def supersessions_of(self, record_id: str) -> list[SupersessionRow]:
        return self._records.supersessions_of(record_id)

    def children(self, record_id: str) -> list[str]:
        return self._records.children(record_id)

    def citing(self, source_hash: str, limit: int) -> list[str]:
        return self._records.citing(source_hash, limit)

    def source(self, source_hash: str, *, with_content: bool = False) -> SourceRow | None:
        return self._records.source(source_hash, with_content=with_content)

    def sources(self, *, after: str | None, limit: int) -> list[SourceRow]:
        return self._records.sources(after=after, limit=limit)

    def epochs(self) -> list[EpochRow]:
        return self._records.epochs()

    def epoch(self, epoch_id: str) -> EpochRow | None:
        return self._records.epoch(epoch_id)

    def trust_row(self, agent_id: str) -> TrustRow | None:
        return self._records.trust_row(agent_id)

    def agent_counts(self, agent_id: str) -> dict[str, int]:
        return self._records.agent_counts(agent_id)

    def recent_signers(self, after: int, limit: int) -> list[tuple[str, int]]:
        return self._records.recent_signers(after, limit)

    def changes(self, after: int, limit: int) -> list[ChangeRow]:
        return self._feed.changes(after, limit)

    def record_blob(self, kind: int, ref: str, lsn: int) -> bytes | None:
        return self._feed.record_blob(kind, lsn)

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
        return self._quarantine.quarantined(
            status=status, reason=reason, agent_id=agent_id, after=after, limit=limit
        )

    def quarantine_item(self, assertion_id: str) -> QuarantineRow | None:
        return self._quarantine.quarantine_item(assertion_id)

    def quarantine_counts(self) -> dict[tuple[str, str], int]:
        return self._quarantine.quarantine_counts()

    # -- ViewStore -------------------------------------------------------------------

    def put_views(self, views: Sequence[ViewRow]) -> None:
        self._views.put_views(views)

    def view(self, subject: str, predicate: str) -> tuple[int, float, bytes] | None:
        return self._views.view(subject, predicate)

    # -- AuditStore ------------------------------------------------------------------

    def write_audit(self, rows: Sequence[AuditRow], claims: Sequence[tuple[str, str]]) -> None:
        self._audit.write_audit(rows, claims)

    def expired_audit(self, before: float, limit: int) -> list[tuple[int, bytes]]:
        return self._audit.expired_audit(before, limit)

    def delete_audit(self, seqs: Sequence[int], claims: Sequence[tuple[str, int]]) -> None:
        self._audit.delete_audit(seqs, claims)

    def audit_queries(
        self, *, agent: str | None, since: float | None, until: float | None, limit: int
    ) -> list[bytes]:
        return self._audit.audit_queries(agent=agent, since=since, until=until, limit=limit)

    def audit_query(self, query_id: str) -> bytes | None:
        return self._audit.audit_query(query_id)

    def audit_queries_using(self, assertion_id: str, limit: int) -> list[str]:
        return self._audit.audit_queries_using(assertion_id, limit)

    # -- StoreStats ------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return self._feed.counts()

    def assertion_count(self) -> int:
        return self._feed.assertion_count()

    def disk_bytes(self) -> int:
        return self._db.disk_bytes()

    def state_hash(self, from_lsn: int = 1) -> tuple[int, str]:
        return self._feed.state_hash(from_lsn)

    # -- SearchReads -----------------------------------------------------------------

    def search(
        self, text: str, *, fts: bool, bound: int | None, offset: int, limit: int
    ) -> tuple[list[SearchRow], int]:
        return self._search.search(text, fts=fts, bound=bound, offset=offset, limit=limit)

    def list_subjects(self, prefix: str, *, after: str | None, limit: int) -> list[SubjectRow]:
        return self._search.list_subjects(prefix, after=after, limit=limit)

    def list_predicates(self, subject: str, *, after: str | None, limit: int) -> list[PredicateRow]:
        return self._search.list_predicates(subject, after=after, limit=limit)

    def similar_names(self, field: str, text: str, limit: int) -> list[str]:
        return self._search.similar_names(field, text, limit)
