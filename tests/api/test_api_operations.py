"""Operator surface: health, readiness, metrics names, OpenAPI, docs, log lines, and a
graceful shutdown that keeps acknowledged writes."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import httpx
import msgspec
from api_helpers import post
from api_server import ServerProcess

from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey, sign_assertion

API_MD_PATHS = {
    ("post", "/v1/assert"),
    ("post", "/v1/assert/batch"),
    ("post", "/v1/assertions/{id}/signatures"),
    ("get", "/v1/assertions/{id}"),
    ("post", "/v1/vote"),
    ("post", "/v1/epoch"),
    ("get", "/v1/epochs"),
    ("get", "/v1/epochs/{id}"),
    ("post", "/v1/supersede"),
    ("post", "/v1/sources"),
    ("get", "/v1/sources"),
    ("get", "/v1/sources/{hash}"),
    ("post", "/v1/sources/{hash}/retract"),
    ("get", "/v1/query"),
    ("post", "/v1/query"),
    ("get", "/v1/skeptic"),
    ("get", "/v1/trace/{id}"),
    ("get", "/v1/audit/queries"),
    ("get", "/v1/audit/queries/{query_id}"),
    ("get", "/v1/feed"),
    ("get", "/v1/feed/stream"),
    ("get", "/v1/agents/{agent_id}"),
    ("get", "/health"),
    ("get", "/v1/health"),
    ("get", "/ready"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
}


def test_health_answers_liveness(client: httpx.Client) -> None:
    for path in ("/health", "/v1/health"):
        body = client.get(path).json()
        assert body["status"] == "ok" and body["version"]
        assert body["uptime_seconds"] >= 0


def test_ready_when_wal_and_store_are_fine(client: httpx.Client) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ready" and response.json()["reasons"] == []


def test_metrics_expose_the_contract_names(
    client: httpx.Client, alice: AgentKey, subject: str
) -> None:
    record = sign_assertion(alice, subject=subject, predicate="p", object="m", confidence=0.5)
    aid = post(client, "/v1/assert", record).json()["id"]
    client.get(f"/v1/assertions/{aid}")
    client.get("/v1/query", params={"subject": subject, "predicate": "p", "lens": "recency"})
    client.get("/v1/no-such-route")
    text = client.get("/metrics").text
    for name in (
        "stemedb_http_requests_total",
        "stemedb_http_request_duration_seconds_bucket",
        "stemedb_error_count_by_type",
        "stemedb_assertions_ingested_total",
        "stemedb_assertions_total",
        "stemedb_queries_total",
        "stemedb_query_latency_seconds",
        "stemedb_wal_fsync_duration_seconds",
        "stemedb_wal_fsync_errors_total",
        "stemedb_wal_writes_total",
        "stemedb_wal_bytes_written_total",
        "stemedb_wal_batch_size",
        "stemedb_wal_segments",
        "stemedb_wal_disk_usage_bytes",
        "stemedb_wal_rotations_total",
        "stemedb_wal_recovery_duration_seconds",
        "stemedb_build_info",
        "stemedb_cache_hits_total",
        "stemedb_cache_misses_total",
    ):
        assert re.search(rf"^{name}(_bucket)?[{{ ]", text, re.M), name
    # route templates, never raw ids; the writer's agent as label
    assert 'path="/v1/assertions/{id}"' in text and aid not in text
    assert re.search(
        rf'stemedb_http_requests_total\{{agent="{alice.agent_id}",method="POST",'
        r'path="/v1/assert",status="201"\}',
        text,
    )
    assert 'path="<unmatched>",status="404"' in text
    assert re.search(r'stemedb_error_count_by_type\{error_type="NotFoundError"\} [1-9]', text)
    assert re.search(r'stemedb_queries_total\{endpoint="query",lens="recency"\} [1-9]', text)
    assert 'stemedb_build_info{version="' in text
    assert re.search(r"^stemedb_wal_fsync_duration_seconds_count [1-9]", text, re.M)


def test_openapi_is_generated_from_the_types(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    operations = {(m, p) for p, item in spec["paths"].items() for m in item}
    assert operations >= API_MD_PATHS
    schemas = spec["components"]["schemas"]
    assertion = schemas["Assertion"]
    assert set(assertion["properties"]) == set(Assertion.__struct_fields__)
    assert assertion["additionalProperties"] is False  # forbid_unknown_fields
    names = {p["name"] for p in spec["paths"]["/v1/query"]["get"]["parameters"]}
    assert names >= {
        "subject",
        "subject_prefix",
        "predicate",
        "lens",
        "as_of",
        "valid_at",
        "since",
        "lifecycle",
        "epoch",
        "source_class",
        "agent_id",
        "include_retracted",
        "max_stale_seconds",
        "limit",
        "cursor",
    }
    assert "ErrorEnvelope" in schemas
    ops = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ops) == len(set(ops))


def test_docs_page_loads_nothing_from_the_network(client: httpx.Client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    assert "/v1/assert" in response.text and "/openapi.json" in response.text
    assert not re.search(r"(src|href)=['\"]https?://", response.text)


def test_log_lines_are_json_with_access_and_error_lines(
    server: ServerProcess, client: httpx.Client
) -> None:
    rid = f"log-{uuid.uuid4().hex[:8]}"
    client.post(
        "/v1/assert",
        content=b"{oops",
        headers={"X-Request-Id": rid, "content-type": "application/json"},
    )
    client.get("/health")  # a later request flushes nothing but gives the log a moment
    lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == rid]
    access = [line for line in mine if line["message"].startswith("HTTP ")]
    errors = [line for line in mine if line["message"].startswith("Error: ")]
    assert access and errors
    assert re.fullmatch(
        rf"HTTP POST /v1/assert 400 agent_id=- duration_ms=[0-9.]+ request_id={rid}",
        access[0]["message"],
    )
    assert errors[0]["message"].startswith("Error: SerializationError: ")
    assert errors[0]["message"].endswith(f"agent_id=- request_id={rid}")
    for line in (access[0], errors[0]):
        assert {"timestamp", "level", "message", "request_id"} <= set(line)


def test_graceful_shutdown_keeps_acknowledged_writes(tmp_path: Path, alice: AgentKey) -> None:
    data = tmp_path / "data"
    first = ServerProcess(data, tmp_path / "one.log", STEMEDB_LOGGING_FORMAT="text")
    record = sign_assertion(alice, subject="restart/x", predicate="p", object=1, confidence=1)
    try:
        with httpx.Client(base_url=first.url) as client:
            created = post(client, "/v1/assert", record).json()
    finally:
        assert first.stop() == 0
    text_lines = first.log_lines()
    assert any(re.search(r" INFO HTTP POST /v1/assert 201 agent_id=", line) for line in text_lines)
    assert not any(line.startswith("{") for line in text_lines)
    second = ServerProcess(data, tmp_path / "two.log")
    try:
        with httpx.Client(base_url=second.url) as client:
            again = post(client, "/v1/assert", record)
            assert again.status_code == 200 and again.json()["lsn"] == created["lsn"]
            detail = client.get(f"/v1/assertions/{created['id']}").json()
            assert msgspec.json.decode(msgspec.json.encode(detail["assertion"]))["subject"] == (
                "restart/x"
            )
    finally:
        assert second.stop() == 0


def test_audit_retention_prunes_every_workers_queries(tmp_path: Path, alice: AgentKey) -> None:
    retention_seconds = 3.0
    server = ServerProcess(
        tmp_path / "data",
        tmp_path / "server.log",
        STEMEDB_API_WORKERS="2",
        STEMEDB_AUDIT_RETENTION_DAYS=str(retention_seconds / 86400),
        STEMEDB_AUDIT_PRUNE_INTERVAL_SECONDS="0.2",
    )
    record = sign_assertion(alice, subject="audit/x", predicate="p", object=1, confidence=1)
    params = {"subject": "audit/x", "predicate": "p"}
    try:
        with httpx.Client(base_url=server.url) as client:
            post(client, "/v1/assert", record)
        asked = []
        for _ in range(8):  # a connection each: both workers answer some
            with httpx.Client(base_url=server.url) as client:
                asked.append(client.get("/v1/query", params=params).json()["query_id"])
        with httpx.Client(base_url=server.url) as client:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                listed = client.get("/v1/audit/queries", params={"limit": 100}).json()
                if not listed["queries"]:
                    break
                time.sleep(0.2)
            assert listed["queries"] == []
            for query_id in asked:
                assert client.get(f"/v1/audit/queries/{query_id}").status_code == 404
            fresh = client.get("/v1/query", params=params).json()["query_id"]
            assert client.get(f"/v1/audit/queries/{fresh}").status_code == 200
            pruned = re.search(
                r"^stemedb_audit_queries_pruned_total (\S+)$", client.get("/metrics").text, re.M
            )
            assert pruned is not None and float(pruned.group(1)) == len(asked)
    finally:
        assert server.stop() == 0
    assert any("audit: pruned" in line for line in server.log_lines())
