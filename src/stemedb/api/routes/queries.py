"""Query routes: ``GET /v1/query``, ``POST /v1/query`` (many in one), ``GET /v1/skeptic``."""

from __future__ import annotations

import time
from typing import Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from stemedb.api.guard.gate import note_items
from stemedb.api.http.bodies import read_json
from stemedb.api.http.params import (
    MIN_LSN_PARAM,
    QUERY_PARAM_DOCS,
    QueryString,
    query_params,
    spec_params,
)
from stemedb.api.http.routing import ApiRoute, EndpointDoc, Param, api_route, json_response
from stemedb.api.routes.context import state_of
from stemedb.api.state import ApiState
from stemedb.config import ApiConfig
from stemedb.errors import StemeError, StorageError, ValidationError
from stemedb.query.params import QueryParams
from stemedb.query.service import QueryService
from stemedb.wire import (
    ErrorEnvelope,
    QueryBatchRequest,
    QueryBatchResponse,
    QueryResult,
    SkepticResult,
)

QUERY_BATCH_DECODER: Final = msgspec.json.Decoder(QueryBatchRequest)
SKEPTIC_FILTERS: Final = (
    "as_of",
    "valid_at",
    "since",
    "lifecycle",
    "epoch",
    "source_class",
    "agent_id",
    "include_retracted",
    "include_superseded",
    "include_quarantined",
)


def _in_item(error: StemeError, index: int) -> StemeError:
    """A query's error re-labelled with its position in ``POST /v1/query``."""
    if isinstance(error, ValidationError):
        prefixed = ValidationError(
            f"queries[{index}].{error.field}",
            error.rule,
            f"queries[{index}]: {error.message}",
            code=error.code,
            status=error.status,
        )
        return prefixed
    return error


def stale_answer(
    state: ApiState, key: tuple[str, QueryParams], params: QueryParams, error: StorageError
) -> QueryResult:
    """The ``[fallback]`` answer to a read whose storage failed, or ``error`` again."""
    fallback = state.fallback
    if not fallback.enabled:
        raise error
    answer = fallback.recall(key, params.max_stale_seconds)
    if answer is not None:
        return answer
    service = state.service
    if params.is_plain and (params.lens or service.default_lens) == service.default_lens:
        assert params.subject is not None and params.predicate is not None
        try:
            view = service.views.lookup(
                params.subject,
                params.predicate,
                params.limit,
                fallback.max_age(params.max_stale_seconds),
            )
        except StemeError:
            view = None
        answer = fallback.counted_view(view)
        if answer is not None:
            return answer
    else:
        fallback.counted_view(None)
    raise error


async def get_query(request: Request) -> Response:
    state = state_of(request)
    asker = state.asker(request)
    qs = QueryString(request)
    min_lsn = qs.integer("min_lsn", 0)
    params = query_params(qs)
    await state.read_after(min_lsn)
    service = state.service
    started = time.perf_counter()
    try:
        if params.is_single:
            # One (subject, predicate) is mostly a view or cache hit: answering it on
            # the loop beats a thread hop (measured ~1.7x); scans go to the read pool.
            result = state.storage.read(
                "query", service.query, params, asker=asker, endpoint="query"
            )
        else:
            result = await state.offload(service.query, params, asker=asker, endpoint="query")
    except StorageError as exc:
        result = stale_answer(state, ("query", params), params, exc)
        return json_response(result)
    state.fallback.remember(("query", params), result)
    seconds = time.perf_counter() - started
    state.metrics.observe_query("query", result.lens, seconds)
    state.slow_queries.observe(
        result.query_id,
        result.subject or result.subject_prefix,
        result.predicate,
        result.lens,
        seconds,
        asker,
    )
    return json_response(result)


def query_batch(
    state: ApiState, service: QueryService, asker: str | None, items: list[QueryParams]
) -> list[QueryResult]:
    """The queries of one ``POST /v1/query``, on the read pool (its storage-metrics
    operation is this function's name)."""
    out = []
    for index, item in enumerate(items):
        try:
            out.append(service.query(item, asker=asker, endpoint="query_batch"))
        except StorageError as exc:
            out.append(stale_answer(state, ("query", item), item, exc))
        except StemeError as exc:
            raise _in_item(exc, index) from None
        else:
            state.fallback.remember(("query", item), out[-1])
    return out


