"""The admin endpoints: API keys, rate-limit overrides, circuit breakers, trust outcomes,
the slow-query log, storage statistics and the cluster status."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from stemedb.model.apikey import ApiKey
from stemedb.wire.agents import BreakerView


class ApiKeyList(msgspec.Struct, kw_only=True):
    keys: list[ApiKey]


class CreateKeyBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    role: str
    expires_at: float | None = None


class DeletedKey(msgspec.Struct, kw_only=True):
    id: str
    deleted: bool


class RateOverrideBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    agent_id: str | None = None
    api_key_id: str | None = None
    max_requests_per_min: int


class RateOverrideView(msgspec.Struct, kw_only=True):
    scope: Literal["agent", "key"]
    agent_id: str | None
    api_key_id: str | None
    max_requests_per_min: int
    created_at: float
    # what holds now: the override is enforced whether or not rate_limit.enabled is on
    enforced: bool = True
    effective_max_requests_per_min: int | None = None
    window_seconds: int | None = None
    message: str | None = None


class RateOverrideList(msgspec.Struct, kw_only=True):
    default_per_minute: int
    enabled: bool
    overrides: list[RateOverrideView]


class DeletedOverride(msgspec.Struct, kw_only=True):
    scope: Literal["agent", "key"]
    target: str
    deleted: bool


class TripBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    agent_id: str
    reason: str | None = None


class ResetBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    agent_id: str


class BreakerList(msgspec.Struct, kw_only=True):
    breakers: list[BreakerView]


class OutcomeBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    accurate: bool


class SlowQuery(msgspec.Struct, frozen=True):
    query_id: str
    subject: str | None
    predicate: str | None
    lens: str
    duration_ms: float
    at: float
    agent_id: str | None


class SlowQueryList(msgspec.Struct, frozen=True):
    queries: list[SlowQuery]


class StorageStats(msgspec.Struct, kw_only=True):
    backend: str
    assertion_count: int | None
    record_counts: dict[str, int]
    disk_bytes: int
    cache_bytes: int
    cache_max_bytes: int
    cache_hits: int
    cache_misses: int
    cache_hit_ratio: float | None
    fallback_entries: int
    fallback_served: int
    applied_lsn: int
    wal_last_lsn: int
    wal_segments: int
    wal_disk_usage_bytes: int
    views_pending: int
    breakers: list[dict[str, Any]]
    errors: list[str]


class ClusterNode(msgspec.Struct, kw_only=True):
    """A node of the cluster's registry (cluster mode); ``last_heartbeat`` in Unix
    seconds by the database's clock; ``healthy``: its last heartbeat is at most three
    of its ``heartbeat_seconds`` old."""

    node_id: str
    advertise_url: str
    version: str
    last_heartbeat: float
    healthy: bool


class Standby(msgspec.Struct, kw_only=True):
    """A PostgreSQL standby: how far its replay is behind the primary (null: unknown)."""

    name: str
    lag_bytes: int | None
    lag_seconds: float | None


class DatabaseStatus(msgspec.Struct, kw_only=True):
    """The cluster's PostgreSQL: the primary (``host:port``, or Patroni's member name;
    null when none answers), its standbys, whether one of them is synchronous."""

    primary: str | None
    standbys: list[Standby]
    synchronous: bool


class ClusterStatus(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``GET /v1/admin/cluster/status``. Single mode: ``nodes`` is this node, with
    ``storage`` and ``wal``. Cluster mode: ``nodes`` are ``ClusterNode``s, ``database``
    the PostgreSQL side, ``reasons`` why ``health`` is not ``healthy``, no ``wal``."""

    health: str
    mode: str
    node_id: str
    nodes: list[dict[str, Any]]
    storage: dict[str, Any]
    wal: dict[str, Any] | None = None
    database: DatabaseStatus | None = None
    reasons: list[str] | None = None


__all__ = [
    "ApiKeyList",
    "BreakerList",
    "ClusterNode",
    "ClusterStatus",
    "CreateKeyBody",
    "DatabaseStatus",
    "DeletedKey",
    "DeletedOverride",
    "OutcomeBody",
    "RateOverrideBody",
    "RateOverrideList",
    "RateOverrideView",
    "ResetBody",
    "SlowQuery",
    "SlowQueryList",
    "Standby",
    "StorageStats",
    "TripBody",
]
