"""Every HTTP request and response type of the API, defined once (API.md).

The server (``api``, ``query``) builds and encodes these structs, the generated OpenAPI
document describes them, and the SDK (``client``) decodes into them. The package depends
only on ``model`` and ``errors``: a change of the store or of the engine does not change
the wire. Records themselves (``model.records``) are sent as they are.

Modules by concept: ``errors`` (the envelope), ``writes``, ``queries``, ``provenance``
(one assertion and its trace), ``registry`` (sources, epochs), ``agents``, ``audit``,
``feed``, ``health``, ``admin``, ``search``.

The response structs do not forbid unknown fields, so a newer server that adds a field
does not break an older SDK; request bodies do.
"""

from stemedb.wire.admin import (
    ApiKeyList,
    BreakerList,
    ClusterNode,
    ClusterStatus,
    CreateKeyBody,
    DatabaseStatus,
    DeletedKey,
    DeletedOverride,
    OutcomeBody,
    RateOverrideBody,
    RateOverrideList,
    RateOverrideView,
    ResetBody,
    SlowQuery,
    SlowQueryList,
    Standby,
    StorageStats,
    TripBody,
)
from stemedb.wire.agents import (
    AgentDetail,
    AgentInfo,
    BreakerStateName,
    BreakerView,
    QuotaView,
    TrustRow,
)
from stemedb.wire.audit import AuditList, AuditRecord, Contribution
from stemedb.wire.errors import ErrorBody, ErrorEnvelope
from stemedb.wire.feed import FeedItem, FeedPage, decode_feed_item, decode_feed_page
from stemedb.wire.health import HealthResponse, ReadyResponse
from stemedb.wire.provenance import (
    AssertionBody,
    AssertionDetail,
    AssertionWarning,
    SignatureRow,
    SupersessionRow,
    TraceResult,
    VoteRow,
    VoteSummary,
)
from stemedb.wire.quarantine import QuarantineItem, QuarantineList, QuarantineReviewed
from stemedb.wire.queries import (
    ClaimView,
    GroupResult,
    QueryBatchRequest,
    QueryBatchResponse,
    QueryResult,
    QuerySpec,
    ResolutionView,
    SkepticClaim,
    SkepticResult,
    SourceWarning,
)
from stemedb.wire.registry import EpochList, EpochRow, SourceList, SourceRow
from stemedb.wire.search import (
    PredicateList,
    PredicateSummary,
    SearchHit,
    SearchResponse,
    SubjectList,
    SubjectSummary,
    Suggestion,
)
from stemedb.wire.writes import (
    BatchBody,
    BatchItem,
    BatchRequest,
    BatchResponse,
    RetractBody,
    WriteResult,
)

__all__ = [
    "AgentDetail",
    "AgentInfo",
    "ApiKeyList",
    "AssertionBody",
    "AssertionDetail",
    "AssertionWarning",
    "AuditList",
    "AuditRecord",
    "BatchBody",
    "BatchItem",
    "BatchRequest",
    "BatchResponse",
    "BreakerList",
    "BreakerStateName",
    "BreakerView",
    "ClaimView",
    "ClusterNode",
    "ClusterStatus",
    "Contribution",
    "CreateKeyBody",
    "DatabaseStatus",
    "DeletedKey",
    "DeletedOverride",
    "EpochList",
    "EpochRow",
    "ErrorBody",
    "ErrorEnvelope",
    "FeedItem",
    "FeedPage",
    "GroupResult",
    "HealthResponse",
    "OutcomeBody",
    "PredicateList",
    "PredicateSummary",
    "QuarantineItem",
    "QuarantineList",
    "QuarantineReviewed",
    "QueryBatchRequest",
    "QueryBatchResponse",
    "QueryResult",
    "QuerySpec",
    "QuotaView",
    "RateOverrideBody",
    "RateOverrideList",
    "RateOverrideView",
    "ReadyResponse",
    "ResetBody",
    "ResolutionView",
    "RetractBody",
    "SearchHit",
    "SearchResponse",
    "SignatureRow",
    "SkepticClaim",
    "SkepticResult",
    "SlowQuery",
    "SlowQueryList",
    "SourceList",
    "SourceRow",
    "SourceWarning",
    "Standby",
    "StorageStats",
    "SubjectList",
    "SubjectSummary",
    "Suggestion",
    "SupersessionRow",
    "TraceResult",
    "TripBody",
    "TrustRow",
    "VoteRow",
    "VoteSummary",
    "WriteResult",
    "decode_feed_item",
    "decode_feed_page",
]
