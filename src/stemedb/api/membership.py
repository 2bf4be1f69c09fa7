"""Cluster mode: this node's membership (``cluster.membership``) started with the app,
its heartbeats turned into metrics, and ``GET /v1/admin/cluster/status``'s answer.

The status reads the node registry and the database when asked (not the last
heartbeat's copy): what it says is at most one query old. ``health`` follows the rules
of ``cluster.health``; this node's readiness and storage breakers count too.
"""

from __future__ import annotations

from typing import Any

from stemedb.api.state import ApiState
from stemedb.cluster.health import DatabaseFacts, judge
from stemedb.cluster.membership import Membership
from stemedb.errors import StemeError
from stemedb.wire import ClusterNode, ClusterStatus


def membership_of(state: ApiState) -> Membership | None:
    """The membership of a cluster node (None in single mode), to ``start``."""
    config = state.config
    if config.storage.backend != "postgres":
        return None
    metrics = state.metrics
    role = state.role

    def on_beat(nodes: list[ClusterNode], facts: DatabaseFacts) -> None:
        metrics.observe_cluster(nodes, facts.status.standbys)

    def on_error(operation: str) -> None:
        metrics.postgres_errors.labels(operation).inc()

    return Membership(
        config,
        state.version,
        beats=role is None or role.first,
        on_beat=on_beat,
        on_error=on_error,
    )


def cluster_mode_status(
    state: ApiState, membership: Membership, not_ready: list[str]
) -> ClusterStatus:
    """Blocking: the cluster status of API.md "cluster mode"."""
    try:
        nodes, facts = membership.read()
    except StemeError:
        state.metrics.postgres_errors.labels("cluster_status").inc()
        raise
    breakers = state.storage.breakers()
    health, reasons = judge(
        nodes=nodes,
        database=facts,
        not_ready=not_ready,
        breakers_open=any(b["state"] != "closed" for b in breakers),
        max_lag_seconds=state.config.cluster.max_replication_lag_seconds,
    )
    storage: dict[str, Any] = {"backend": "postgres", "breakers": breakers}
    return ClusterStatus(
        health=health,
        mode="cluster",
        node_id=membership.node_id,
        nodes=[_builtins(node) for node in nodes],
        storage=storage,
        database=facts.status,
        reasons=reasons,
    )


def _builtins(node: ClusterNode) -> dict[str, Any]:
    return {
        "node_id": node.node_id,
        "advertise_url": node.advertise_url,
        "version": node.version,
        "last_heartbeat": node.last_heartbeat,
        "healthy": node.healthy,
    }


__all__ = ["cluster_mode_status", "membership_of"]
