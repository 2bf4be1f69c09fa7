"""Reads of single records: one assertion, its provenance (trace), the change feed,
per-agent information and the registries (sources, epochs).

Answers are ``wire`` structs: store rows are converted here, at the boundary."""

from __future__ import annotations

from typing import Any, Final, TypeVar

import msgspec

from stemedb.errors import NotFoundError, ValidationError
from stemedb.model.kinds import TYPE_OF_KIND, RecordKind
from stemedb.model.signing import is_hex64
from stemedb.query.audit import AuditLog
from stemedb.store.protocol import RecordReads
from stemedb.wire import (
    AgentInfo,
    AssertionBody,
    AssertionDetail,
    AssertionWarning,
    EpochRow,
    FeedItem,
    FeedPage,
    SignatureRow,
    SourceRow,
    SupersessionRow,
    TraceResult,
    TrustRow,
    VoteRow,
    VoteSummary,
)
from stemedb.wire.feed import FEED_KIND_NAMES

T = TypeVar("T")

MAX_FEED_LIMIT: Final = 1000
MAX_PARENT_DEPTH: Final = 256
_DECODERS: dict[RecordKind, msgspec.msgpack.Decoder[Any]] = {
    kind: msgspec.msgpack.Decoder(cls) for kind, cls in TYPE_OF_KIND.items()
}


def _wire(row: object, cls: type[T]) -> T:
    """A store row as the wire struct of the same fields (``store.rows`` -> ``wire``)."""
    return msgspec.convert(row, cls, from_attributes=True)


def _check_id(field: str, value: str) -> None:
    if not is_hex64(value):
        raise ValidationError(field, "must be 64 lowercase hex characters")


class Provenance:
    def __init__(self, store: RecordReads, audit: AuditLog) -> None:
        self._store = store
        self._audit = audit

    def assertion(self, assertion_id: str) -> AssertionDetail:
        _check_id("id", assertion_id)
        found = self._store.assertion(assertion_id)
        if found is None:
            raise NotFoundError(f"assertion {assertion_id} not found", code="assertion_not_found")
        lsn, record, committed_at = found
        row = self._store.candidates_by_ids([assertion_id])[0]
        votes = self._store.votes(lsn)
        warnings: list[AssertionWarning] = []
        if row.tainted_by is not None:
            source = self._store.source(row.tainted_by)
            direct = row.source_hash == row.tainted_by
            warnings.append(
                AssertionWarning(
                    source_hash=row.tainted_by,
                    kind="retracted_source" if direct else "retracted_ancestor",
                    reason=source.retracted_reason if source else None,
                )
            )
        supersessions = self._store.supersessions_of(assertion_id)
        return AssertionDetail(
            id=assertion_id,
            lsn=lsn,
            committed_at=committed_at,
            assertion=AssertionBody.of(record),
            signatures=[_wire(s, SignatureRow) for s in self._store.signatures(lsn)],
            votes=VoteSummary(
                count=len(votes), voters=len({v.agent_id for v in votes}), weight=row.vote_weight
            ),
            source_class=row.source_class,
            source_warnings=warnings,
            superseded_by=[s.new for s in supersessions if s.old == assertion_id],
            supersedes=[s.old for s in supersessions if s.new == assertion_id],
        )

    def trace(self, assertion_id: str) -> TraceResult:
        detail = self.assertion(assertion_id)
        parents: list[AssertionDetail] = []
        parent = detail.assertion.parent
        seen = {assertion_id}
        while isinstance(parent, str) and parent not in seen and len(parents) < MAX_PARENT_DEPTH:
            seen.add(parent)
            try:
                parents.append(self.assertion(parent))
            except NotFoundError:
                break
            parent = parents[-1].assertion.parent
        source_hash = detail.assertion.source_hash
        epoch_id = detail.assertion.epoch
        source = self._store.source(source_hash) if isinstance(source_hash, str) else None
        epoch = self._store.epoch(epoch_id) if isinstance(epoch_id, str) else None
        return TraceResult(
            id=assertion_id,
            assertion=detail,
            source=None if source is None else _wire(source, SourceRow),
            parents=parents,
            children=self._store.children(assertion_id),
            supersessions=[
                _wire(s, SupersessionRow) for s in self._store.supersessions_of(assertion_id)
            ],
            votes=[_wire(v, VoteRow) for v in self._store.votes(detail.lsn)],
            epoch=None if epoch is None else _wire(epoch, EpochRow),
            queries=self._audit.queries_using(assertion_id),
        )

    def feed(self, after: int, limit: int) -> FeedPage:
        """Committed records with LSN > ``after``, in LSN order."""
        if after < 0:
            raise ValidationError("after", "must be a non-negative LSN")
        if not 1 <= limit <= MAX_FEED_LIMIT:
            raise ValidationError("limit", f"must be between 1 and {MAX_FEED_LIMIT}")
        items = []
        for change in self._store.changes(after, limit):
            kind = RecordKind(change.kind)
            blob = self._store.record_blob(change.kind, change.ref, change.lsn)
            record = None if blob is None else _DECODERS[kind].decode(blob)
            items.append(
                FeedItem(
                    lsn=change.lsn,
                    kind=FEED_KIND_NAMES[kind],
                    id=change.ref,
                    committed_at=change.committed_at,
                    record=record,
                )
            )
        next_after = items[-1].lsn if items else after
        return FeedPage(items=items, next_after=next_after, last_lsn=self._store.applied_lsn())

    def agent(self, agent_id: str, now: float) -> AgentInfo:
        _check_id("agent_id", agent_id)
        trust_row = self._store.trust_row(agent_id)
        return AgentInfo(
            agent_id=agent_id,
            trust=self._store.trust(agent_id, now),
            trust_record=None if trust_row is None else _wire(trust_row, TrustRow),
            counts=self._store.agent_counts(agent_id),
        )

    def epochs(self) -> list[EpochRow]:
        return [_wire(row, EpochRow) for row in self._store.epochs()]

    def epoch(self, epoch_id: str) -> EpochRow | None:
        row = self._store.epoch(epoch_id)
        return None if row is None else _wire(row, EpochRow)

    def sources(self, *, after: str | None, limit: int) -> list[SourceRow]:
        return [_wire(row, SourceRow) for row in self._store.sources(after=after, limit=limit)]

    def source(self, source_hash: str) -> SourceRow | None:
        """One registered source, with its content."""
        row = self._store.source(source_hash, with_content=True)
        return None if row is None else _wire(row, SourceRow)
