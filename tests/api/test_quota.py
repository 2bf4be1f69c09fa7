"""Per-agent token quotas against a real server: costs, X-Quota-* headers, 429
QuotaError, the agent view."""

from __future__ import annotations

import time

import httpx
from api_helpers import assert_envelope
from auth_server import *  # noqa: F403  (fixtures)
from auth_server import QUOTA_TOKENS, admin_headers, fresh_agent, send

from stemedb.model.signing import AgentKey, sign_assertion, sign_vote


def _assert(agent: AgentKey, value: object) -> object:
    return sign_assertion(agent, subject="test/quota", predicate="p", object=value, confidence=0.5)


def remaining(response: httpx.Response) -> int:
    return int(response.headers["x-quota-remaining"])


def test_assertions_cost_ten_until_the_quota_is_used_up(
    auth_client: httpx.Client, writer_key: str
) -> None:
    agent = fresh_agent()
    headers = {"x-api-key": writer_key}
    for index in range(QUOTA_TOKENS // 10):
        ok = send(auth_client, "/v1/assert", _assert(agent, index), headers)
        assert ok.status_code == 201, ok.text
        assert ok.headers["x-quota-limit"] == str(QUOTA_TOKENS)
        assert remaining(ok) == QUOTA_TOKENS - 10 * (index + 1)
        reset = int(ok.headers["x-quota-reset"])
        assert time.time() < reset <= time.time() + 3601
    refused = send(auth_client, "/v1/assert", _assert(agent, "over"), headers)
    error = assert_envelope(refused, 429, "QuotaError", "quota_exceeded")
    assert error["retryable"] is True and error["details"]["limit"] == QUOTA_TOKENS
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-quota-remaining"] == "0"
    metrics = auth_client.get("/metrics").text
    assert 'stemedb_rate_limited_total{path="/v1/assert",scope="quota"}' in metrics
    # another agent has its own budget
    other = send(auth_client, "/v1/assert", _assert(fresh_agent(), "other"), headers)
    assert other.status_code == 201


def test_costs_of_queries_votes_and_body_size(auth_client: httpx.Client, writer_key: str) -> None:
    agent = fresh_agent()
    headers = {"x-api-key": writer_key}
    reader = {**headers, "x-agent-id": agent.agent_id}
    query = auth_client.get("/v1/query", params={"subject": "s", "predicate": "p"}, headers=reader)
    assert query.status_code == 200 and remaining(query) == QUOTA_TOKENS - 6  # 5 + 1 lens
    batch = auth_client.post(
        "/v1/query", json={"queries": [{"subject": "s", "predicate": "p"}] * 3}, headers=reader
    )
    assert batch.status_code == 200, batch.text
    assert remaining(batch) == QUOTA_TOKENS - 6 - 8  # 5 + 3 queries
    made = send(auth_client, "/v1/assert", _assert(agent, "x" * 2100), headers)
    assert made.status_code == 201, made.text
    assert remaining(made) == QUOTA_TOKENS - 14 - 12  # 10 + 2 whole KiB of body
    vote = sign_vote(agent, assertion_id=made.json()["id"], weight=1.0)
    voted = send(auth_client, "/v1/vote", vote, headers)
    assert voted.status_code == 201, voted.text
    assert remaining(voted) == QUOTA_TOKENS - 26 - 1


def test_requests_without_an_agent_have_no_quota_headers(
    auth_client: httpx.Client, writer_key: str
) -> None:
    response = auth_client.get("/v1/epochs", headers={"x-api-key": writer_key})
    assert response.status_code == 200
    assert "x-quota-limit" not in response.headers


def test_agent_view_shows_quota_rate_limit_and_breaker(
    auth_client: httpx.Client, writer_key: str
) -> None:
    agent = fresh_agent()
    send(auth_client, "/v1/assert", _assert(agent, 1), {"x-api-key": writer_key})
    info = auth_client.get(f"/v1/agents/{agent.agent_id}", headers=admin_headers()).json()
    assert info["agent_id"] == agent.agent_id
    assert info["quota"]["tokens_per_hour"] == QUOTA_TOKENS
    assert info["quota"]["remaining"] == QUOTA_TOKENS - 10
    assert info["quota"]["reset_at"] > time.time()
    assert info["rate_limit_per_minute"] == 100000
    assert info["breaker"]["state"] == "closed"
    assert {"trust", "counts"} <= set(info)
