"""Checks that need the stored state: duplicates, references, retraction rights.

Run by the group-commit writer for one batch at a time, so records earlier in the same
batch count as stored (an assertion and its co-signature may travel together). The
lookups go to the store (embedded: the writer is its only writer) or to a shared store's
batch transaction, under its LSN lock (cluster mode): either way nothing else commits
while a batch is checked.
"""

from __future__ import annotations

from typing import Any

import msgspec

from stemedb.engine.submission import WriteResult
from stemedb.errors import (
    AuthorizationError,
    ConflictError,
    NotFoundError,
    SemanticError,
    StemeError,
)
from stemedb.model.kinds import RecordKind
from stemedb.model.records import (
    Assertion,
    CoSignature,
    Epoch,
    QuarantineReview,
    Retraction,
    Source,
    Supersession,
    Vote,
)
from stemedb.store.protocol import CommitLookups

EVENT_KINDS = frozenset(
    {RecordKind.TRUST_OUTCOME, RecordKind.QUARANTINE, RecordKind.QUARANTINE_REVIEW}
)
"""Events of the node and its admins: never deduplicated (two equal ones both count)."""


class Existing(msgspec.Struct, frozen=True):
    """A duplicate: either already stored (lsn known) or earlier in this batch."""

    record_id: str
    lsn: int = 0
    batch_index: int = -1


