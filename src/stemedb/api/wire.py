"""Wire types of the HTTP API that are not records or read results.

Records (``model.records``) and read results (``query.results``, ``query.provenance``,
``store.rows``) are sent as they are; the structs here are request envelopes, batch
answers and service answers. All of them feed the generated OpenAPI document.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from stemedb.model.records import Assertion, Signature
from stemedb.query.audit import AuditRecord
from stemedb.query.results import QueryResult
from stemedb.store.rows import EpochRow, SourceRow


class ErrorBody(msgspec.Struct, kw_only=True):
    code: str
    type: str
    message: str
    details: dict[str, Any]
    retryable: bool


class ErrorEnvelope(msgspec.Struct, kw_only=True):
    """Every non-2xx answer."""

    error: ErrorBody
    request_id: str


class BatchBody(msgspec.Struct, forbid_unknown_fields=True):
    """What ``POST /v1/assert/batch`` decodes first: items are decoded one by one so a
    malformed item fails alone."""

    assertions: list[msgspec.Raw]


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /v1/assert/batch`` (documentation shape of ``BatchBody``)."""

    assertions: list[Assertion]


class BatchItem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One item's outcome: ``created``/``exists`` with id and lsn, or ``error``."""

    index: int
    status: Literal["created", "exists", "error"]
    id: str | None = None
    lsn: int | None = None
    error: ErrorBody | None = None


class BatchResponse(msgspec.Struct, kw_only=True):
    results: list[BatchItem]
    created: int
    exists: int
    failed: int


class RetractBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/sources/{hash}/retract``: a Retraction without its source hash."""

    reason: str
    timestamp: int
    signatures: tuple[Signature, ...]


class QuerySpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
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
    max_stale_seconds: float | None = None
    limit: int = 100
    cursor: str | None = None


class QueryBatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    queries: list[QuerySpec]


class QueryBatchResponse(msgspec.Struct):
    results: list[QueryResult]


class HealthResponse(msgspec.Struct, kw_only=True):
    status: Literal["ok"]
    version: str
    uptime_seconds: float


class ReadyResponse(msgspec.Struct, kw_only=True):
    status: Literal["ready", "not_ready"]
    reasons: list[str]
    applied_lsn: int


class EpochList(msgspec.Struct):
    epochs: list[EpochRow]


class SourceList(msgspec.Struct, kw_only=True):
    sources: list[SourceRow]
    next_cursor: str | None


class AuditList(msgspec.Struct):
    queries: list[AuditRecord]
