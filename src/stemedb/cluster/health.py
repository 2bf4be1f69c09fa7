"""The rules of ``health`` in cluster mode (docs/design/cluster.md "Cluster status").

``unhealthy`` — the cluster cannot take writes through this node:
  - no PostgreSQL primary answers (the query failed, or the server reached is a standby),
  - this node is not ready (``/ready`` says why).
``degraded`` — writes work, but a failure more would hurt, or a bound is exceeded:
  - a node of the registry missed three heartbeats (``healthy: false``),
  - a standby lags more than ``cluster.max_replication_lag_seconds`` (or its lag is
    unknown while it has bytes to replay),
  - synchronous replication is asked for (``synchronous_standby_names`` set, or a
    Patroni cluster in ``synchronous_mode``) and no standby is synchronous now: a
    commit then waits (PostgreSQL) or an acknowledged write is on one machine only,
  - ``cluster.patroni_url`` is set and Patroni does not answer, or lists no standby,
  - a storage circuit breaker of this node is not closed.
``healthy`` otherwise. Every reason is listed in ``reasons``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgspec

from stemedb.wire import ClusterNode, DatabaseStatus

HEALTHY: Final = "healthy"
DEGRADED: Final = "degraded"
UNHEALTHY: Final = "unhealthy"


class DatabaseFacts(msgspec.Struct, kw_only=True):
    """What ``cluster.database`` found: the status and what the rules need besides."""

    status: DatabaseStatus
    reachable: bool  # a primary answered
    synchronous_wanted: bool  # synchronous_standby_names / Patroni synchronous_mode
    patroni_asked: bool = False
    patroni_answered: bool = False
    errors: list[str] = msgspec.field(default_factory=list)


def judge(
    *,
    nodes: Sequence[ClusterNode],
    database: DatabaseFacts,
    not_ready: Sequence[str],
    breakers_open: bool,
    max_lag_seconds: float,
) -> tuple[str, list[str]]:
    """The cluster's ``health`` and the reasons for it (empty when healthy)."""
    fatal: list[str] = [f"this node is not ready: {reason}" for reason in not_ready]
    if not database.reachable:
        fatal.append("no PostgreSQL primary answers")
    fatal.extend(database.errors if not database.reachable else [])
    if fatal:
        return UNHEALTHY, fatal
    reasons: list[str] = list(database.errors)
    reasons.extend(
        f"node {n.node_id} missed its heartbeats (last {n.last_heartbeat:.0f})"
        for n in nodes
        if not n.healthy
    )
    status = database.status
    for standby in status.standbys:
        if standby.lag_seconds is None:
            if standby.lag_bytes:
                reasons.append(f"standby {standby.name}: lag unknown, {standby.lag_bytes} bytes")
        elif standby.lag_seconds > max_lag_seconds:
            reasons.append(
                f"standby {standby.name} lags {standby.lag_seconds:.1f} s"
                f" (more than {max_lag_seconds:g} s)"
            )
    if database.synchronous_wanted and not status.synchronous:
        reasons.append("synchronous replication is configured but no standby is synchronous")
    if database.patroni_asked and database.patroni_answered and not status.standbys:
        reasons.append("Patroni lists no standby: the primary's loss would stop the cluster")
    if breakers_open:
        reasons.append("a storage circuit breaker of this node is not closed")
    return (DEGRADED if reasons else HEALTHY), reasons


__all__ = ["DEGRADED", "HEALTHY", "UNHEALTHY", "DatabaseFacts", "judge"]
