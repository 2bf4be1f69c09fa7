"""The SDK's public surface is pinned and its answer types are the server's structs
(what it may import: ``test_client_imports.py``)."""

from __future__ import annotations

import msgspec
import pytest

import stemedb.client
from stemedb import errors as base
from stemedb.client import types

EXPORTED = {
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
    "QueryFilters",
    "QueryResult",
    "QuerySpec",
    "QuotaError",
    "PredicateList",
    "SearchHit",
    "SearchResponse",
    "SubjectList",
    "Suggestion",
    "RateLimitError",
    "Readiness",
    "RequestTimeoutError",
    "RetryPolicy",
    "SerializationError",
    "SkepticResult",
    "SourceList",
    "SourceRow",
    "SourceWriteResult",
    "StorageError",
    "TraceResult",
    "UnavailableError",
    "ValidationError",
    "WriteResult",
    "key_from_env",
    "load_key_file",
}

CLIENT_METHODS = {
    "assert_",
    "assert_record",
    "assert_batch",
    "write",
    "cosign",
    "vote",
    "epoch",
    "supersede",
    "register_source",
    "retract_source",
    "get_assertion",
    "query",
    "query_all",
    "query_batch",
    "skeptic",
    "trace",
    "audit_queries",
    "audit_query",
    "feed",
    "stream_feed",
    "agent",
    "epochs",
    "get_epoch",
    "sources",
    "get_source",
    "search",
    "subjects",
    "predicates",
    "health",
    "ready",
    "sign_assertion",
    "from_env",
}


def test_public_names_are_pinned() -> None:
    assert set(stemedb.client.__all__) == EXPORTED
    for name in EXPORTED:
        assert hasattr(stemedb.client, name), name


def test_sync_and_async_clients_have_the_same_methods() -> None:
    def public(cls: type) -> set[str]:
        return {n for n in dir(cls) if not n.startswith("_")} - {"close", "aclose"}

    assert public(stemedb.client.Client) >= CLIENT_METHODS
    assert public(stemedb.client.Client) == public(stemedb.client.AsyncClient)


@pytest.mark.parametrize(
    ("envelope_type", "stemedb_class"),
    [
        ("ValidationError", base.ValidationError),
        ("SerializationError", base.SerializationError),
        ("AuthenticationError", base.AuthenticationError),
        ("AuthorizationError", base.AuthorizationError),
        ("NotFoundError", base.NotFoundError),
        ("ConflictError", base.ConflictError),
        ("RateLimitError", base.RateLimitError),
        ("QuotaError", base.QuotaError),
        ("TimeoutError", base.RequestTimeoutError),
        ("StorageError", base.StorageError),
        ("UnavailableError", base.UnavailableError),
        ("InternalError", base.InternalError),
        ("NetworkError", base.NetworkError),
    ],
)
def test_every_envelope_type_maps_to_its_stemedb_error_class(
    envelope_type: str, stemedb_class: type[base.StemeError]
) -> None:
    from stemedb.client.errors import ERROR_CLASSES

    assert envelope_type in base.ERROR_TYPES
    cls = ERROR_CLASSES[envelope_type]
    assert issubclass(cls, stemedb_class)
    assert cls.type_name == envelope_type


def test_client_answer_types_are_the_server_structs() -> None:
    """The SDK decodes into the structs the server encodes (``stemedb.wire``), so
    they cannot drift apart; a few keep their older SDK names."""
    from stemedb import wire
    from stemedb.engine import WriteResult

    pairs: list[tuple[type[msgspec.Struct], type[msgspec.Struct]]] = [
        (types.WriteResult, WriteResult),
        (types.ErrorBody, wire.ErrorBody),
        (types.BatchItem, wire.BatchItem),
        (types.BatchResult, wire.BatchResponse),
        (types.VoteSummary, wire.VoteSummary),
        (types.AssertionDetail, wire.AssertionDetail),
        (types.TraceResult, wire.TraceResult),
        (types.Contribution, wire.Contribution),
        (types.EpochList, wire.EpochList),
        (types.SourceList, wire.SourceList),
        (types.QueryBatchResult, wire.QueryBatchResponse),
        (types.Health, wire.HealthResponse),
        (types.Readiness, wire.ReadyResponse),
        (types.QuerySpec, wire.QuerySpec),
        (types.SourceRow, wire.SourceRow),
        (types.FeedItem, wire.FeedItem),
        (types.FeedPage, wire.FeedPage),
        (types.SearchResponse, wire.SearchResponse),
        (types.SubjectList, wire.SubjectList),
        (types.PredicateList, wire.PredicateList),
    ]
    for ours, theirs in pairs:
        assert ours is theirs, ours.__name__
    # Where the server's struct keeps a dict, the SDK's has the same fields, in the same
    # order, that one typed (test_client_types.py checks the types).
    for ours, theirs in (
        (types.AgentInfo, wire.AgentInfo),
        (types.AuditRecord, wire.AuditRecord),
        (types.AuditList, wire.AuditList),
    ):
        assert ours.__struct_fields__ == theirs.__struct_fields__, ours.__name__
