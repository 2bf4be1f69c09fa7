"""Observability against a real server process: every metric of API.md's table with its
labels, ``promtool check metrics`` clean, the top-N agent label, the slow-query log,
storage stats, cluster status, and an error type in every error log line."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import httpx
import pytest
from api_helpers import post
from live_server import LiveServer
from prometheus_client.parser import text_string_to_metric_families

from stemedb import __version__
from stemedb.api.observability.top_agents import TopAgents
from stemedb.model.signing import AgentKey, sign_assertion

TOP_AGENTS = 2
AGENTS = [AgentKey.from_seed(bytes([0x60 + i]) * 32) for i in range(4)]

# API.md "Metrics": name -> labels (histograms and counters by their family name)
CONTRACT: dict[str, set[str]] = {
    "stemedb_http_requests": {"method", "path", "status", "agent"},
    "stemedb_http_request_duration_seconds": {"method", "path"},
    "stemedb_error_count_by_type": {"error_type"},
    "stemedb_assertions_ingested": set(),
    "stemedb_assertions": set(),  # a counter: stemedb_assertions_total
    "stemedb_queries": {"endpoint", "lens"},
    "stemedb_query_latency_seconds": {"endpoint", "lens"},
    "stemedb_wal_fsync_duration_seconds": set(),
    "stemedb_wal_fsync_errors": set(),
    "stemedb_wal_writes": set(),
    "stemedb_wal_bytes_written": set(),
    "stemedb_wal_batch_size": set(),
    "stemedb_wal_segments": set(),
    "stemedb_wal_disk_usage_bytes": set(),
    "stemedb_wal_rotations": set(),
    "stemedb_wal_recovery_duration_seconds": set(),
    "stemedb_storage_operation_duration_seconds": {"operation", "backend"},
    "stemedb_storage_operation_errors": {"operation", "backend"},
    "stemedb_storage_operations": {"operation", "backend"},
    "stemedb_rate_limited": {"path", "scope"},
    "stemedb_circuit_breakers_open": set(),
    "stemedb_cache_hits": {"cache"},
    "stemedb_cache_misses": {"cache"},
    "stemedb_tls_cert_expiry_seconds": set(),
    "stemedb_build_info": {"version"},
}

# label children created on first use (no sample before a request is rate limited)
SAMPLED_ONCE_USED = {"stemedb_rate_limited"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("observability"),
        STEMEDB_API_SLOW_QUERY_MS="0",  # every query is "slow": the log fills at once
        STEMEDB_API_SLOW_QUERY_LOG_ENTRIES="5",
        STEMEDB_API_METRICS_TOP_AGENTS=str(TOP_AGENTS),
    )
    with server.client() as client:
        _traffic(client)
    yield server
    assert server.stop() == 0


def _traffic(client: httpx.Client) -> None:
    """Writes and reads by several agents, a few errors: every metric gets a sample."""
    for index, key in enumerate(AGENTS):
        subject = f"obs/{uuid.uuid4().hex[:8]}"
        for n in range(len(AGENTS) - index):  # agent 0 is the busiest
            record = sign_assertion(key, subject=subject, predicate="p", object=n, confidence=0.5)
            assert post(client, "/v1/assert", record).status_code == 201
            headers = {"X-Agent-Id": key.agent_id}
            params = {"subject": subject, "predicate": "p"}
            assert client.get("/v1/query", params=params, headers=headers).status_code == 200
    assert client.get(f"/v1/assertions/{'0' * 64}").status_code == 404
    assert (
        client.post(
            "/v1/assert", content=b"{", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )


def _families(client: httpx.Client) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        labels = out.setdefault(family.name, set())
        for sample in family.samples:
            labels |= set(sample.labels) - {"le"}
    return out


def test_every_metric_of_the_contract_is_exposed_with_its_labels(live: LiveServer) -> None:
    with live.client() as client:
        families = _families(client)
        text = client.get("/metrics").text
    for name, labels in CONTRACT.items():
        assert name in families, f"{name} is not exposed"
        if labels and not (name in SAMPLED_ONCE_USED and not families[name]):
            assert families[name] == labels, (name, families[name])
    assert f'stemedb_build_info{{version="{__version__}"}} 1.0' in text
    assert 'stemedb_storage_operations_total{backend="sqlite",operation="query"}' in text
    assert 'stemedb_storage_operations_total{backend="sqlite",operation="write"}' in text
    assert 'stemedb_error_count_by_type{error_type="NotFoundError"} 1.0' in text
    assert 'stemedb_cache_hits_total{cache="query"}' in text
    assert 'stemedb_cache_misses_total{cache="fallback"}' in text


def test_promtool_check_metrics_reports_nothing(live: LiveServer) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool missing: run scripts/install-debian-deps.sh (Debian prometheus)")
    with live.client() as client:
        exposition = client.get("/metrics").content
    result = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == b"" and result.stderr.strip() == b""


def test_agent_label_names_only_the_top_agents(live: LiveServer) -> None:
    with live.client() as client:
        text = client.get("/metrics").text
    agents = set()
    for family in text_string_to_metric_families(text):
        if family.name == "stemedb_http_requests":
            agents |= {s.labels["agent"] for s in family.samples if "agent" in s.labels}
    named = agents - {"", "_other"}
    assert len(named) <= TOP_AGENTS
    assert "_other" in agents and "" in agents


def test_top_agents_follow_volume_and_drop_the_quiet() -> None:
    top = TopAgents(2)
    assert top.label("a")[0] == "a" and top.label("b")[0] == "b"
    assert top.label("c")[0] == "_other"
    for _ in range(50):
        top.label("c")
    dropped = top.rebalance()
    assert top.labelled == {"c", "a"} or top.labelled == {"c", "b"}
    assert len(dropped) == 1
    assert top.label(None)[0] == ""


def test_slow_query_log_is_newest_first_and_bounded(live: LiveServer) -> None:
    with live.client() as client:
        subject = f"slow/{uuid.uuid4().hex[:8]}"
        agent = AGENTS[0].agent_id
        client.get(
            "/v1/query",
            params={"subject": subject, "predicate": "p", "lens": "recency"},
            headers={"X-Agent-Id": agent},
        )
        queries = client.get("/v1/admin/slow-queries").json()["queries"]
    assert 1 <= len(queries) <= 5
    newest = queries[0]
    assert set(newest) == {
        "query_id",
        "subject",
        "predicate",
        "lens",
        "duration_ms",
        "at",
        "agent_id",
    }
    assert newest["subject"] == subject and newest["lens"] == "recency"
    assert newest["agent_id"] == agent and newest["duration_ms"] >= 0
    assert [q["at"] for q in queries] == sorted((q["at"] for q in queries), reverse=True)


def test_storage_stats_and_cluster_status(live: LiveServer) -> None:
    with live.client() as client:
        stats = client.get("/v1/admin/storage/stats").json()
        status = client.get("/v1/admin/cluster/status").json()
    assert stats["assertion_count"] >= 10 and stats["disk_bytes"] > 0
    assert stats["applied_lsn"] >= 10 and stats["wal_segments"] >= 1
    assert stats["cache_bytes"] >= 0 and 0 <= stats["cache_hit_ratio"] <= 1
    assert status["health"] == "healthy" and status["mode"] == "single"
    assert [n["node_id"] for n in status["nodes"]] == [status["node_id"]]
    assert status["nodes"][0]["ready"] is True
    assert status["wal"]["writable"] is True and status["wal"]["fsync_errors"] == 0
    assert status["storage"]["answering"] is True


def test_every_error_line_names_its_error_type(live: LiveServer) -> None:
    error_lines = []
    for line in live.log_lines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("level") in ("WARNING", "ERROR") and "error_type" in record:
            error_lines.append(record)
    types = {r["error_type"] for r in error_lines}
    assert {"NotFoundError", "SerializationError"} <= types
    for record in error_lines:
        assert record["message"].startswith(f"Error: {record['error_type']}: "), record
        assert "request_id=" in record["message"]
