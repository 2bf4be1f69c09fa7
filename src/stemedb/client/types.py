"""Typed answers of the HTTP API: the server's own ``stemedb.wire`` structs.

The SDK decodes every answer into the struct the server encodes it from, so the two
cannot drift apart; a few keep the SDK's older names (``BatchResult`` is the wire's
``BatchResponse``, ``Health`` its ``HealthResponse``, ...). None of the answer structs
forbids unknown fields, so a newer server that adds a field does not break an older
client. Records inside answers (a feed item's ``record``) are ``stemedb.model.records``
structs.
"""

from __future__ import annotations

from stemedb.wire import (
    AgentInfo,
    AssertionBody,
    AssertionDetail,
    AssertionWarning,
    AuditList,
    AuditRecord,
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

__all__ = [
    "AgentInfo",
    "AssertionBody",
    "AssertionDetail",
    "AssertionWarning",
    "AuditList",
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
