"""Liveness, readiness and the Prometheus endpoint (never rate limited).

``/ready`` is 503 when the node cannot serve (starting, stopping, a read-only WAL, the
store not answering). A node that serves reads but refuses writes for now (a full disk,
the storage write breaker open, the writer process restarting) stays ready for
``/ready`` (``writes: "unavailable"`` and the reason), and is 503 for
``/ready?require=writes``: the check of a load balancer that sends writes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from stemedb.api.guard.protected import unauthenticated_network
from stemedb.api.http.errors import RETRY_AFTER_UNAVAILABLE_SECONDS
from stemedb.api.http.routing import ApiRoute, EndpointDoc, api_route, json_response
from stemedb.api.metrics_merge import merge_expositions
from stemedb.api.observability.metrics import CONTENT_TYPE
from stemedb.api.resilience.breaker import OPEN
from stemedb.api.routes.context import state_of
from stemedb.api.state import ApiState
from stemedb.engine import Engine
from stemedb.wire import HealthResponse, ReadyResponse

DISK_FULL_BYTES: Final = 1024 * 1024  # less free than this on the WAL's or store's disk
WRITES_UNAVAILABLE: Final = "writes: unavailable"


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


def write_unavailability(state: ApiState, engine: Engine) -> str | None:
    """Why writes are refused for now while reads are served, or None."""
    restarting = getattr(engine.wal, "restarting_reason", None)  # runtime.remote_wal
    if restarting is not None:
        return f"{WRITES_UNAVAILABLE} ({restarting})"
    if not state.topology.cluster:  # cluster mode: PostgreSQL's disk, not this one's
        for path in _write_paths(state):
            free = _free_bytes(path)
            if free is not None and free < DISK_FULL_BYTES:
                return f"{WRITES_UNAVAILABLE} (disk full: {free} bytes free in {path})"
    breaker = state.storage.writes
    if breaker.state == OPEN:
        last = breaker.last_error
        return f"{WRITES_UNAVAILABLE} (storage circuit breaker (write) open; last: {last})"
    return None


def _write_paths(state: ApiState) -> list[Path]:
    """The WAL's and the store's directories, one per file system."""
    paths: dict[int, Path] = {}
    for path in (state.config.wal_dir, state.config.data_dir):
        try:
            paths.setdefault(os.stat(path).st_dev, path)
        except OSError:
            continue
    return list(paths.values())


def _free_bytes(path: Path) -> int | None:
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def _ready_check(state: ApiState) -> tuple[list[str], int, str | None]:
    reasons, applied = readiness(state)
    engine = state.opened_engine
    if reasons or engine is None:
        return reasons, applied, None
    return reasons, applied, write_unavailability(state, engine)


async def get_health(request: Request) -> Response:
    state = state_of(request)
    return json_response(
        HealthResponse(
            status="ok",
            version=state.version,
            uptime_seconds=round(state.uptime_seconds(), 3),
            unauthenticated_network=unauthenticated_network(state.config),
        )
    )


async def get_ready(request: Request) -> Response:
    state = state_of(request)
    if state.opened_engine is None or not state.accepting:
        reasons, applied, writes = *readiness(state), None
    else:
        reasons, applied, writes = await state.offload_unguarded(_ready_check, state)
    require_writes = request.query_params.get("require") == "writes"
    if reasons or (writes is not None and require_writes):
        return json_response(
            ReadyResponse(
                status="not_ready",
                reasons=reasons if writes is None else [*reasons, writes],
                applied_lsn=applied,
                writes="unavailable",
            ),
            503,
            headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_SECONDS)},
        )
    if writes is not None:
        return json_response(
            ReadyResponse(
                status="ready", reasons=[writes], applied_lsn=applied, writes="unavailable"
            )
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
                summary="Readiness: 200 when the node serves (the WAL is not read-only, the"
                " store is open), else 503 with reasons; `writes` says whether it takes"
                " writes now, and `?require=writes` answers 503 when it does not.",
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
