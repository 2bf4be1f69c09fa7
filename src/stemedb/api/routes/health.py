"""Liveness, readiness and the Prometheus endpoint (never rate limited)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from stemedb.api.http.errors import RETRY_AFTER_UNAVAILABLE_SECONDS
from stemedb.api.http.routing import ApiRoute, EndpointDoc, api_route, json_response
from stemedb.api.metrics_merge import merge_expositions
from stemedb.api.observability.metrics import CONTENT_TYPE
from stemedb.api.routes.context import state_of
from stemedb.api.state import ApiState
from stemedb.wire import HealthResponse, ReadyResponse


def readiness(state: ApiState) -> tuple[list[str], int]:
    """Why the node is not ready (empty when it is), and its applied LSN."""
    reasons: list[str] = []
    engine = state.opened_engine
    if engine is None or not state.accepting:
        return ["the node is starting or shutting down"], 0
    if engine.read_only:
        reasons.append(f"wal: read-only ({engine.read_only_reason}); restart the node")
    applied = engine.applied_lsn
    try:
        engine.store.changes(applied, 1)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with the reason
        reasons.append(f"store: {exc}")
    return reasons, applied


async def get_health(request: Request) -> Response:
    state = state_of(request)
    return json_response(
        HealthResponse(
            status="ok", version=state.version, uptime_seconds=round(state.uptime_seconds(), 3)
        )
    )


async def get_ready(request: Request) -> Response:
    state = state_of(request)
    if state.opened_engine is None or not state.accepting:
        reasons, applied = readiness(state)
    else:
        reasons, applied = await state.offload_unguarded(readiness, state)
    if reasons:
        return json_response(
            ReadyResponse(status="not_ready", reasons=reasons, applied_lsn=applied),
            503,
            headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_SECONDS)},
        )
    return json_response(ReadyResponse(status="ready", reasons=[], applied_lsn=applied))


async def get_metrics(request: Request) -> Response:
    state = state_of(request)
    page = await state.own_metrics()
    others = await state.ask_workers(b"metrics")
    if others:  # every HTTP worker's series, added up
        page = merge_expositions([page, *others])
    return Response(page, media_type=CONTENT_TYPE)


def routes() -> list[ApiRoute]:
    health_doc = EndpointDoc(summary="Liveness.", tag="operations", responses={200: HealthResponse})
    return [
        api_route("/health", get_health, ["GET"], health_doc, timeout_seconds=None),
        api_route("/v1/health", get_health, ["GET"], health_doc, timeout_seconds=None),
        api_route(
            "/ready",
            get_ready,
            ["GET"],
            EndpointDoc(
                summary="Readiness: 200 only when the WAL is writable and the store is open;"
                " else 503 with reasons.",
                tag="operations",
                responses={200: ReadyResponse, 503: ReadyResponse},
            ),
            timeout_seconds=None,
        ),
        api_route(
            "/metrics",
            get_metrics,
            ["GET"],
            EndpointDoc(
                summary="Prometheus metrics (text exposition format).",
                tag="operations",
                media_type=CONTENT_TYPE,
            ),
            timeout_seconds=None,
        ),
    ]