class BatchChecker:
    def __init__(self, store: CommitLookups) -> None:
        self._store = store
        self._pending: dict[tuple[RecordKind, str], int] = {}  # key -> accepted index
        self._pending_sources: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._accepted = 0  # records accepted so far = index of the next one
        self._first_lsn = 0
        self._stored_assertions: dict[str, int] = {}  # prefetched: id -> stored LSN
        self._prefetched: set[str] = set()

    def prefetch_assertions(self, ids: list[str]) -> None:
        """Look the batch's assertion ids up in one query instead of one per record.
        Nothing commits while a batch is checked, so an id not found here is not
        stored."""
        if ids:
            self._stored_assertions = self._store.assertion_lsns(ids)
            self._prefetched = set(ids)

    def check(self, kind: RecordKind, record_id: str, record: Any) -> StemeError | Existing | None:
        """None to accept; an Existing for a duplicate; an error to refuse."""
        dedupe_key = self._dedupe_key(kind, record_id, record)
        if isinstance(record, Retraction):
            # Only an owner may retract, even a source that is already retracted.
            refused = self._retraction_error(record)
            if refused is not None:
                return refused
        # Trust outcomes are events, never deduplicated (not against the store either):
        # two equal outcomes in one batch both count, as they do in two batches.
        if dedupe_key in self._pending and kind not in EVENT_KINDS:
            conflict = self._pending_source_conflict(record_id, record)
            if conflict is not None:
                return conflict
            return Existing(record_id, batch_index=self._pending[dedupe_key])
        stored = self._stored_lsn(kind, record_id, record)
        if stored is not None:
            if isinstance(record, Retraction):  # answer with the retraction that counts
                record_id = self._store.changes(stored - 1, 1)[0].ref
            return Existing(record_id, lsn=stored)
        error = self._references(kind, record)
        if error is not None:
            return error
        self._pending[dedupe_key] = self._accepted
        self._accepted += 1
        if isinstance(record, Source):
            signers = tuple(s.agent_id for s in record.signatures)
            self._pending_sources[record.source_hash] = (record_id, signers)
        return None

    def count_derived(self) -> None:
        """A record the commit step added after the last accepted one (a quarantine
        decision): it takes the next LSN, so later in-batch duplicates count past it."""
        self._accepted += 1

    def assign_lsns(self, first_lsn: int) -> None:
        self._first_lsn = first_lsn

    def resolve(self, existing: Existing) -> WriteResult:
        lsn = existing.lsn or self._first_lsn + existing.batch_index
        return WriteResult(existing.record_id, lsn, "exists")

    # -- helpers -------------------------------------------------------------------

    @staticmethod
    def _dedupe_key(kind: RecordKind, record_id: str, record: Any) -> tuple[RecordKind, str]:
        if isinstance(record, CoSignature):
            return kind, f"{record.assertion_id}:{record.signature.agent_id}"
        if isinstance(record, Source | Retraction):
            return kind, record.source_hash
        return kind, record_id

    def _pending_source_conflict(self, record_id: str, record: Any) -> StemeError | None:
        """Another registration of a source hash earlier in this batch is a conflict,
        exactly as it is once stored (not a duplicate: its content differs)."""
        if not isinstance(record, Source):
            return None
        pending_id = self._pending_sources[record.source_hash][0]
        if pending_id == record_id:
            return None
        return ConflictError(
            f"source {record.source_hash} is already registered by another record",
            code="source_exists",
            details={"field": "source_hash", "existing_id": pending_id},
        )

    def _stored_lsn(self, kind: RecordKind, record_id: str, record: Any) -> int | None:
        store = self._store
        if isinstance(record, CoSignature):
            return store.cosignature_lsn(record.assertion_id, record.signature.agent_id)
        if isinstance(record, Source):
            row = store.source(record.source_hash)
            if row is None:
                return None
            if row.id != record_id:
                # Same hash, other registration: refused below with a clear error.
                return None
            return row.lsn
        if isinstance(record, Retraction):
            row = store.source(record.source_hash)
            return row.retraction_lsn if row is not None else None
        if kind in EVENT_KINDS:
            return None
        if kind is RecordKind.ASSERTION and record_id in self._prefetched:
            return self._stored_assertions.get(record_id)
        return store.record_lsn(kind, record_id)

    def _assertion_known(self, assertion_id: str) -> bool:
        if (RecordKind.ASSERTION, assertion_id) in self._pending:
            return True
        return bool(self._store.assertion_lsns([assertion_id]))

    def _references(self, kind: RecordKind, record: Any) -> StemeError | None:
        if isinstance(record, Assertion):
            if record.parent and not self._assertion_known(record.parent):
                return SemanticError("parent", "must name a stored assertion")
        elif isinstance(record, CoSignature | Vote | QuarantineReview):
            if not self._assertion_known(record.assertion_id):
                return NotFoundError(
                    f"assertion {record.assertion_id} not found",
                    code="assertion_not_found",
                    details={"field": "assertion_id"},
                )
        elif isinstance(record, Supersession):
            for field in ("old", "new"):
                if not self._assertion_known(getattr(record, field)):
                    return SemanticError(field, "must name a stored assertion")
        elif isinstance(record, Epoch):
            for i, old in enumerate(record.supersedes):
                known = (RecordKind.EPOCH, old) in self._pending or self._store.record_lsn(
                    RecordKind.EPOCH, old
                )
                if not known:
                    return SemanticError(f"supersedes[{i}]", "must name a stored epoch")
        elif isinstance(record, Source):
            row = self._store.source(record.source_hash)
            if row is not None:
                return ConflictError(
                    f"source {record.source_hash} is already registered by another record",
                    code="source_exists",
                    details={"field": "source_hash", "existing_id": row.id},
                )
        return None

    def _retraction_error(self, record: Retraction) -> StemeError | None:
        pending = self._pending_sources.get(record.source_hash)
        if pending is not None:
            registered_by = pending[1]
        else:
            row = self._store.source(record.source_hash)
            if row is None:
                return NotFoundError(
                    f"source {record.source_hash} is not registered",
                    code="source_not_found",
                    details={"field": "source_hash"},
                )
            registered_by = row.registered_by
        signers = {s.agent_id for s in record.signatures}
        if not signers & set(registered_by):
            return AuthorizationError(
                "only an agent that registered the source may retract it",
                code="not_source_owner",
                details={"field": "signatures"},
            )
        return None
