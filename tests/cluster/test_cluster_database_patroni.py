"""The database side of the cluster status against a real two-node Patroni cluster
(etcd + Patroni in synchronous mode, ``support/patroni.py``): Patroni's leader and sync
standby, and the same facts from ``pg_stat_replication`` without Patroni."""

from __future__ import annotations

from support.patroni import PatroniCluster

from stemedb.cluster.database import database_facts
from stemedb.cluster.health import HEALTHY, judge
from stemedb.cluster.registry import NodeRegistry


def _health(facts: object) -> tuple[str, list[str]]:
    return judge(
        nodes=[],
        database=facts,  # type: ignore[arg-type]
        not_ready=[],
        breakers_open=False,
        max_lag_seconds=30,
    )


def test_with_patroni_the_status_names_its_leader_and_sync_standby(
    patroni: PatroniCluster,
) -> None:
    leader, standby = patroni.leader(), patroni.sync_standby()
    assert leader is not None and standby is not None
    registry = NodeRegistry(patroni.dsn())
    try:
        urls = ",".join(["http://127.0.0.1:1", *(n.rest_url for n in patroni.nodes)])
        facts = database_facts(registry.replication, urls)  # the first URL is dead
    finally:
        registry.close()
    assert facts.reachable and facts.patroni_answered and facts.synchronous_wanted
    assert facts.status.primary == leader.name
    assert [s.name for s in facts.status.standbys] == [standby.name]
    assert facts.status.synchronous is True
    lag = facts.status.standbys[0]
    assert lag.lag_bytes is not None and lag.lag_bytes >= 0
    assert lag.lag_seconds is not None and lag.lag_seconds >= 0
    assert _health(facts) == (HEALTHY, [])


def test_without_patroni_pg_stat_replication_shows_the_sync_standby(
    patroni: PatroniCluster,
) -> None:
    leader, standby = patroni.leader(), patroni.sync_standby()
    assert leader is not None and standby is not None
    registry = NodeRegistry(patroni.dsn())
    try:
        facts = database_facts(registry.replication, "")
    finally:
        registry.close()
    assert facts.reachable and facts.synchronous_wanted  # synchronous_standby_names is set
    assert facts.status.primary == f"127.0.0.1:{leader.pg_port}"
    assert [s.name for s in facts.status.standbys] == [standby.name]
    assert facts.status.synchronous is True
    assert _health(facts) == (HEALTHY, [])


def test_a_standby_reached_alone_is_not_a_primary(patroni: PatroniCluster) -> None:
    standby = patroni.sync_standby()
    assert standby is not None
    registry = NodeRegistry(standby.admin_dsn())
    try:
        facts = database_facts(registry.replication, "")
    finally:
        registry.close()
    assert not facts.reachable
    health, reasons = _health(facts)
    assert health == "unhealthy"
    assert reasons[1] == f"127.0.0.1:{standby.pg_port} is a standby (in recovery), not the primary"
