"""What reads return (API.md "Query responses")."""

from __future__ import annotations

import msgspec

from stemedb.model.records import ObjectValue, Signature


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


class FeedItem(msgspec.Struct, kw_only=True):
    lsn: int
    kind: str
    id: str
    committed_at: float
    record: dict[str, object] | None


class FeedPage(msgspec.Struct, kw_only=True):
    items: list[FeedItem]
    next_after: int
    last_lsn: int
