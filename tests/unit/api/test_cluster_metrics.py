"""The cluster metrics (API.md names) and ``promtool check metrics`` on them."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client import generate_latest

from stemedb.api.metrics_merge import merge_expositions
from stemedb.api.observability.metrics import Metrics
from stemedb.wire import ClusterNode, Standby


def _node(name: str, healthy: bool) -> ClusterNode:
    return ClusterNode(
        node_id=name, advertise_url="http://x", version="1", last_heartbeat=1.0, healthy=healthy
    )


def _cluster_metrics() -> Metrics:
    metrics = Metrics("1.0", cluster=True)
    metrics.observe_cluster(
        [_node("a", True), _node("b", True), _node("c", False)],
        [
            Standby(name="pg2", lag_bytes=0, lag_seconds=0.25),
            Standby(name="pg3", lag_bytes=7, lag_seconds=None),
        ],
    )
    metrics.postgres_errors.labels("heartbeat").inc()
    return metrics


def test_cluster_metrics_have_api_md_names_and_labels() -> None:
    registry = _cluster_metrics().registry
    assert registry.get_sample_value("stemedb_cluster_nodes") == 2.0
    assert registry.get_sample_value("stemedb_replication_lag_seconds", {"standby": "pg2"}) == 0.25
    assert registry.get_sample_value("stemedb_replication_lag_seconds", {"standby": "pg3"}) is None
    errors = {"operation": "heartbeat"}
    assert registry.get_sample_value("stemedb_postgres_errors_total", errors) == 1.0


def test_single_mode_exposes_no_cluster_metric() -> None:
    page = generate_latest(Metrics("1.0").registry).decode()
    assert "stemedb_cluster_nodes" not in page
    assert "stemedb_postgres_errors" not in page


def test_a_standby_that_is_gone_loses_its_series() -> None:
    metrics = _cluster_metrics()
    metrics.observe_cluster([_node("a", True)], [])
    assert (
        metrics.registry.get_sample_value("stemedb_replication_lag_seconds", {"standby": "pg2"})
        is None
    )


def test_several_processes_report_the_node_wide_values_once() -> None:
    page = generate_latest(_cluster_metrics().registry)
    other = Metrics("1.0", cluster=True)  # a second HTTP process that does not beat
    merged = merge_expositions([page, generate_latest(other.registry)]).decode()
    assert "stemedb_cluster_nodes 2.0" in merged
    assert 'stemedb_replication_lag_seconds{standby="pg2"} 0.25' in merged


def test_promtool_check_metrics_is_clean_on_the_cluster_metrics() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool missing: run scripts/install-debian-deps.sh (Debian prometheus)")
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=generate_latest(_cluster_metrics().registry),
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == b"", result.stdout + result.stderr
