"""Rate limits against a real server: per endpoint, per API key, per agent, admin
overrides, the 429 headers of API.md, recovery after the window, exempt routes, and the
Redis storage shared by two servers."""

from __future__ import annotations

import importlib.util
import math
import re
import time
from pathlib import Path

import httpx
import pytest
from api_helpers import assert_envelope
from auth_server import *  # noqa: F403  (fixtures)
from auth_server import (
    AUTH_ENV,
    RATE_WINDOW_SECONDS,
    ROOT_KEY,
    SKEPTIC_LIMIT,
    ServerProcess,
    admin_headers,
    create_key,
    fresh_agent,
    send,
    start_refused,
    wait_for_new_window,
)

from stemedb.model.signing import sign_assertion

SKEPTIC = {"subject": "test/rate", "predicate": "p"}


def metric_value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def check_429_headers(response: httpx.Response, limit: int) -> None:
    headers = response.headers
    retry = int(headers["retry-after"])
    assert 1 <= retry <= RATE_WINDOW_SECONDS
    assert headers["ratelimit-policy"] == f"{limit};w={RATE_WINDOW_SECONDS}"
    match = re.fullmatch(r"limit=(\d+), remaining=(\d+), reset=(\d+)", headers["ratelimit"])
    assert match is not None, headers["ratelimit"]
    assert int(match[1]) == limit and int(match[2]) == 0
    assert 1 <= int(match[3]) <= RATE_WINDOW_SECONDS
    assert headers["x-ratelimit-limit"] == str(limit)
    assert headers["x-ratelimit-remaining"] == "0"
    reset = int(headers["x-ratelimit-reset"])  # epoch seconds
    assert time.time() - 1 <= reset <= math.ceil(time.time()) + RATE_WINDOW_SECONDS + 1


def test_endpoint_limit_answers_429_with_headers_and_recovers(
    auth_client: httpx.Client,
) -> None:
    key = create_key(auth_client, "reader")
    headers = {"x-api-key": key["secret"]}
    before = metric_value(
        auth_client.get("/metrics").text,
        "stemedb_rate_limited_total",
        path="/v1/skeptic",
        scope="endpoint",
    )
    for expected_remaining in range(SKEPTIC_LIMIT - 1, -1, -1):
        ok = auth_client.get("/v1/skeptic", params=SKEPTIC, headers=headers)
        assert ok.status_code == 200, ok.text
        assert ok.headers["x-ratelimit-limit"] == str(SKEPTIC_LIMIT)
        assert ok.headers["x-ratelimit-remaining"] == str(expected_remaining)
    refused = auth_client.get("/v1/skeptic", params=SKEPTIC, headers=headers)
    error = assert_envelope(refused, 429, "RateLimitError", "rate_limited")
    assert error["details"]["scope"] == "endpoint" and error["retryable"] is True
    check_429_headers(refused, SKEPTIC_LIMIT)
    # other routes are not limited by the /v1/skeptic budget
    assert auth_client.get("/v1/epochs", headers=headers).status_code == 200
    after = metric_value(
        auth_client.get("/metrics").text,
        "stemedb_rate_limited_total",
        path="/v1/skeptic",
        scope="endpoint",
    )
    assert after == before + 1
    wait_for_new_window()
    again = auth_client.get("/v1/skeptic", params=SKEPTIC, headers=headers)
    assert again.status_code == 200, again.text


def test_endpoint_limit_is_per_caller(auth_client: httpx.Client) -> None:
    first = {"x-api-key": create_key(auth_client, "reader")["secret"]}
    second = {"x-api-key": create_key(auth_client, "reader")["secret"]}
    for _ in range(SKEPTIC_LIMIT):
        auth_client.get("/v1/skeptic", params=SKEPTIC, headers=first)
    assert auth_client.get("/v1/skeptic", params=SKEPTIC, headers=first).status_code == 429
    assert auth_client.get("/v1/skeptic", params=SKEPTIC, headers=second).status_code == 200


