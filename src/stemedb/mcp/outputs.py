"""What each tool answers: compact msgspec structs, whose JSON Schema is the tool's
output schema, and their construction from the API's answers (``stemedb.wire``).

Compact means what a model needs to reason and cite: every claim carries its ``id``,
its value, confidence, weight under the lens and evidence; signatures are reduced to
the signing agents. Lists are cut at the tool's ``limit`` (10 by default, 50 at most).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from stemedb.model.canonical import canonical_json
from stemedb.model.records import ObjectValue
from stemedb.wire import ClaimView, QueryResult, SkepticResult, TraceResult, WriteResult
from stemedb.wire.impact import RetractionImpact

Value = str | float | bool
ValueType = Literal["text", "number", "boolean", "ref"]


class _Output(msgspec.Struct, kw_only=True):
    pass


class Claim(_Output):
    """One claim (an immutable, signed assertion)."""

    id: str
    value: Value
    value_type: ValueType
    confidence: float
    weight: float  # its weight under the lens that answered
    source_class: str
    source_hash: str | None
    signers: list[str]  # agent ids (hex public keys)
    timestamp: int
    retracted_source: bool  # cites a retracted source (excluded from the resolution)


class Suggestion(_Output):
    """A stored subject (``predicate`` None) or (subject, predicate) close to the asked."""

    subject: str
    predicate: str | None
    claims: int


class QueryOutput(_Output):
    query_id: str  # the audit record of this read
    subject: str
    predicate: str
    lens: str
    winner: Claim | None
    resolution_confidence: float
    conflict_score: float  # 0 = everyone agrees, 1 = evenly split
    candidates_count: int
    claims: list[Claim]
    truncated: bool  # more claims than listed
    suggestions: list[Suggestion] = []  # when nothing matched: what exists close to it


class SkepticValue(_Output):
    value: Value
    value_type: ValueType
    support_share: float
    source_class: str
    claim_ids: list[str]


class SkepticOutput(_Output):
    query_id: str
    subject: str
    predicate: str
    status: str  # unanimous | agreed | contested
    conflict_score: float
    candidates_count: int
    values: list[SkepticValue]


class Signer(_Output):
    agent_id: str
    signed_at: int
    custodial: bool  # the server signed with a custodial key (see custodial_api_key_id)
    custodial_api_key_id: str | None = None
    custodial_api_key_name: str | None = None


class TraceOutput(_Output):
    id: str
    subject: str
    predicate: str
    value: Value
    value_type: ValueType
    confidence: float
    source_class: str
    lifecycle: str
    committed_at: float
    signers: list[Signer]
    source_hash: str | None
    source_uri: str | None
    source_title: str | None
    source_retracted: bool
    warnings: list[str]
    parents: list[str]  # the revision chain, nearest first
    children: list[str]
    superseded_by: list[str]
    votes: int
    vote_weight: float
    used_by_queries: int  # audited queries whose answer it contributed to


class WriteOutput(_Output):
    id: str  # the record's content id: cite it, or trace it
    lsn: int
    status: Literal["created", "exists"]
    agent_id: str  # who signed it
    custodial: bool  # signed by the server's custodial key for this API key


class ExcludedClaim(_Output):
    id: str
    subject: str
    predicate: str
    kind: Literal["cites", "descends"]


class RetractOutput(_Output):
    dry_run: bool
    source_hash: str
    registered: bool
    already_retracted: bool
    may_retract: bool  # this session's signer registered the source (only they may retract)
    excluded: list[ExcludedClaim]  # what the cascade excludes (would exclude, in a dry run)
    excluded_count: int
    truncated: bool
    retraction: WriteOutput | None = None  # the retraction record, when not a dry run


class SearchHit(_Output):
    subject: str
    predicate: str
    matched_field: str
    snippet: str
    claims: int
    score: float


class SearchOutput(_Output):
    hits: list[SearchHit]


def value_of(value: ObjectValue) -> tuple[Value, ValueType]:
    if value.type == "json":  # the pinned output schema has no json type: its JCS text
        return canonical_json(value.value).decode("utf-8"), "text"
    return value.value, value.type  # type: ignore[return-value]


def claim_of(view: ClaimView) -> Claim:
    value, value_type = value_of(view.object)
    return Claim(
        id=view.id,
        value=value,
        value_type=value_type,
        confidence=view.confidence,
        weight=round(view.weight, 6),
        source_class=view.source_class,
        source_hash=view.source_hash,
        signers=[s.agent_id for s in view.signatures],
        timestamp=view.timestamp,
        retracted_source=view.retracted_source,
    )


def query_output(result: QueryResult, subject: str, predicate: str, limit: int) -> QueryOutput:
    resolution = result.resolution
    winner = resolution.winner if resolution is not None else None
    return QueryOutput(
        query_id=result.query_id,
        subject=subject,
        predicate=predicate,
        lens=result.lens,
        winner=claim_of(winner) if winner is not None else None,
        resolution_confidence=resolution.resolution_confidence if resolution else 0.0,
        conflict_score=resolution.conflict_score if resolution else 0.0,
        candidates_count=resolution.candidates_count if resolution else len(result.claims),
        claims=[claim_of(c) for c in result.claims[:limit]],
        truncated=len(result.claims) > limit or result.next_cursor is not None,
        suggestions=[
            Suggestion(subject=s.subject, predicate=s.predicate, claims=s.claims)
            for s in getattr(result, "suggestions", None) or ()
        ],
    )


def skeptic_output(result: SkepticResult, limit: int) -> SkepticOutput:
    values = []
    for claim in result.claims[:limit]:
        value, value_type = value_of(claim.value)
        values.append(
            SkepticValue(
                value=value,
                value_type=value_type,
                support_share=round(claim.support_share, 6),
                source_class=claim.source_class,
                claim_ids=claim.claim_ids[:limit],
            )
        )
    return SkepticOutput(
        query_id=result.query_id,
        subject=result.subject,
        predicate=result.predicate,
        status=result.status,
        conflict_score=result.conflict_score,
        candidates_count=result.candidates_count,
        values=values,
    )


def trace_output(trace: TraceResult, limit: int) -> TraceOutput:
    detail = trace.assertion
    body = detail.assertion
    value, value_type = value_of(body.object)
    custodial = {c.agent_id: c for c in trace.custodial_signers}
    signers = []
    for row in detail.signatures:
        held = custodial.get(row.agent_id)
        signers.append(
            Signer(
                agent_id=row.agent_id,
                signed_at=row.signed_at,
                custodial=held is not None,
                custodial_api_key_id=held.api_key_id if held else None,
                custodial_api_key_name=held.api_key_name if held else None,
            )
        )
    source = trace.source
    return TraceOutput(
        id=trace.id,
        subject=body.subject,
        predicate=body.predicate,
        value=value,
        value_type=value_type,
        confidence=body.confidence,
        source_class=detail.source_class,
        lifecycle=body.lifecycle,
        committed_at=detail.committed_at,
        signers=signers,
        source_hash=body.source_hash,
        source_uri=source.uri if source else None,
        source_title=source.title if source else None,
        source_retracted=source.retracted if source else False,
        warnings=[f"{w.kind}: {w.source_hash}" for w in detail.source_warnings],
        parents=[p.id for p in trace.parents[:limit]],
        children=trace.children[:limit],
        superseded_by=detail.superseded_by[:limit],
        votes=detail.votes.count,
        vote_weight=detail.votes.weight,
        used_by_queries=len(trace.queries),
    )


def write_output(result: WriteResult, agent_id: str, *, custodial: bool) -> WriteOutput:
    return WriteOutput(
        id=result.id, lsn=result.lsn, status=result.status, agent_id=agent_id, custodial=custodial
    )


def retract_output(
    impact: RetractionImpact, signer: str | None, retraction: WriteOutput | None
) -> RetractOutput:
    return RetractOutput(
        dry_run=retraction is None,
        source_hash=impact.source_hash,
        registered=impact.registered,
        already_retracted=impact.already_retracted,
        may_retract=signer is not None and signer in impact.registered_by,
        excluded=[
            ExcludedClaim(id=e.id, subject=e.subject, predicate=e.predicate, kind=e.kind)
            for e in impact.excluded
        ],
        excluded_count=impact.excluded_count,
        truncated=impact.truncated,
        retraction=retraction,
    )


__all__ = [
    "Claim",
    "QueryOutput",
    "RetractOutput",
    "SearchHit",
    "SearchOutput",
    "SkepticOutput",
    "TraceOutput",
    "WriteOutput",
    "claim_of",
    "query_output",
    "retract_output",
    "skeptic_output",
    "trace_output",
    "write_output",
]
