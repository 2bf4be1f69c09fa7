"""The noisy-agent runbook's commands work verbatim, and its limit bites.

``docs/operations/runbooks/noisy-agent.md``: its ```` ```bash runbook id=NAME ````
blocks run in bash (``setup`` first, every time) against a real node with the default
configuration (API keys off, ``rate_limit.enabled = false``) and one agent writing far
more than another. The step that limits the agent must then hold: its next writes beyond
the limit get ``429`` with ``Retry-After``, the other agent's do not. (Before issue 17 the
same step answered 200 and changed nothing while the global switch was off.) The same
check is applied to the output the runbook documents.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator

import httpx
import msgspec
import pytest
from deploy_helpers import RUNBOOKS, Node
from test_runbooks import blocks as runbook_blocks
from test_runbooks import run_bash

from stemedb.model.signing import AgentKey, sign_assertion

NOISY_AGENT = RUNBOOKS / "noisy-agent.md"
NOISY = AgentKey.from_seed(b"\x61" * 32)
QUIET = AgentKey.from_seed(b"\x62" * 32)
NOISY_WRITES = 40
LIMIT = 60  # the runbook's max_requests_per_min
HEX64 = r"[0-9a-f]{64}"


def blocks() -> tuple[dict[str, str], dict[str, str]]:
    return runbook_blocks(NOISY_AGENT)


def check_top_agents(out: str) -> None:
    lines = out.splitlines()
    assert lines, out
    counts = []
    for line in lines:
        m = re.fullmatch(rf"([0-9][0-9.e+]*) ({HEX64}|_other)", line)
        assert m, line
        counts.append(float(m[1]))
    assert counts == sorted(counts, reverse=True) and counts[0] > 0, out


def check_limit_agent(out: str) -> None:
    assert re.fullmatch(
        rf"agent {HEX64} is limited to {LIMIT} requests per \d+ s from now on; .+\n", out
    ), out


def check_check_limit(out: str) -> None:
    override, *counted = out.splitlines()
    assert re.fullmatch(rf"agent {HEX64} {LIMIT}/\d+s enforced=true", override), out
    for line in counted:
        assert re.fullmatch(
            r'stemedb_rate_limited_total\{path="[^"]+",scope="agent"\} [0-9.e+]+', line
        ), line


CHECKS = {
    "top-agents": check_top_agents,
    "limit-agent": check_limit_agent,
    "check-limit": check_check_limit,
}


def test_every_step_has_a_check_and_a_documented_output() -> None:
    commands, outputs = blocks()
    assert set(commands) == {"setup", *CHECKS}
    assert set(outputs) == set(CHECKS)


@pytest.mark.parametrize("step", sorted(CHECKS))
def test_documented_output_passes_the_check(step: str) -> None:
    _, outputs = blocks()
    CHECKS[step](outputs[step])


def write(client: httpx.Client, key: AgentKey, i: int) -> httpx.Response:
    # the subject names the agent: an assertion's ID leaves its signer out, so the same
    # claim from both agents in the same second would be one record (200, not 201)
    subject = f"{key.agent_id[:8]}/{i}"
    record = sign_assertion(key, subject=subject, predicate="p", object=i, confidence=0.5)
    return client.post(
        "/v1/assert",
        content=msgspec.json.encode(record),
        headers={"content-type": "application/json"},
    )


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    base = tmp_path_factory.mktemp("noisy")
    node = Node(base / "data", base / "server.log")
    try:
        yield node
    finally:
        node.stop()


def run_step(name: str, node: Node, env: dict[str, str]) -> str:
    commands, _ = blocks()
    environ = {**os.environ, "STEMEDB_URL": node.url, "STEMEDB_API_KEY": "", **env}
    return run_bash(name, commands["setup"] + commands[name], environ)


def test_the_runbook_limits_the_noisy_agent_with_the_global_switch_off(node: Node) -> None:
    with node.client() as client:
        for i in range(NOISY_WRITES):
            assert write(client, NOISY, i).status_code == 201
        assert write(client, QUIET, 0).status_code == 201
        assert client.get("/v1/admin/rate-limit").json()["enabled"] is False

        top = run_step("top-agents", node, {})
        check_top_agents(top)
        agent = top.splitlines()[0].split()[1]
        assert agent == NOISY.agent_id, top

        check_limit_agent(run_step("limit-agent", node, {"AGENT": agent}))

        # at most LIMIT more per window (a window may end while this runs: 2 windows)
        statuses = []
        for i in range(2 * LIMIT + 1):
            refused = write(client, NOISY, NOISY_WRITES + i)
            statuses.append(refused.status_code)
            if refused.status_code != 201:
                break
        assert refused.status_code == 429, statuses
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        error = refused.json()["error"]
        assert error["type"] == "RateLimitError" and error["details"]["scope"] == "agent"
        assert error["details"]["limit"] == LIMIT
        assert statuses.count(201) <= 2 * LIMIT
        # nobody else is limited
        for i in range(5):
            assert write(client, QUIET, 1 + i).status_code == 201

        checked = run_step("check-limit", node, {"AGENT": agent})
        check_check_limit(checked)
        assert 'path="/v1/assert",scope="agent"' in checked

        listed = client.get("/v1/admin/rate-limit").json()["overrides"]
        assert [(o["agent_id"], o["effective_max_requests_per_min"]) for o in listed] == [
            (agent, LIMIT)
        ]
        deleted = client.delete(f"/v1/admin/rate-limit/{agent}")
        assert deleted.status_code == 200, deleted.text
        assert write(client, NOISY, 20_000).status_code == 201
        assert json.loads(client.get(f"/v1/agents/{agent}").text)["rate_limit_per_minute"] is None
