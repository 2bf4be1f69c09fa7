"""Record reads: one assertion, its trace, per-agent information, the query audit."""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from stemedb.api import node_views
from stemedb.api.http.params import MIN_LSN_PARAM, QueryString
from stemedb.api.http.routing import ApiRoute, EndpointDoc, Param, api_route, json_response
from stemedb.api.routes.admin_custodial import custodial_views
from stemedb.api.routes.context import state_of
from stemedb.config import ApiConfig
from stemedb.errors import ValidationError
from stemedb.model.signing import is_hex64
from stemedb.wire import (
    AgentDetail,
    AssertionDetail,
    AuditList,
    AuditRecord,
    ErrorEnvelope,
    TraceResult,
)

DEFAULT_AUDIT_LIMIT: Final = 100
MAX_AUDIT_LIMIT: Final = 1000
NOT_FOUND: Final = {400: ErrorEnvelope, 404: ErrorEnvelope}


async def get_assertion(request: Request) -> Response:
    qs = QueryString(request)
    min_lsn = qs.integer("min_lsn", 0)
    qs.finish()
    state = state_of(request)
    await state.read_after(min_lsn)
    provenance = state.service.provenance
    detail = await state.offload(provenance.assertion, str(request.path_params["id"]))
    return json_response(detail)


async def get_trace(request: Request) -> Response:
    qs = QueryString(request)
    min_lsn = qs.integer("min_lsn", 0)
    qs.finish()
    state = state_of(request)
    await state.read_after(min_lsn)
    provenance = state.service.provenance
    trace = await state.offload(provenance.trace, str(request.path_params["id"]))
    signers = [row.agent_id for row in trace.assertion.signatures]
    custodial = await state.offload_unguarded(state.custodial.of_agents, signers)
    if custodial:  # which signers are custodial keys, and of which API key
        trace.custodial_signers = custodial_views(state, custodial)
    return json_response(trace)


async def get_agent(request: Request) -> Response:
    QueryString(request).finish()
    state = state_of(request)
    engine = state.engine
    provenance = state.service.provenance
    info = await state.offload(
        provenance.agent, str(request.path_params["agent_id"]), engine.clock.time()
    )
    detail = await state.access.agent_detail(info)
    detail.breaker = await node_views.breaker(state, info.agent_id)  # every worker's
    return json_response(detail)


async def get_audit_queries(request: Request) -> Response:
    qs = QueryString(request)
    agent_id = qs.text("agent_id")
    since = qs.number("from")
    until = qs.number("to")
    limit = qs.integer("limit", DEFAULT_AUDIT_LIMIT)
    qs.finish()
    if agent_id is not None and not is_hex64(agent_id):
        raise ValidationError("agent_id", "hex_format", "agent_id must be 64 lowercase hex")
    if not 1 <= limit <= MAX_AUDIT_LIMIT:
        raise ValidationError(
            "limit", f"must be between 1 and {MAX_AUDIT_LIMIT}", code="limit_out_of_range"
        )
    state = state_of(request)
    audit = state.service.audit
    records = await state.offload(
        audit.list, agent_id=agent_id, since=since, until=until, limit=limit
    )
    return json_response(AuditList(records))


async def get_audit_query(request: Request) -> Response:
    QueryString(request).finish()
    state = state_of(request)
    service = state.service
    record = await state.offload(service.audit_record, str(request.path_params["query_id"]))
    return json_response(record)


def routes(api: ApiConfig) -> list[ApiRoute]:
    timeout = api.request_timeout_seconds
    return [
        api_route(
            "/v1/assertions/{id}",
            get_assertion,
            ["GET"],
            EndpointDoc(
                summary="One assertion with its signatures, votes summary and source warnings.",
                tag="reads",
                params=(MIN_LSN_PARAM,),
                responses={200: AssertionDetail, **NOT_FOUND},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/trace/{id}",
            get_trace,
            ["GET"],
            EndpointDoc(
                summary="Provenance of one assertion: signatures, source, parent chain,"
                " supersessions, votes, epoch and the audited queries that used it.",
                tag="reads",
                params=(MIN_LSN_PARAM,),
                responses={200: TraceResult, **NOT_FOUND},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/agents/{agent_id}",
            get_agent,
            ["GET"],
            EndpointDoc(
                summary="An agent's trust score and counts, its quota, rate limit and circuit"
                " breaker.",
                tag="reads",
                responses={200: AgentDetail, 400: ErrorEnvelope},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/audit/queries",
            get_audit_queries,
            ["GET"],
            EndpointDoc(
                summary="Audited queries, newest first.",
                tag="audit",
                params=(
                    Param("agent_id", str, "only queries asked by this agent (X-Agent-Id)"),
                    Param("from", float, "only queries at or after (unix seconds)"),
                    Param("to", float, "only queries at or before (unix seconds)"),
                    Param("limit", int, f"1..{MAX_AUDIT_LIMIT} (default {DEFAULT_AUDIT_LIMIT})"),
                ),
                responses={200: AuditList, 400: ErrorEnvelope},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/audit/queries/{query_id}",
            get_audit_query,
            ["GET"],
            EndpointDoc(
                summary="One audited query: who asked, what, which claims contributed.",
                tag="audit",
                responses={200: AuditRecord, **NOT_FOUND},
            ),
            timeout_seconds=timeout,
        ),
    ]