async def post_query(request: Request) -> Response:
    state = state_of(request)
    asker = state.asker(request)
    max_batch = state.config.api.max_batch
    body = await read_json(request, QUERY_BATCH_DECODER, state.config.api.max_body_bytes)
    if not body.queries:
        raise ValidationError("queries", "empty", "no queries given", code="empty_batch")
    if len(body.queries) > max_batch:
        raise ValidationError(
            "queries",
            "too_many",
            f"{len(body.queries)} queries; api.max_batch is {max_batch}",
            code="batch_too_large",
        )
    note_items(request, len(body.queries))
    params = [spec_params(spec) for spec in body.queries]
    qs = QueryString(request)
    min_lsn = qs.integer("min_lsn", 0)
    qs.finish()
    await state.read_after(min_lsn)
    service = state.service
    started = time.perf_counter()
    results = await state.offload(query_batch, state, service, asker, params)
    elapsed = (time.perf_counter() - started) / max(1, len(results))
    for result in results:
        state.metrics.observe_query("query_batch", result.lens, elapsed)
        state.slow_queries.observe(
            result.query_id,
            result.subject or result.subject_prefix,
            result.predicate,
            result.lens,
            elapsed,
            asker,
        )
    return json_response(QueryBatchResponse(results))


async def get_skeptic(request: Request) -> Response:
    state = state_of(request)
    asker = state.asker(request)
    qs = QueryString(request)
    min_lsn = qs.integer("min_lsn", 0)
    full = query_params_for_skeptic(qs)
    if full.predicate is None:
        raise ValidationError("predicate", "required", "predicate is required")
    if full.subject is None:
        raise ValidationError("subject", "required", "subject is required")
    filters = {name: getattr(full, name) for name in SKEPTIC_FILTERS}
    await state.read_after(min_lsn)
    service = state.service
    started = time.perf_counter()
    result = await state.offload(
        service.skeptic, full.subject, full.predicate, asker=asker, **filters
    )
    seconds = time.perf_counter() - started
    state.metrics.observe_query("skeptic", "skeptic", seconds)
    state.slow_queries.observe(
        result.query_id, full.subject, full.predicate, "skeptic", seconds, asker
    )
    return json_response(result)


def routes(api: ApiConfig) -> list[ApiRoute]:
    timeout = api.request_timeout_seconds
    errors = {400: ErrorEnvelope, 503: ErrorEnvelope}
    query_doc = (
        *(Param(name, kind, text) for name, kind, text in QUERY_PARAM_DOCS),
        MIN_LSN_PARAM,
    )
    skeptic_doc = tuple(
        p for p in query_doc if p.name in (*SKEPTIC_FILTERS, "subject", "predicate", "min_lsn")
    )
    return [
        api_route(
            "/v1/query",
            get_query,
            ["GET"],
            EndpointDoc(
                summary="Resolve (subject, predicate) - or a subject prefix - through a lens.",
                tag="reads",
                params=query_doc,
                responses={200: QueryResult, **errors},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/query",
            post_query,
            ["POST"],
            EndpointDoc(
                summary="Many queries in one request (each with the GET /v1/query parameters).",
                tag="reads",
                params=(MIN_LSN_PARAM,),
                body=QueryBatchRequest,
                responses={200: QueryBatchResponse, **errors},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/skeptic",
            get_skeptic,
            ["GET"],
            EndpointDoc(
                summary="Every distinct value with its support share; status and conflict_score.",
                tag="reads",
                params=skeptic_doc,
                responses={200: SkepticResult, **errors},
            ),
            timeout_seconds=timeout,
        ),
    ]


def query_params_for_skeptic(qs: QueryString) -> QueryParams:
    params = QueryParams(
        subject=qs.text("subject"),
        predicate=qs.text("predicate"),
        as_of=qs.number("as_of"),
        valid_at=qs.number("valid_at"),
        since=qs.number("since"),
        lifecycle=qs.words("lifecycle"),
        epoch=qs.text("epoch"),
        source_class=qs.words("source_class"),
        agent_id=qs.text("agent_id"),
        include_retracted=qs.flag("include_retracted"),
        include_superseded=qs.flag("include_superseded"),
        include_quarantined=qs.flag("include_quarantined"),
    )
    qs.finish()
    return params
