"""The health rules of the cluster status (cluster.health), one rule per test."""

from __future__ import annotations

from stemedb.cluster.health import DEGRADED, HEALTHY, UNHEALTHY, DatabaseFacts, judge
from stemedb.wire import ClusterNode, DatabaseStatus, Standby


def _node(name: str, healthy: bool = True) -> ClusterNode:
    return ClusterNode(
        node_id=name,
        advertise_url=f"http://{name}",
        version="1",
        last_heartbeat=1.0,
        healthy=healthy,
    )


def _facts(
    standbys: list[Standby] | None = None,
    *,
    synchronous: bool = True,
    wanted: bool = True,
    reachable: bool = True,
) -> DatabaseFacts:
    status = DatabaseStatus(
        primary="pg1" if reachable else None,
        standbys=standbys
        if standbys is not None
        else [Standby(name="pg2", lag_bytes=0, lag_seconds=0.0)],
        synchronous=synchronous,
    )
    return DatabaseFacts(status=status, reachable=reachable, synchronous_wanted=wanted)


def _judge(
    facts: DatabaseFacts, nodes: list[ClusterNode] | None = None, **kw: object
) -> tuple[str, list[str]]:
    return judge(
        nodes=nodes if nodes is not None else [_node("a"), _node("b")],
        database=facts,
        not_ready=kw.get("not_ready", []),  # type: ignore[arg-type]
        breakers_open=bool(kw.get("breakers_open", False)),
        max_lag_seconds=10.0,
    )


def test_all_nodes_beating_and_a_synchronous_standby_is_healthy() -> None:
    assert _judge(_facts()) == (HEALTHY, [])


def test_a_node_that_missed_heartbeats_makes_it_degraded() -> None:
    health, reasons = _judge(_facts(), [_node("a"), _node("b", healthy=False)])
    assert health == DEGRADED and "node b missed its heartbeats" in reasons[0]


def test_no_synchronous_standby_when_one_is_wanted_makes_it_degraded() -> None:
    health, reasons = _judge(_facts(synchronous=False))
    assert health == DEGRADED and "no standby is synchronous" in reasons[0]
    assert _judge(_facts([], synchronous=False, wanted=False)) == (HEALTHY, [])


def test_a_standby_lagging_past_the_bound_makes_it_degraded() -> None:
    lagging = [Standby(name="pg2", lag_bytes=10**9, lag_seconds=11.0)]
    health, reasons = _judge(_facts(lagging))
    assert health == DEGRADED and "standby pg2 lags 11.0 s" in reasons[0]
    unknown = [Standby(name="pg2", lag_bytes=4096, lag_seconds=None)]
    assert _judge(_facts(unknown))[0] == DEGRADED


def test_no_primary_or_a_node_not_ready_is_unhealthy() -> None:
    assert _judge(_facts(reachable=False))[0] == UNHEALTHY
    health, reasons = _judge(_facts(), not_ready=["store: gone"])
    assert health == UNHEALTHY and reasons == ["this node is not ready: store: gone"]


def test_an_open_storage_breaker_makes_it_degraded() -> None:
    assert _judge(_facts(), breakers_open=True)[0] == DEGRADED
