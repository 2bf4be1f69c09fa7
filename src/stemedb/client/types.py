"""Typed answers of the HTTP API: the server's own ``stemedb.wire`` structs.

The SDK decodes every answer into the struct the server encodes it from, so the two
cannot drift apart; a few keep the SDK's older names (``BatchResult`` is the wire's
``BatchResponse``, ``Health`` its ``HealthResponse``, ...). None of the answer structs
forbids unknown fields, so a newer server that adds a field does not break an older
client. Records inside answers (a feed item's ``record``) are ``stemedb.model.records``
structs.

Every answer is typed to the bottom: where the server's struct keeps a ``dict`` (an
agent's ``counts``, an audit record's ``parameters``, which is also the audit file's
row), the SDK's struct here has the same fields, that one typed (``test_client_surface.py``
checks that the fields stay the server's). The one free-form object
left is an error's ``details`` (as on every error envelope and ``ApiError.details``).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from stemedb.wire import (
    AssertionBody,
    AssertionDetail,
    AssertionWarning,
    BatchItem,
    ClaimView,
    Contribution,
    EpochList,
    EpochRow,
    ErrorBody,
    FeedItem,
    FeedPage,
    GroupResult,
    PredicateList,
    PredicateSummary,
    QueryResult,
    QuerySpec,
    ResolutionView,
    SearchHit,
    SearchResponse,
    SignatureRow,
    SkepticClaim,
    SkepticResult,
    SourceList,
    SourceRow,
    SourceWarning,
    SubjectList,
    SubjectSummary,
    Suggestion,
    SupersessionRow,
    TraceResult,
    TrustRow,
    VoteRow,
    VoteSummary,
    WriteResult,
)
from stemedb.wire import BatchResponse as BatchResult
from stemedb.wire import HealthResponse as Health
from stemedb.wire import QueryBatchResponse as QueryBatchResult
from stemedb.wire import ReadyResponse as Readiness
from stemedb.wire.impact import ExcludedClaim, RetractionImpact


class SourceWriteResult(msgspec.Struct, frozen=True):
    """``register_source``'s answer: the stored record, and the ``source_hash`` that
    assertions cite (sha256 of the content, unless given)."""

    id: str
    lsn: int
    status: Literal["created", "exists"]
    source_hash: str


class AgentCounts(msgspec.Struct, kw_only=True):
    """What an agent signed: assertions it authored, co-signatures, votes."""

    assertions: int = 0
    cosignatures: int = 0
    votes: int = 0


class AgentInfo(msgspec.Struct, kw_only=True):
    """``GET /v1/agents/{agent_id}``: trust and counts (``wire.AgentInfo``, typed)."""

    agent_id: str
    trust: float
    trust_record: TrustRow | None
    counts: AgentCounts


class AuditParameters(msgspec.Struct, kw_only=True):
    """The parameters an audited query was asked with (the unset ones are absent)."""

    subject: str | None = None
    subject_prefix: str | None = None
    predicate: str | None = None
    lens: str | None = None
    as_of: float | None = None
    valid_at: float | None = None
    since: float | None = None
    lifecycle: list[str] = msgspec.field(default_factory=list)
    epoch: str | None = None
    source_class: list[str] = msgspec.field(default_factory=list)
    agent_id: str | None = None
    include_retracted: bool = False
    include_superseded: bool = False
    max_stale_seconds: float | None = None
    limit: int | None = None


class AuditRecord(msgspec.Struct, kw_only=True):
    """One audited query: who asked what, which claims contributed how much
    (``wire.AuditRecord``, typed)."""

    query_id: str
    at: float
    agent_id: str | None
    endpoint: str
    lens: str
    subject: str | None
    predicate: str | None
    parameters: AuditParameters
    winner: str | None
    contributions: list[Contribution]
    duration_ms: float


class AuditList(msgspec.Struct):
    queries: list[AuditRecord]


__all__ = [
    "AgentCounts",
    "AgentInfo",
    "AssertionBody",
    "AssertionDetail",
    "AssertionWarning",
    "AuditList",
    "AuditParameters",
    "AuditRecord",
    "BatchItem",
    "BatchResult",
    "ClaimView",
    "Contribution",
    "EpochList",
    "EpochRow",
    "ErrorBody",
    "ExcludedClaim",
    "FeedItem",
    "FeedPage",
    "GroupResult",
    "Health",
    "PredicateList",
    "PredicateSummary",
    "QueryBatchResult",
    "QueryResult",
    "QuerySpec",
    "Readiness",
    "ResolutionView",
    "RetractionImpact",
    "SearchHit",
    "SearchResponse",
    "SignatureRow",
    "SkepticClaim",
    "SkepticResult",
    "SourceList",
    "SourceRow",
    "SourceWarning",
    "SourceWriteResult",
    "SubjectList",
    "SubjectSummary",
    "Suggestion",
    "SupersessionRow",
    "TraceResult",
    "TrustRow",
    "VoteRow",
    "VoteSummary",
    "WriteResult",
]
