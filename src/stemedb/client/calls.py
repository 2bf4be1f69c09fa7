"""Every API call as data: method, path, query string, body and the answer's type.

``Client`` and ``AsyncClient`` build a :class:`Call` here and only differ in how they
send it, so the two stay identical in what they ask for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, Generic, TypedDict, TypeVar
from urllib.parse import quote

import msgspec

from stemedb.client.types import (
    AgentInfo,
    AssertionDetail,
    AuditList,
    AuditRecord,
    BatchResult,
    EpochList,
    EpochRow,
    FeedPage,
    Health,
    PredicateList,
    QueryBatchResult,
    QueryResult,
    QuerySpec,
    Readiness,
    RetractionImpact,
    SearchResponse,
    SkepticResult,
    SourceList,
    SourceRow,
    SubjectList,
    TraceResult,
    WriteResult,
)
from stemedb.errors import ValidationError
from stemedb.model.records import (
    Assertion,
    CoSignature,
    Epoch,
    Retraction,
    Source,
    Supersession,
    Vote,
)

T = TypeVar("T")

WRITE_OK: Final = frozenset({200, 201})
READ_OK: Final = frozenset({200})
SignedRecord = Assertion | CoSignature | Vote | Epoch | Supersession | Source | Retraction

_ENCODER: Final = msgspec.json.Encoder()


class Call(Generic[T]):
    """One request. ``accept`` are the statuses decoded as ``answer``; any other status
    raises. Every StemeDB call is idempotent (writes are named by their content ID)."""

    __slots__ = ("accept", "answer", "body", "extra_timeout_seconds", "method", "params", "path")

    def __init__(
        self,
        method: str,
        path: str,
        answer: type[T],
        *,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        accept: frozenset[int] = READ_OK,
        extra_timeout_seconds: float = 0.0,
    ) -> None:
        self.method = method
        self.path = path
        self.answer = answer
        self.params = params or {}
        self.body = body
        self.accept = accept
        self.extra_timeout_seconds = extra_timeout_seconds


class QueryFilters(TypedDict, total=False):
    """The filters of ``query``/``query_all``/``skeptic`` (API.md ``GET /v1/query``)."""

    lens: str
    as_of: float
    valid_at: float
    since: float
    lifecycle: str | Sequence[str]
    epoch: str
    source_class: str | Sequence[str]
    agent_id: str
    include_retracted: bool
    include_superseded: bool
    max_stale_seconds: float
    limit: int
    cursor: str


def _segment(value: str) -> str:
    return quote(value, safe="")


def _words(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _query_string(values: dict[str, object]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in values.items():
        if value is None or value is False:
            continue
        if value is True:
            out[name] = "true"
        elif isinstance(value, list | tuple):
            if value:
                out[name] = ",".join(str(v) for v in value)
        else:
            out[name] = str(value)
    return out


def _json(value: object) -> bytes:
    return _ENCODER.encode(value)


# --- writes ------------------------------------------------------------------------


def write(record: SignedRecord) -> Call[WriteResult]:
    """The write route of one signed record."""
    if isinstance(record, Assertion):
        return Call("POST", "/v1/assert", WriteResult, body=_json(record), accept=WRITE_OK)
    if isinstance(record, CoSignature):
        path = f"/v1/assertions/{_segment(record.assertion_id)}/signatures"
        return Call("POST", path, WriteResult, body=_json(record.signature), accept=WRITE_OK)
    if isinstance(record, Vote):
        return Call("POST", "/v1/vote", WriteResult, body=_json(record), accept=WRITE_OK)
    if isinstance(record, Epoch):
        return Call("POST", "/v1/epoch", WriteResult, body=_json(record), accept=WRITE_OK)
    if isinstance(record, Supersession):
        return Call("POST", "/v1/supersede", WriteResult, body=_json(record), accept=WRITE_OK)
    if isinstance(record, Source):
        return Call("POST", "/v1/sources", WriteResult, body=_json(record), accept=WRITE_OK)
    if isinstance(record, Retraction):
        body = {
            "reason": record.reason,
            "timestamp": record.timestamp,
            "signatures": record.signatures,
        }
        path = f"/v1/sources/{_segment(record.source_hash)}/retract"
        return Call("POST", path, WriteResult, body=_json(body), accept=WRITE_OK)
    raise ValidationError(
        "record", "type", f"cannot send a {type(record).__name__} over the HTTP API"
    )


def retraction_impact(source_hash: str, limit: int | None) -> Call[RetractionImpact]:
    """The dry run of a retraction: what the cascade would exclude; nothing written."""
    path = f"/v1/sources/{_segment(source_hash)}/retract"
    params = _query_string({"dry_run": True, "limit": limit})
    return Call("POST", path, RetractionImpact, params=params)


def assert_batch(records: Iterable[Assertion]) -> Call[BatchResult]:
    body = _json({"assertions": list(records)})
    return Call("POST", "/v1/assert/batch", BatchResult, body=body, accept=frozenset({207}))


# --- reads -------------------------------------------------------------------------


def get_assertion(assertion_id: str) -> Call[AssertionDetail]:
    return Call("GET", f"/v1/assertions/{_segment(assertion_id)}", AssertionDetail)


def trace(assertion_id: str) -> Call[TraceResult]:
    return Call("GET", f"/v1/trace/{_segment(assertion_id)}", TraceResult)


def agent(agent_id: str) -> Call[AgentInfo]:
    return Call("GET", f"/v1/agents/{_segment(agent_id)}", AgentInfo)


def query(
    subject: str | None,
    predicate: str | None,
    subject_prefix: str | None,
    filters: QueryFilters,
) -> Call[QueryResult]:
    if (subject is None) == (subject_prefix is None):
        raise ValidationError(
            "subject", "required", "give exactly one of subject or subject_prefix"
        )
    values: dict[str, object] = {
        "subject": subject,
        "subject_prefix": subject_prefix,
        "predicate": predicate,
    }
    values.update(filters)
    return Call("GET", "/v1/query", QueryResult, params=_query_string(values))


def query_batch(specs: Iterable[QuerySpec]) -> Call[QueryBatchResult]:
    body = _json({"queries": list(specs)})
    return Call("POST", "/v1/query", QueryBatchResult, body=body)


def skeptic(subject: str, predicate: str, filters: QueryFilters) -> Call[SkepticResult]:
    unsupported = {"lens", "max_stale_seconds", "limit", "cursor"} & set(filters)
    if unsupported:
        name = sorted(unsupported)[0]
        raise ValidationError(name, "unsupported", f"skeptic does not take {name}")
    values: dict[str, object] = {"subject": subject, "predicate": predicate, **filters}
    return Call("GET", "/v1/skeptic", SkepticResult, params=_query_string(values))


def audit_queries(
    agent_id: str | None, since: float | None, until: float | None, limit: int | None
) -> Call[AuditList]:
    params = _query_string({"agent_id": agent_id, "from": since, "to": until, "limit": limit})
    return Call("GET", "/v1/audit/queries", AuditList, params=params)


def audit_query(query_id: str) -> Call[AuditRecord]:
    return Call("GET", f"/v1/audit/queries/{_segment(query_id)}", AuditRecord)


def feed(after: int, limit: int | None, wait_seconds: float | None) -> Call[FeedPage]:
    params = _query_string({"after": after, "limit": limit, "wait_seconds": wait_seconds})
    return Call(
        "GET", "/v1/feed", FeedPage, params=params, extra_timeout_seconds=wait_seconds or 0.0
    )


def epochs() -> Call[EpochList]:
    return Call("GET", "/v1/epochs", EpochList)


def get_epoch(epoch_id: str) -> Call[EpochRow]:
    return Call("GET", f"/v1/epochs/{_segment(epoch_id)}", EpochRow)


def sources(cursor: str | None, limit: int | None) -> Call[SourceList]:
    params = _query_string({"cursor": cursor, "limit": limit})
    return Call("GET", "/v1/sources", SourceList, params=params)


def get_source(source_hash: str) -> Call[SourceRow]:
    return Call("GET", f"/v1/sources/{_segment(source_hash)}", SourceRow)


def search(q: str, mode: str | None, limit: int | None, cursor: str | None) -> Call[SearchResponse]:
    params = _query_string({"q": q, "mode": mode, "limit": limit, "cursor": cursor})
    return Call("GET", "/v1/search", SearchResponse, params=params)


def subjects(prefix: str | None, limit: int | None, cursor: str | None) -> Call[SubjectList]:
    params = _query_string({"prefix": prefix, "limit": limit, "cursor": cursor})
    return Call("GET", "/v1/subjects", SubjectList, params=params)


def predicates(subject: str, limit: int | None, cursor: str | None) -> Call[PredicateList]:
    params = _query_string({"limit": limit, "cursor": cursor})
    path = f"/v1/subjects/{_segment(subject)}/predicates"
    return Call("GET", path, PredicateList, params=params)


def health() -> Call[Health]:
    return Call("GET", "/health", Health)


def ready() -> Call[Readiness]:
    # 503 is an answer here (not ready, with reasons), not an error to retry.
    return Call("GET", "/ready", Readiness, accept=frozenset({200, 503}))
