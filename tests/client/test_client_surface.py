"""The SDK's public surface is pinned, it loads no server code, and its answer types
stay in step with the server's structs."""

from __future__ import annotations

import subprocess
import sys

import msgspec
import pytest

import stemedb.client
from stemedb import errors as base
from stemedb.client import types

EXPORTED = {
    "DEFAULT_URL", "AgentInfo", "AgentKey", "ApiError", "AssertionDetail", "AssertionFields",
    "AsyncClient", "AuditRecord", "AuthenticationError", "AuthorizationError", "BatchItem",
    "BatchResult", "ClaimView", "Client", "ConflictError", "EpochRow", "FeedItem", "FeedPage",
    "Health", "InternalError", "NetworkError", "NotFoundError", "ObjectValue", "QueryFilters",
    "QueryResult", "QuerySpec", "QuotaError", "RateLimitError", "Readiness",
    "RequestTimeoutError", "RetryPolicy", "SerializationError", "SkepticResult", "SourceList",
    "SourceRow", "StorageError", "TraceResult", "UnavailableError", "ValidationError",
    "WriteResult", "key_from_env", "load_key_file",
}  # fmt: skip

CLIENT_METHODS = {
    "assert_", "assert_record", "assert_batch", "write", "cosign", "vote", "epoch",
    "supersede", "register_source", "retract_source", "get_assertion", "query", "query_all",
    "query_batch", "skeptic", "trace", "audit_queries", "audit_query", "feed", "stream_feed",
    "agent", "epochs", "get_epoch", "sources", "get_source", "health", "ready",
    "sign_assertion", "from_env",
}  # fmt: skip


def test_public_names_are_pinned() -> None:
    assert set(stemedb.client.__all__) == EXPORTED
    for name in EXPORTED:
        assert hasattr(stemedb.client, name), name


def test_sync_and_async_clients_have_the_same_methods() -> None:
    def public(cls: type) -> set[str]:
        return {n for n in dir(cls) if not n.startswith("_")} - {"close", "aclose"}

    assert public(stemedb.client.Client) >= CLIENT_METHODS
    assert public(stemedb.client.Client) == public(stemedb.client.AsyncClient)


def test_importing_the_sdk_loads_no_web_framework_storage_or_engine() -> None:
    code = (
        "import sys, stemedb.client\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('starlette', 'apsw', 'uvicorn') or m.startswith(('stemedb.engine', 'stemedb.api',"
        " 'stemedb.store.sqlite', 'stemedb.wal')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", out.stdout


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


def _fields(cls: type[msgspec.Struct]) -> tuple[str, ...]:
    return tuple(f.name for f in msgspec.structs.fields(cls))


def test_client_answer_types_have_the_server_structs_fields() -> None:
    from stemedb.api import wire
    from stemedb.engine import WriteResult
    from stemedb.query.audit import AuditRecord, Contribution
    from stemedb.query.provenance import AgentInfo, AssertionDetail, TraceResult, VoteSummary

    pairs: list[tuple[type[msgspec.Struct], type[msgspec.Struct]]] = [
        (types.WriteResult, WriteResult),
        (types.ErrorBody, wire.ErrorBody),
        (types.BatchItem, wire.BatchItem),
        (types.BatchResult, wire.BatchResponse),
        (types.VoteSummary, VoteSummary),
        (types.AssertionDetail, AssertionDetail),
        (types.TraceResult, TraceResult),
        (types.AgentInfo, AgentInfo),
        (types.Contribution, Contribution),
        (types.AuditRecord, AuditRecord),
        (types.AuditList, wire.AuditList),
        (types.EpochList, wire.EpochList),
        (types.SourceList, wire.SourceList),
        (types.QueryBatchResult, wire.QueryBatchResponse),
        (types.Health, wire.HealthResponse),
        (types.Readiness, wire.ReadyResponse),
        (types.QuerySpec, wire.QuerySpec),
    ]
    for ours, theirs in pairs:
        assert _fields(ours) == _fields(theirs), ours.__name__
