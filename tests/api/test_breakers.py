"""Per-agent circuit breakers against a real server: trip after repeated bad writes,
refuse, half-open, close or re-open; admin trip, reset and listing; the gauge."""

from __future__ import annotations

import time

import httpx
import msgspec
from api_helpers import assert_envelope
from auth_server import *  # noqa: F403  (fixtures)
from auth_server import (
    FAILURE_THRESHOLD,
    RESET_TIMEOUT_MS,
    admin_headers,
    fresh_agent,
    send,
)

from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey, sign_assertion


def good(agent: AgentKey, value: object) -> Assertion:
    return sign_assertion(
        agent, subject="test/breaker", predicate="p", object=value, confidence=0.5
    )


def bad_signature(agent: AgentKey) -> Assertion:
    return msgspec.structs.replace(good(agent, "forged"), confidence=0.9)


def open_gauge(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("stemedb_circuit_breakers_open "):
            return float(line.split()[1])
    raise AssertionError("stemedb_circuit_breakers_open is missing")


def trip_by_failures(client: httpx.Client, agent: AgentKey, headers: dict[str, str]) -> None:
    for _ in range(FAILURE_THRESHOLD):
        failed = send(client, "/v1/assert", bad_signature(agent), headers)
        assert_envelope(failed, 401, "AuthenticationError", "bad_signature")


def test_breaker_trips_refuses_half_opens_and_closes(
    auth_client: httpx.Client, writer_key: str
) -> None:
    agent = fresh_agent()
    headers = {"x-api-key": writer_key}
    trip_by_failures(auth_client, agent, headers)
    refused = send(auth_client, "/v1/assert", good(agent, 1), headers)
    error = assert_envelope(refused, 403, "AuthorizationError", "circuit_open")
    assert error["details"]["agent_id"] == agent.agent_id
    assert 1 <= int(refused.headers["retry-after"]) <= RESET_TIMEOUT_MS / 1000 + 1
    assert open_gauge(auth_client) >= 1
    view = auth_client.get(f"/v1/agents/{agent.agent_id}", headers=admin_headers()).json()
    assert view["breaker"]["state"] == "open"
    assert view["breaker"]["consecutive_failures"] == FAILURE_THRESHOLD
    listed = auth_client.get("/v1/admin/circuit-breakers", headers=admin_headers()).json()
    assert any(
        b["agent_id"] == agent.agent_id and b["tripped_by"] == "failures"
        for b in listed["breakers"]
    )
    time.sleep(RESET_TIMEOUT_MS / 1000 + 0.1)
    trial = send(auth_client, "/v1/assert", good(agent, 2), headers)  # half-open: one trial
    assert trial.status_code == 201, trial.text
    after = send(auth_client, "/v1/assert", good(agent, 3), headers)
    assert after.status_code == 201, after.text
    view = auth_client.get(f"/v1/agents/{agent.agent_id}", headers=admin_headers()).json()
    assert view["breaker"]["state"] == "closed"


def test_a_failed_trial_opens_the_breaker_again(auth_client: httpx.Client, writer_key: str) -> None:
    agent = fresh_agent()
    headers = {"x-api-key": writer_key}
    trip_by_failures(auth_client, agent, headers)
    time.sleep(RESET_TIMEOUT_MS / 1000 + 0.1)
    trial = send(auth_client, "/v1/assert", bad_signature(agent), headers)
    assert_envelope(trial, 401, "AuthenticationError", "bad_signature")
    again = send(auth_client, "/v1/assert", good(agent, 1), headers)
    assert_envelope(again, 403, "AuthorizationError", "circuit_open")


def test_validation_failures_count_and_a_success_resets_the_count(
    auth_client: httpx.Client, writer_key: str
) -> None:
    agent = fresh_agent()
    headers = {"x-api-key": writer_key}
    invalid = sign_assertion(agent, subject="test/breaker", predicate="p", object=1, confidence=1.5)
    for _ in range(FAILURE_THRESHOLD - 1):
        assert send(auth_client, "/v1/assert", invalid, headers).status_code == 400
    assert send(auth_client, "/v1/assert", good(agent, "ok"), headers).status_code == 201
    for _ in range(FAILURE_THRESHOLD - 1):
        assert send(auth_client, "/v1/assert", invalid, headers).status_code == 400
    assert send(auth_client, "/v1/assert", good(agent, "still ok"), headers).status_code == 201
    assert send(auth_client, "/v1/assert", invalid, headers).status_code == 400
    assert send(auth_client, "/v1/assert", invalid, headers).status_code == 400
    assert send(auth_client, "/v1/assert", invalid, headers).status_code == 400
    refused = send(auth_client, "/v1/assert", good(agent, "now refused"), headers)
    assert_envelope(refused, 403, "AuthorizationError", "circuit_open")


def test_admin_trip_holds_until_reset(auth_client: httpx.Client, writer_key: str) -> None:
    agent = fresh_agent()
    headers = {"x-api-key": writer_key}
    tripped = auth_client.post(
        "/v1/admin/circuit-breaker/trip",
        json={"agent_id": agent.agent_id, "reason": "abuse report #12"},
        headers=admin_headers(),
    )
    assert tripped.status_code == 200, tripped.text
    assert tripped.json()["state"] == "open" and tripped.json()["tripped_by"] == "admin"
    time.sleep(RESET_TIMEOUT_MS / 1000 + 0.1)  # an admin trip does not half-open by itself
    refused = send(auth_client, "/v1/assert", good(agent, 1), headers)
    error = assert_envelope(refused, 403, "AuthorizationError", "circuit_open")
    assert error["details"]["reason"] == "abuse report #12"
    listed = auth_client.get("/v1/admin/circuit-breakers", headers=admin_headers()).json()
    assert any(b["agent_id"] == agent.agent_id for b in listed["breakers"])
    reset = auth_client.post(
        "/v1/admin/circuit-breaker/reset",
        json={"agent_id": agent.agent_id},
        headers=admin_headers(),
    )
    assert reset.status_code == 200 and reset.json()["state"] == "closed"
    assert send(auth_client, "/v1/assert", good(agent, 2), headers).status_code == 201


def test_breaker_admin_bodies_are_validated(auth_client: httpx.Client) -> None:
    for path, body in (
        ("/v1/admin/circuit-breaker/trip", {"agent_id": "nothex"}),
        ("/v1/admin/circuit-breaker/trip", {"reason": "x"}),
        ("/v1/admin/circuit-breaker/reset", {"agent_id": "a" * 64, "extra": 1}),
    ):
        response = auth_client.post(path, json=body, headers=admin_headers())
        assert_envelope(response, 400, "ValidationError")
