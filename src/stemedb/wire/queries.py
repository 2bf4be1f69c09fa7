"""Reads: the query parameters of ``POST /v1/query`` and what queries return (API.md
"Query responses")."""

from __future__ import annotations

import msgspec

from stemedb.model.records import ObjectValue, Signature
from stemedb.wire.search import Suggestion


class QuerySpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """One read of ``POST /v1/query`` (the parameters of ``GET /v1/query``)."""

    subject: str | None = None
    subject_prefix: str | None = None
    predicate: str | None = None
    lens: str | None = None
    as_of: float | None = None
    valid_at: float | None = None
    since: float | None = None
    lifecycle: list[str] = []
    epoch: str | None = None
    source_class: list[str] = []
    agent_id: str | None = None
    include_retracted: bool = False
    include_superseded: bool = False
    include_quarantined: bool = False
    max_stale_seconds: float | None = None
    limit: int = 100
    cursor: str | None = None


class QueryBatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    queries: list[QuerySpec]


class ClaimView(msgspec.Struct, kw_only=True):
    """One assertion as read: the record, its signatures, its weight under the lens."""

    id: str
    lsn: int
    subject: str
    predicate: str
    object: ObjectValue
    confidence: float
    source_hash: str | None
    source_class: str  # effective: explicit, else the registered source's, else expert
    epoch: str | None
    parent: str | None
    lifecycle: str
    valid_from: int | None
    valid_to: int | None
    timestamp: int
    signatures: list[Signature]
    weight: float = 0.0
    vote_weight: float = 0.0
    retracted_source: bool = False
    superseded: bool = False


class SourceWarning(msgspec.Struct, kw_only=True):
    assertion_id: str
    source_hash: str
    kind: str  # "retracted_source" (cites it) | "retracted_ancestor" (parent chain does)
    reason: str | None


class ResolutionView(msgspec.Struct, kw_only=True):
    winner: ClaimView | None
    resolution_confidence: float
    conflict_score: float
    candidates_count: int
    status: str | None = None
    deciding_tier: int | None = None


class GroupResult(msgspec.Struct, kw_only=True):
    """One (subject, predicate) of a prefix or multi-predicate query."""

    subject: str
    predicate: str
    resolution: ResolutionView


class QueryResult(msgspec.Struct, kw_only=True):
    query_id: str
    subject: str | None
    predicate: str | None
    lens: str
    resolution: ResolutionView | None
    claims: list[ClaimView]
    source_warnings: list[SourceWarning]
    stale: bool = False
    next_cursor: str | None = None
    subject_prefix: str | None = None
    results: list[GroupResult] | None = None
    as_of_lsn: int = 0
    suggestions: list[Suggestion] | msgspec.UnsetType = msgspec.UNSET
    """Only when no assertion is stored for what was asked: the closest stored keys
    ("did you mean", at most 5; ``docs/design/search.md``)."""


class QueryBatchResponse(msgspec.Struct):
    results: list[QueryResult]


class SkepticClaim(msgspec.Struct, kw_only=True):
    value: ObjectValue
    support_share: float
    weight: float
    tier: int
    source_class: str
    claim_ids: list[str]


class SkepticResult(msgspec.Struct, kw_only=True):
    query_id: str
    subject: str
    predicate: str
    status: str
    conflict_score: float
    candidates_count: int
    claims: list[SkepticClaim]
    source_warnings: list[SourceWarning]


__all__ = [
    "ClaimView",
    "GroupResult",
    "QueryBatchRequest",
    "QueryBatchResponse",
    "QueryResult",
    "QuerySpec",
    "ResolutionView",
    "SkepticClaim",
    "SkepticResult",
    "SourceWarning",
]