def test_key_override_limits_one_key_until_it_is_removed(auth_client: httpx.Client) -> None:
    key = create_key(auth_client, "reader")
    headers = {"x-api-key": key["secret"]}
    # counted under the default limit first: the override must apply from the next request
    assert auth_client.get("/v1/epochs", headers=headers).status_code == 200
    set_ = auth_client.post(
        "/v1/admin/rate-limit",
        json={"api_key_id": key["id"], "max_requests_per_min": 2},
        headers=admin_headers(),
    )
    assert set_.status_code == 200, set_.text
    assert set_.json()["scope"] == "key" and set_.json()["api_key_id"] == key["id"]
    listed = auth_client.get("/v1/admin/rate-limit", headers=admin_headers()).json()
    assert any(
        o["api_key_id"] == key["id"] and o["max_requests_per_min"] == 2 for o in listed["overrides"]
    )
    codes = [auth_client.get("/v1/epochs", headers=headers).status_code for _ in range(3)]
    assert codes[:2] == [200, 200]
    refused = auth_client.get("/v1/epochs", headers=headers)
    assert_envelope(refused, 429, "RateLimitError", "rate_limited")
    assert refused.json()["error"]["details"]["scope"] == "key"
    check_429_headers(refused, 2)
    deleted = auth_client.delete(f"/v1/admin/rate-limit/{key['id']}", headers=admin_headers())
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert auth_client.get("/v1/epochs", headers=headers).status_code == 200
    missing = auth_client.delete(f"/v1/admin/rate-limit/{key['id']}", headers=admin_headers())
    assert_envelope(missing, 404, "NotFoundError", "override_not_found")


def test_agent_override_limits_the_first_signer_of_writes(
    auth_client: httpx.Client, writer_key: str
) -> None:
    agent = fresh_agent()
    set_ = auth_client.post(
        "/v1/admin/rate-limit",
        json={"agent_id": agent.agent_id, "max_requests_per_min": 2},
        headers=admin_headers(),
    )
    assert set_.status_code == 200, set_.text
    headers = {"x-api-key": writer_key}
    for index in range(2):
        record = sign_assertion(
            agent, subject="test/agent-rate", predicate="p", object=index, confidence=0.5
        )
        assert send(auth_client, "/v1/assert", record, headers).status_code == 201
    record = sign_assertion(
        agent, subject="test/agent-rate", predicate="p", object=9, confidence=0.5
    )
    refused = send(auth_client, "/v1/assert", record, headers)
    assert_envelope(refused, 429, "RateLimitError", "rate_limited")
    assert refused.json()["error"]["details"]["scope"] == "agent"
    check_429_headers(refused, 2)
    # the same agent reading (X-Agent-Id) is in the same budget
    read = auth_client.get("/v1/epochs", headers={**headers, "x-agent-id": agent.agent_id})
    assert read.status_code == 429
    auth_client.delete(f"/v1/admin/rate-limit/{agent.agent_id}", headers=admin_headers())


def test_override_body_is_validated(auth_client: httpx.Client) -> None:
    for body in (
        {"max_requests_per_min": 5},
        {"agent_id": "a" * 64, "api_key_id": "k", "max_requests_per_min": 5},
        {"agent_id": "nothex", "max_requests_per_min": 5},
        {"agent_id": "a" * 64, "max_requests_per_min": 0},
    ):
        response = auth_client.post("/v1/admin/rate-limit", json=body, headers=admin_headers())
        assert_envelope(response, 400, "ValidationError")


def test_health_ready_and_metrics_are_never_limited(auth_client: httpx.Client) -> None:
    for _ in range(3 * SKEPTIC_LIMIT):
        for path in ("/health", "/v1/health", "/ready", "/metrics"):
            response = auth_client.get(path)
            assert response.status_code == 200
            assert "x-ratelimit-limit" not in response.headers


# -- Redis ---------------------------------------------------------------------------


def test_redis_storage_is_shared_by_two_servers(tmp_path: Path, redis_url: str) -> None:
    env = {
        **AUTH_ENV,
        "STEMEDB_RATE_LIMIT_STORAGE": redis_url,
        "STEMEDB_RATE_LIMIT_WINDOW_SECONDS": "60",
    }
    if importlib.util.find_spec("redis") is None:
        code, log = start_refused(tmp_path / "data", **env)
        assert code != 0
        assert "needs the redis Python package" in log
        pytest.skip("the redis Python package is not installed: start-up refusal checked")
    one = ServerProcess(tmp_path / "one", tmp_path / "one.log", **env)
    two = ServerProcess(tmp_path / "two", tmp_path / "two.log", **env)
    try:
        headers = {"x-api-key": ROOT_KEY}
        codes = []
        for index in range(SKEPTIC_LIMIT + 1):
            server = one if index % 2 == 0 else two
            codes.append(
                httpx.get(
                    server.url + "/v1/skeptic", params=SKEPTIC, headers=headers, timeout=30
                ).status_code
            )
        assert codes == [200] * SKEPTIC_LIMIT + [429]
    finally:
        one.stop()
        two.stop()
