"""Two cluster nodes (real server processes on loopback) on one real PostgreSQL: API keys,
breakers and rate limits are the cluster's, and each node's cluster status lists both.

A key created or revoked through one node holds on the other from the very next
request (no sleep between the change and the check); an agent tripped on one is
refused on the other; the nodes heartbeat into the registry and the status says
``healthy`` until one stops beating (``kill -9``), then ``degraded``.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from support.mcp_client import http_session, structured, tool_error
from support.redis import redis_server
from support.server import CLUSTER_ROOT_KEY, ServerProcess, secured_cluster_node

from stemedb.model.signing import AgentKey, sign_assertion

ROOT_KEY = CLUSTER_ROOT_KEY
RATE_LIMIT = 4


@pytest.fixture
def two_nodes(postgres_dsn: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    a = secured_cluster_node(tmp_path, "node-a", postgres_dsn, STEMEDB_LOGGING_FORMAT="text")
    try:
        b = secured_cluster_node(tmp_path, "node-b", postgres_dsn, STEMEDB_LOGGING_FORMAT="text")
    except BaseException:
        a.stop()
        raise
    yield a, b
    b.stop()
    a.stop()


ADMIN = {"x-api-key": ROOT_KEY}


def _signed(agent: AgentKey, value: object) -> bytes:
    record = sign_assertion(
        agent, subject="cluster/keys", predicate="p", object=value, confidence=0.5
    )
    return msgspec.json.encode(record)


def _write(node: ServerProcess, key: str, agent: AgentKey, value: object) -> httpx.Response:
    return httpx.post(
        node.url + "/v1/assert",
        content=_signed(agent, value),
        headers={"x-api-key": key, "content-type": "application/json"},
        timeout=30,
    )


def test_a_key_created_or_revoked_on_one_node_holds_on_the_other_at_the_next_request(
    two_nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = two_nodes
    agent = AgentKey.from_seed(b"\x61" * 32)
    for round_ in range(5):
        made = httpx.post(
            a.url + "/v1/admin/api-keys",
            json={"name": f"ci-{round_}", "role": "writer"},
            headers=ADMIN,
            timeout=30,
        )
        assert made.status_code == 201, made.text
        key = made.json()
        assert _write(b, key["secret"], agent, round_).status_code in (200, 201)
        disabled = httpx.post(
            f"{a.url}/v1/admin/api-keys/{key['id']}/disable", headers=ADMIN, timeout=30
        )
        assert disabled.status_code == 200, disabled.text
        refused = _write(b, key["secret"], agent, round_)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "api_key_disabled"
    listed = httpx.get(b.url + "/v1/admin/api-keys", headers=ADMIN, timeout=30).json()["keys"]
    assert {k["name"] for k in listed} >= {f"ci-{i}" for i in range(5)}


def test_an_agent_tripped_on_one_node_is_refused_on_the_other_until_reset(
    two_nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = two_nodes
    agent = AgentKey.from_seed(b"\x62" * 32)
    trip = {"agent_id": agent.agent_id, "reason": "abuse"}
    assert (
        httpx.post(a.url + "/v1/admin/circuit-breaker/trip", json=trip, headers=ADMIN).status_code
        == 200
    )
    refused = _write(b, ROOT_KEY, agent, 1)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "circuit_open"
    listed = httpx.get(b.url + "/v1/admin/circuit-breakers", headers=ADMIN).json()["breakers"]
    assert [(x["agent_id"], x["state"]) for x in listed] == [(agent.agent_id, "open")]
    reset = {"agent_id": agent.agent_id}
    assert (
        httpx.post(a.url + "/v1/admin/circuit-breaker/reset", json=reset, headers=ADMIN).status_code
        == 200
    )
    assert _write(b, ROOT_KEY, agent, 2).status_code == 201


def _status(node: ServerProcess) -> dict[str, object]:
    answer = httpx.get(node.url + "/v1/admin/cluster/status", headers=ADMIN, timeout=30)
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_cluster_status_lists_both_nodes_then_a_killed_one_as_unhealthy(
    postgres_dsn: str, two_nodes: tuple[ServerProcess, ServerProcess]
) -> None:
    a, b = two_nodes
    for node in (a, b):
        status = _status(node)
        assert status["mode"] == "cluster" and status["health"] == "healthy", status
        assert status["reasons"] == []
        nodes = status["nodes"]
        assert isinstance(nodes, list)
        assert [(n["node_id"], n["advertise_url"], n["healthy"]) for n in nodes] == [
            ("node-a", a.url, True),
            ("node-b", b.url, True),
        ]
        assert set(nodes[0]) == {"node_id", "advertise_url", "version", "last_heartbeat", "healthy"}
        port = postgres_dsn.split("port=")[1].split()[0]
        assert status["database"] == {
            "primary": f"127.0.0.1:{port}",
            "standbys": [],
            "synchronous": False,
        }
    # the gauge is set on node a's next heartbeat (it may have beaten before b started)
    deadline = time.monotonic() + 10
    while "stemedb_cluster_nodes 2.0" not in (metrics := httpx.get(a.url + "/metrics").text):
        assert time.monotonic() < deadline, metrics
        time.sleep(0.2)
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = _status(a)
        if status["health"] == "degraded":
            break
        time.sleep(0.2)
    assert status["health"] == "degraded", status
    assert [(n["node_id"], n["healthy"]) for n in status["nodes"]] == [  # type: ignore[union-attr]
        ("node-a", True),
        ("node-b", False),
    ]
    assert status["reasons"] == [
        f"node node-b missed its heartbeats (last {status['nodes'][1]['last_heartbeat']:.0f})"  # type: ignore[index]
    ]


def test_a_node_that_stops_cleanly_leaves_the_registry(
    two_nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = two_nodes
    assert b.stop() == 0
    status = _status(a)
    assert [n["node_id"] for n in status["nodes"]] == ["node-a"]  # type: ignore[union-attr]
    assert status["health"] == "healthy"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url


def test_rate_limits_in_redis_hold_across_two_cluster_nodes(
    postgres_dsn: str, tmp_path: Path, redis_url: str
) -> None:
    limits = {
        "STEMEDB_RATE_LIMIT_ENABLED": "true",
        "STEMEDB_RATE_LIMIT_STORAGE": redis_url,
        "STEMEDB_RATE_LIMIT_DEFAULT_PER_MINUTE": str(RATE_LIMIT),
        "STEMEDB_LOGGING_FORMAT": "text",
    }
    a = secured_cluster_node(tmp_path, "node-a", postgres_dsn, **limits)
    try:
        b = secured_cluster_node(tmp_path, "node-b", postgres_dsn, **limits)
        try:
            made = httpx.post(
                a.url + "/v1/admin/api-keys", json={"name": "r", "role": "reader"}, headers=ADMIN
            ).json()
            codes = [
                httpx.get(
                    (a if i % 2 == 0 else b).url + "/v1/query",
                    params={"subject": "cluster/limits"},
                    headers={"x-api-key": made["secret"]},
                    timeout=30,
                ).status_code
                for i in range(RATE_LIMIT + 1)
            ]
            assert codes == [200] * RATE_LIMIT + [429]
        finally:
            b.stop()
    finally:
        a.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_a_custodial_key_made_on_one_node_signs_on_the_other_until_revoked_there(
    two_nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    """Cluster mode keeps custodial keys in PostgreSQL: an MCP write through node B is
    signed with the key an admin created through node A; revoked through B, A signs no
    more; the API key disabled through A is refused by B's ``/mcp`` at the next request."""
    a, b = two_nodes
    made = httpx.post(
        a.url + "/v1/admin/api-keys", json={"name": "mcp", "role": "writer"}, headers=ADMIN
    )
    assert made.status_code == 201, made.text
    key = made.json()
    custodial = httpx.post(
        a.url + "/v1/admin/custodial-keys", json={"api_key_id": key["id"]}, headers=ADMIN
    )
    assert custodial.status_code == 201, custodial.text
    agent_id = custodial.json()["agent_id"]
    claim = {"subject": "cluster/mcp", "predicate": "p", "value": "v", "confidence": 0.5}
    async with http_session(b.url, key["secret"]) as client:
        written = structured(await client.call_tool("assert_claim", claim))
    stored = httpx.get(f"{a.url}/v1/assertions/{written['id']}", headers=ADMIN).json()
    assert [s["agent_id"] for s in stored["signatures"]] == [agent_id]
    revoked = httpx.delete(f"{b.url}/v1/admin/custodial-keys/{agent_id}", headers=ADMIN)
    assert revoked.status_code == 200 and revoked.json()["usable"] is False
    async with http_session(a.url, key["secret"]) as client:
        refused = tool_error(await client.call_tool("assert_claim", claim))
    assert refused["code"] == "no_signing_key"
    disabled = httpx.post(f"{a.url}/v1/admin/api-keys/{key['id']}/disable", headers=ADMIN)
    assert disabled.status_code == 200, disabled.text
    ping = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    mcp_headers = {"accept": "application/json, text/event-stream", "x-api-key": key["secret"]}
    refused_b = httpx.post(b.url + "/mcp", json=ping, headers=mcp_headers)  # at once on B
    assert refused_b.status_code == 401 and refused_b.json()["error"]["code"] == "api_key_disabled"
