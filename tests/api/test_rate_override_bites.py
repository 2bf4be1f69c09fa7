"""An admin rate-limit override bites while ``rate_limit.enabled`` is false (issue 17
item 2): on reads of an agent (``X-Agent-Id``, a route that had no guard until the
override existed) and on an API key, with 429 + ``Retry-After``; nobody else is limited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.server import ServerProcess

ROOT_KEY = "root-override-key-" + "7a" * 16
AGENT = "c" * 64
OTHER = "d" * 64
LIMIT = 3


@pytest.fixture
def open_node(tmp_path: Path) -> Iterator[ServerProcess]:
    node = ServerProcess(tmp_path / "data", tmp_path / "log", isolated=True)
    yield node
    node.stop()


def reads_until_refused(client: httpx.Client, headers: dict[str, str]) -> list[httpx.Response]:
    answers = []
    for _ in range(3 * LIMIT):  # a window may end in between: at most two windows
        answers.append(client.get("/v1/subjects", headers=headers))
        if answers[-1].status_code != 200:
            break
    return answers


def test_agent_override_limits_reads_with_the_global_switch_off(open_node: ServerProcess) -> None:
    with open_node.client() as client:
        answer = client.post(
            "/v1/admin/rate-limit", json={"agent_id": AGENT, "max_requests_per_min": LIMIT}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["enforced"] is True and body["effective_max_requests_per_min"] == LIMIT
        assert "rate_limit.enabled is false" in body["message"]
        answers = reads_until_refused(client, {"X-Agent-Id": AGENT})
        refused = answers[-1]
        assert refused.status_code == 429, [a.status_code for a in answers]
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["x-ratelimit-limit"] == str(LIMIT)
        assert refused.json()["error"]["details"]["scope"] == "agent"
        for _ in range(3 * LIMIT):
            assert client.get("/v1/subjects", headers={"X-Agent-Id": OTHER}).status_code == 200
        detail = client.get(f"/v1/agents/{AGENT}").json()
        assert detail["rate_limit_per_minute"] == LIMIT


def test_key_override_limits_a_key_with_the_global_switch_off(tmp_path: Path) -> None:
    node = ServerProcess(
        tmp_path / "data",
        tmp_path / "log",
        isolated=True,
        STEMEDB_AUTH_ENABLED="true",
        STEMEDB_ROOT_API_KEY=ROOT_KEY,
    )
    try:
        with node.client() as client:
            admin = {"X-API-Key": ROOT_KEY}
            key = client.post(
                "/v1/admin/api-keys", json={"name": "noisy", "role": "reader"}, headers=admin
            ).json()
            answer = client.post(
                "/v1/admin/rate-limit",
                json={"api_key_id": key["id"], "max_requests_per_min": LIMIT},
                headers=admin,
            )
            assert answer.status_code == 200, answer.text
            answers = reads_until_refused(client, {"X-API-Key": key["secret"]})
            assert answers[-1].status_code == 429, [a.status_code for a in answers]
            assert answers[-1].json()["error"]["details"]["scope"] == "key"
            for _ in range(3 * LIMIT):  # the admin key has no override: not limited
                assert client.get("/v1/subjects", headers=admin).status_code == 200
    finally:
        node.stop()
