"""The StemeDB Python SDK: ``Client`` (blocking) and ``AsyncClient`` (asyncio).

Both sign writes with the client's :class:`AgentKey`, decode answers into msgspec
structs, raise :class:`ApiError` subclasses (mapped from the error envelope's ``type``,
and subclasses of the matching :mod:`stemedb.errors` class) or :class:`NetworkError`,
and retry 429/503 answers and transport failures with exponential backoff and jitter.
Every request is idempotent — a write is named by its content ID, so a retried
assertion is stored once — which is why writes are retried too.

The SDK talks HTTP only: importing it loads neither the web framework nor the engine.
Guide: ``docs/reference/sdk.md``.
"""

from stemedb.client.async_client import AsyncClient
from stemedb.client.base import AssertionFields
from stemedb.client.calls import QueryFilters
from stemedb.client.config import DEFAULT_URL, key_from_env, load_key_file
from stemedb.client.errors import (
    ApiError,
    AuthenticationError,
    AuthorizationError,
    ConflictError,
    InternalError,
    NetworkError,
    NotFoundError,
    QuotaError,
    RateLimitError,
    RequestTimeoutError,
    SerializationError,
    StorageError,
    UnavailableError,
    ValidationError,
)
from stemedb.client.retry import RetryPolicy
from stemedb.client.sync_client import Client
from stemedb.client.types import (
    AgentCounts,
    AgentInfo,
    AssertionDetail,
    AuditParameters,
    AuditRecord,
    BatchItem,
    BatchResult,
    ClaimView,
    EpochRow,
    FeedItem,
    FeedPage,
    Health,
    PredicateList,
    QueryResult,
    QuerySpec,
    Readiness,
    SearchHit,
    SearchResponse,
    SkepticResult,
    SourceList,
    SourceRow,
    SourceWriteResult,
    SubjectList,
    Suggestion,
    TraceResult,
    WriteResult,
)
from stemedb.model.records import ObjectValue
from stemedb.model.signing import AgentKey

__all__ = [
    "DEFAULT_URL",
    "AgentCounts",
    "AgentInfo",
    "AgentKey",
    "ApiError",
    "AssertionDetail",
    "AssertionFields",
    "AsyncClient",
    "AuditParameters",
    "AuditRecord",
    "AuthenticationError",
    "AuthorizationError",
    "BatchItem",
    "BatchResult",
    "ClaimView",
    "Client",
    "ConflictError",
    "EpochRow",
    "FeedItem",
    "FeedPage",
    "Health",
    "InternalError",
    "NetworkError",
    "NotFoundError",
    "ObjectValue",
    "PredicateList",
    "QueryFilters",
    "QueryResult",
    "QuerySpec",
    "QuotaError",
    "RateLimitError",
    "Readiness",
    "RequestTimeoutError",
    "RetryPolicy",
    "SearchHit",
    "SearchResponse",
    "SerializationError",
    "SkepticResult",
    "SourceList",
    "SourceRow",
    "SourceWriteResult",
    "StorageError",
    "SubjectList",
    "Suggestion",
    "TraceResult",
    "UnavailableError",
    "ValidationError",
    "WriteResult",
    "key_from_env",
    "load_key_file",
]
