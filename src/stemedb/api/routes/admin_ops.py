"""Admin operations endpoints (API.md "Admin"): slow queries, storage stats, cluster status.

- ``GET /v1/admin/slow-queries``: ``{"queries": [...]}`` newest first
  (``api.resilience.slow_queries``).
- ``GET /v1/admin/storage/stats``: assertion count, disk bytes, cache bytes and hit
  ratio, applied LSN, WAL segments, the storage circuit breakers.
- ``GET /v1/admin/cluster/status``: ``{"health", "mode": "single", "node_id", "nodes",
  "storage", "wal"}``; ``unhealthy`` when the node is not ready (the ``/ready``
  reasons: read-only WAL, store not answering), ``degraded`` when it is ready but a
  storage circuit breaker is not closed, else ``healthy``. In cluster mode
  (``api.membership``): ``{"health", "mode": "cluster", "node_id", "nodes": [{"node_id",
  "advertise_url", "version", "last_heartbeat", "healthy"}], "database": {"primary",
  "standbys", "synchronous"}, "storage", "reasons"}`` by the rules of ``cluster.health``.

These routes need the admin role when ``[auth] enabled`` (the guard, ``api.guard``, asks
it of every ``/v1/admin/*`` route). They read the store without the storage guard so
they still answer while storage fails.
"""

from __future__ import annotations

import shutil
import socket
import time
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from stemedb.api import node_views
from stemedb.api.http.params import QueryString
from stemedb.api.http.routing import ApiRoute, EndpointDoc, api_route, json_response
from stemedb.api.membership import cluster_mode_status
from stemedb.api.routes.context import state_of
from stemedb.api.routes.health import readiness
from stemedb.api.state import ApiState
from stemedb.config import ApiConfig
from stemedb.engine import Engine
from stemedb.errors import StemeError
from stemedb.wire import (
    ClusterStatus,
    ErrorEnvelope,
    SlowQueryList,
    StorageStats,
)

HEALTHY: Final = "healthy"
DEGRADED: Final = "degraded"
UNHEALTHY: Final = "unhealthy"


def node_id(state: ApiState) -> str:
    return state.config.cluster.node_id or socket.gethostname()


def _ratio(hits: int, misses: int) -> float | None:
    total = hits + misses
    return round(hits / total, 6) if total else None


def storage_stats(state: ApiState, engine: Engine) -> StorageStats:
    store = engine.store
    errors: list[str] = []
    counts: dict[str, int] = {}
    try:
        counts = store.counts()
    except StemeError as exc:
        errors.append(f"{exc.code}: {exc.message}")
    cache = store.cache
    views = state.service.views.pending()
    return StorageStats(
        backend=store.backend,
        assertion_count=counts.get("assertions"),
        record_counts=counts,
        disk_bytes=store.disk_bytes(),
        cache_bytes=cache.size_bytes,
        cache_max_bytes=cache.max_bytes,
        cache_hits=cache.hits,
        cache_misses=cache.misses,
        cache_hit_ratio=_ratio(cache.hits, cache.misses),
        fallback_entries=len(state.fallback),
        fallback_served=state.fallback.served,
        applied_lsn=engine.applied_lsn,
        wal_last_lsn=engine.wal.last_lsn,
        wal_segments=len(engine.wal.segments()),
        wal_disk_usage_bytes=engine.wal.disk_usage_bytes(),
        views_pending=views,
        breakers=state.storage.breakers(),
        errors=errors,
    )


def _disk_free_bytes(path: str) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def cluster_status(state: ApiState) -> ClusterStatus:
    reasons, applied = readiness(state)
    if state.membership is not None:  # cluster mode (api.membership)
        return cluster_mode_status(state, state.membership, reasons)
    engine = state.opened_engine
    breakers = state.storage.breakers()
    if reasons:
        health = UNHEALTHY
    elif any(b["state"] != "closed" for b in breakers):
        health = DEGRADED
    else:
        health = HEALTHY
    me = node_id(state)
    storage: dict[str, Any] = {
        "backend": "sqlite",
        "open": engine is not None,
        "breakers": breakers,
    }
    wal: dict[str, Any] = {"fsync": state.config.wal.fsync}
    fsync_errors = state.metrics.registry.get_sample_value("stemedb_wal_fsync_errors_total")
    wal["fsync_errors"] = int(fsync_errors or 0)
    if engine is not None:
        storage.update(
            path=str(engine.store.path),
            disk_bytes=engine.store.disk_bytes(),
            answering=not any(r.startswith("store:") for r in reasons),
            disk_free_bytes=_disk_free_bytes(str(engine.store.path.parent)),
        )
        wal.update(
            dir=str(engine.wal.directory),
            writable=not engine.read_only,
            read_only_reason=engine.read_only_reason,
            last_lsn=engine.wal.last_lsn,
            applied_lsn=applied,
            segments=len(engine.wal.segments()),
            disk_usage_bytes=engine.wal.disk_usage_bytes(),
            disk_free_bytes=_disk_free_bytes(str(engine.wal.directory)),
        )
    node = {
        "node_id": me,
        "role": "single",
        "address": state.config.api.bind,
        "health": health,
        "ready": not reasons,
        "reasons": reasons,
        "version": state.version,
        "uptime_seconds": round(state.uptime_seconds(), 3),
        "applied_lsn": applied,
        "checked_at": time.time(),
    }
    return ClusterStatus(
        health=health, mode="single", node_id=me, nodes=[node], storage=storage, wal=wal
    )


async def get_slow_queries(request: Request) -> Response:
    QueryString(request).finish()
    state = state_of(request)
    return json_response(SlowQueryList(await node_views.slow_queries(state)))


async def get_storage_stats(request: Request) -> Response:
    QueryString(request).finish()
    state = state_of(request)
    engine = state.engine
    stats = await state.offload_unguarded(storage_stats, state, engine)
    if state.role is not None:  # the caches of every HTTP worker
        caches = await node_views.node_caches(state, node_views.cache_figures(state))
        stats = msgspec.structs.replace(
            stats,
            **msgspec.structs.asdict(caches),
            cache_hit_ratio=_ratio(caches.cache_hits, caches.cache_misses),
        )
    return json_response(stats)


async def get_cluster_status(request: Request) -> Response:
    QueryString(request).finish()
    state = state_of(request)
    return json_response(await state.offload_unguarded(cluster_status, state))


def routes(api: ApiConfig) -> list[ApiRoute]:
    timeout = api.request_timeout_seconds
    errors = {401: ErrorEnvelope, 403: ErrorEnvelope}
    return [
        api_route(
            "/v1/admin/slow-queries",
            get_slow_queries,
            ["GET"],
            EndpointDoc(
                summary="Queries slower than api.slow_query_ms, newest first (admin).",
                tag="admin",
                responses={200: SlowQueryList, **errors},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/admin/storage/stats",
            get_storage_stats,
            ["GET"],
            EndpointDoc(
                summary="Assertion count, disk bytes, cache bytes and hit ratio, applied LSN,"
                " WAL segments (admin).",
                tag="admin",
                responses={200: StorageStats, **errors, 503: ErrorEnvelope},
            ),
            timeout_seconds=timeout,
        ),
        api_route(
            "/v1/admin/cluster/status",
            get_cluster_status,
            ["GET"],
            EndpointDoc(
                summary="Health of this node, its WAL and its store (single-node mode), or of"
                " the cluster's nodes and database (cluster mode) (admin).",
                tag="admin",
                responses={200: ClusterStatus, **errors},
            ),
            timeout_seconds=timeout,
        ),
    ]
