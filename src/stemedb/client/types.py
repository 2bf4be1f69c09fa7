"""Typed answers of the HTTP API, decoded with msgspec.

Read results that the server builds from engine-free modules are reused as they are
(``stemedb.query.results``, ``stemedb.store.rows``); the rest mirror the server's
structs field for field (``tests/client/test_client_types.py`` checks that they stay
in step). None of them forbids unknown fields, so a newer server that adds a field
does not break an older client.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from stemedb.query.results import (
    ClaimView,
    FeedItem,
    FeedPage,
    GroupResult,
    QueryResult,
    ResolutionView,
    SkepticClaim,
    SkepticResult,
    SourceWarning,
)
from stemedb.store.rows import (
    EpochRow,
    SignatureRow,
    SourceRow,
    SupersessionRow,
    TrustRow,
    VoteRow,
)


class WriteResult(msgspec.Struct, frozen=True, kw_only=True):
    """A stored record: ``created`` (201) or ``exists`` (200, the same content ID)."""

    id: str
    lsn: int
    status: Literal["created", "exists"]


class ErrorBody(msgspec.Struct, kw_only=True):
    code: str
    type: str
    message: str
    details: dict[str, Any]
    retryable: bool


class BatchItem(msgspec.Struct, kw_only=True):
    """One item of ``assert_batch``: ``created``/``exists`` with id and lsn, or ``error``."""

    index: int
    status: Literal["created", "exists", "error"]
    id: str | None = None
    lsn: int | None = None
    error: ErrorBody | None = None


class BatchResult(msgspec.Struct, kw_only=True):
    results: list[BatchItem]
    created: int
    exists: int
    failed: int


class VoteSummary(msgspec.Struct, kw_only=True):
    count: int
    voters: int
    weight: float


class AssertionDetail(msgspec.Struct, kw_only=True):
    """``GET /v1/assertions/{id}``."""

    id: str
    lsn: int
    committed_at: float
    assertion: dict[str, Any]
    signatures: list[SignatureRow]
    votes: VoteSummary
    source_class: str
    source_warnings: list[dict[str, Any]]
    superseded_by: list[str]
    supersedes: list[str]


class TraceResult(msgspec.Struct, kw_only=True):
    """``GET /v1/trace/{id}``: the provenance of one assertion."""

    id: str
    assertion: AssertionDetail
    source: SourceRow | None
    parents: list[AssertionDetail]
    children: list[str]
    supersessions: list[SupersessionRow]
    votes: list[VoteRow]
    epoch: EpochRow | None
    queries: list[str]


class AgentInfo(msgspec.Struct, kw_only=True):
    """``GET /v1/agents/{agent_id}``."""

    agent_id: str
    trust: float
    trust_record: TrustRow | None
    counts: dict[str, int]


class Contribution(msgspec.Struct, array_like=True):
    assertion_id: str
    weight: float


class AuditRecord(msgspec.Struct, kw_only=True):
    """One audited query: who asked what, and which claims contributed how much."""

    query_id: str
    at: float
    agent_id: str | None
    endpoint: str
    lens: str
    subject: str | None
    predicate: str | None
    parameters: dict[str, Any]
    winner: str | None
    contributions: list[Contribution]
    duration_ms: float


class AuditList(msgspec.Struct):
    queries: list[AuditRecord]


class EpochList(msgspec.Struct):
    epochs: list[EpochRow]


class SourceList(msgspec.Struct, kw_only=True):
    sources: list[SourceRow]
    next_cursor: str | None


class QueryBatchResult(msgspec.Struct):
    results: list[QueryResult]


class Health(msgspec.Struct, kw_only=True):
    """``GET /health``."""

    status: str
    version: str
    uptime_seconds: float


class Readiness(msgspec.Struct, kw_only=True):
    """``GET /ready``: ``ready`` (200) or ``not_ready`` (503) with reasons. ``ready()``
    returns this for both statuses instead of raising."""

    status: Literal["ready", "not_ready"]
    reasons: list[str]
    applied_lsn: int


class QuerySpec(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One read of ``query_batch`` (the parameters of ``query``)."""

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
    max_stale_seconds: float | None = None
    limit: int = 100
    cursor: str | None = None


__all__ = [
    "AgentInfo",
    "AssertionDetail",
    "AuditList",
    "AuditRecord",
    "BatchItem",
    "BatchResult",
    "ClaimView",
    "Contribution",
    "EpochList",
    "EpochRow",
    "ErrorBody",
    "FeedItem",
    "FeedPage",
    "GroupResult",
    "Health",
    "QueryBatchResult",
    "QueryResult",
    "QuerySpec",
    "Readiness",
    "ResolutionView",
    "SignatureRow",
    "SkepticClaim",
    "SkepticResult",
    "SourceList",
    "SourceRow",
    "SourceWarning",
    "SupersessionRow",
    "TrustRow",
    "VoteRow",
    "VoteSummary",
    "WriteResult",
]
