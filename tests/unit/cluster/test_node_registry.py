"""The node registry and the replication view on a real PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from support.shared_schema import apply_shared_migrations

from stemedb.cluster.database import database_facts
from stemedb.cluster.health import DEGRADED, HEALTHY, UNHEALTHY, judge
from stemedb.cluster.registry import NodeRegistry
from stemedb.errors import StorageError


@pytest.fixture
def registry(postgres_dsn: str) -> Iterator[NodeRegistry]:
    apply_shared_migrations(postgres_dsn)
    registry = NodeRegistry(postgres_dsn)
    yield registry
    registry.close()


def test_two_nodes_that_beat_are_listed_healthy_with_the_database_clock(
    registry: NodeRegistry,
) -> None:
    before = time.time()
    registry.started("a", "http://127.0.0.1:1", "1.0", 5.0)
    registry.started("b", "http://127.0.0.1:2", "1.0", 5.0)
    nodes = registry.nodes()
    assert [(n.node_id, n.advertise_url, n.healthy) for n in nodes] == [
        ("a", "http://127.0.0.1:1", True),
        ("b", "http://127.0.0.1:2", True),
    ]
    assert all(before - 1 <= n.last_heartbeat <= time.time() + 1 for n in nodes)


def test_a_node_that_missed_three_heartbeats_is_unhealthy_until_it_beats_again(
    registry: NodeRegistry,
) -> None:
    registry.started("a", "http://a", "1.0", 0.2)
    time.sleep(0.7)
    assert [n.healthy for n in registry.nodes()] == [False]
    registry.beat("a", "http://a", "1.0", 0.2)
    assert [n.healthy for n in registry.nodes()] == [True]


def test_a_node_that_leaves_is_no_longer_listed(registry: NodeRegistry) -> None:
    registry.started("a", "http://a", "1.0", 5.0)
    registry.leave("a")
    assert registry.nodes() == []


def test_a_node_gone_for_an_hour_is_dropped_by_the_next_heartbeat(
    registry: NodeRegistry, postgres_dsn: str
) -> None:
    registry.started("gone", "http://gone", "1.0", 5.0)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("UPDATE stemedb_nodes SET last_heartbeat = now() - interval '2 hours'")
    assert registry.nodes() == []
    registry.beat("here", "http://here", "1.0", 5.0)
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT node_id FROM stemedb_nodes").fetchall() == [("here",)]


def test_a_lone_postgresql_is_the_primary_without_standbys(
    registry: NodeRegistry, postgres_dsn: str
) -> None:
    facts = database_facts(registry.replication, "")
    port = postgres_dsn.split("port=")[1].split()[0]
    assert facts.reachable and not facts.synchronous_wanted
    assert facts.status.primary == f"127.0.0.1:{port}"
    assert facts.status.standbys == [] and facts.status.synchronous is False
    registry.started("a", "http://a", "1.0", 5.0)
    health, reasons = judge(
        nodes=registry.nodes(),
        database=facts,
        not_ready=[],
        breakers_open=False,
        max_lag_seconds=30,
    )
    assert (health, reasons) == (HEALTHY, [])


def test_a_database_without_the_registry_table_names_db_migrate(postgres_dsn: str) -> None:
    registry = NodeRegistry(postgres_dsn)
    try:
        with pytest.raises(StorageError, match="stemedb db migrate"):
            registry.nodes()
    finally:
        registry.close()


def test_an_unreachable_primary_is_unhealthy_and_says_why() -> None:
    registry = NodeRegistry("host=127.0.0.1 port=1 user=postgres dbname=x")
    facts = database_facts(registry.replication, "")
    health, reasons = judge(
        nodes=[], database=facts, not_ready=[], breakers_open=False, max_lag_seconds=30
    )
    assert health == UNHEALTHY
    assert reasons[0] == "no PostgreSQL primary answers"
    assert "not reachable" in reasons[1]


def test_an_unreachable_patroni_makes_the_cluster_degraded(registry: NodeRegistry) -> None:
    facts = database_facts(registry.replication, "http://127.0.0.1:1")
    health, reasons = judge(
        nodes=[], database=facts, not_ready=[], breakers_open=False, max_lag_seconds=30
    )
    assert health == DEGRADED
    assert any("Patroni does not answer" in r for r in reasons)
    assert any("no standby is synchronous" in r for r in reasons)
