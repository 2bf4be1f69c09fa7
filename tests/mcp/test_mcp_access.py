"""``/mcp`` is behind the same keys, roles, limits and audit as ``/v1``, and checks
``Origin`` as the MCP spec requires: each refusal tested through the SDK's client and,
where the refusal is HTTP's, on the wire."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from mcp_harness import (
    ROOT_KEY,
    SKEPTIC_LIMIT,
    McpServer,
    http_session,
    new_subject,
    structured,
    tool_error,
)

pytestmark = pytest.mark.anyio
LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
MCP_HEADERS = {"accept": "application/json, text/event-stream"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def post_mcp(server: McpServer, **headers: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        return http.post("/mcp", json=LIST_TOOLS, headers={**MCP_HEADERS, **headers})


def claim(subject: str) -> dict[str, Any]:
    return {"subject": subject, "predicate": "risk", "value": "rare", "confidence": 0.5}


def test_no_api_key_is_refused_with_401_when_auth_is_on(mcp_server: McpServer) -> None:
    answer = post_mcp(mcp_server)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "missing_api_key"
    wrong = post_mcp(mcp_server, **{"x-api-key": "stm_not-a-key"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"


async def test_the_sdk_client_without_a_key_cannot_open_a_session(mcp_server: McpServer) -> None:
    with pytest.raises(Exception) as caught:
        async with http_session(mcp_server.url, None) as client:
            await client.list_tools()
    assert "MCPError" in repr(caught.value)  # the 401 itself: the test above


def test_a_foreign_origin_is_refused_with_403_and_a_configured_one_served(
    mcp_server: McpServer, writer: dict[str, Any]
) -> None:
    key = {"x-api-key": writer["secret"]}
    foreign = post_mcp(mcp_server, origin="https://evil.example", **key)
    assert foreign.status_code == 403, foreign.text
    assert foreign.json()["error"]["code"] == "origin_not_allowed"
    rebinding = post_mcp(mcp_server, origin=mcp_server.url, **key)  # DNS rebinding looks so
    assert rebinding.status_code == 403
    allowed = post_mcp(mcp_server, origin="https://agents.example", **key)
    assert allowed.status_code == 200, allowed.text
    assert {t["name"] for t in allowed.json()["result"]["tools"]} >= {"query", "assert_claim"}
    absent = post_mcp(mcp_server, **key)
    assert absent.status_code == 200


async def test_a_reader_key_is_refused_assert_claim_and_may_read(
    mcp_server: McpServer, reader: dict[str, Any]
) -> None:
    subject = new_subject()
    async with http_session(mcp_server.url, reader["secret"]) as client:
        refused = tool_error(await client.call_tool("assert_claim", claim(subject)))
        vote = tool_error(await client.call_tool("vote", {"claim_id": "ab" * 32}))
        read = structured(
            await client.call_tool("query", {"subject": subject, "predicate": "risk"})
        )
    assert refused["type"] == "AuthorizationError" and refused["status"] == 403
    assert refused["code"] == "insufficient_role"
    assert vote["code"] == "insufficient_role"
    assert read["claims"] == [] and read["winner"] is None


async def test_without_a_custodial_key_writes_are_refused_unsigned_never_sent(
    mcp_server: McpServer,
) -> None:
    bare = mcp_server.api_key("writer", custodial=False)
    async with http_session(mcp_server.url, bare["secret"]) as client:
        refused = tool_error(await client.call_tool("assert_claim", claim(new_subject())))
    assert refused["code"] == "no_signing_key"
    assert "/v1/admin/custodial-keys" in refused["message"]


async def test_a_revoked_custodial_key_signs_no_more_and_old_claims_still_trace_to_it(
    mcp_server: McpServer,
) -> None:
    key = mcp_server.api_key("writer", custodial=True)
    async with http_session(mcp_server.url, key["secret"]) as client:
        written = structured(await client.call_tool("assert_claim", claim(new_subject())))
        revoked = mcp_server.admin.delete(f"/v1/admin/custodial-keys/{key['custodial']}")
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["usable"] is False
        refused = tool_error(await client.call_tool("assert_claim", claim(new_subject())))
        trace = structured(await client.call_tool("trace", {"id": written["id"]}))
    assert refused["code"] == "no_signing_key"
    (signer,) = trace["signers"]
    assert signer["custodial"] is True and signer["custodial_api_key_id"] == key["id"]
    listed = mcp_server.admin.get("/v1/admin/custodial-keys").json()["keys"]
    (row,) = [k for k in listed if k["agent_id"] == key["custodial"]]
    assert row["revoked_at"] is not None and row["api_key_id"] == key["id"]
    again = mcp_server.admin.post("/v1/admin/custodial-keys", json={"api_key_id": key["id"]})
    assert again.status_code == 201 and again.json()["agent_id"] != key["custodial"]


def test_one_usable_custodial_key_per_api_key_and_admin_only(
    mcp_server: McpServer, writer: dict[str, Any]
) -> None:
    twice = mcp_server.admin.post("/v1/admin/custodial-keys", json={"api_key_id": writer["id"]})
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "custodial_key_exists"
    unknown = mcp_server.admin.post("/v1/admin/custodial-keys", json={"api_key_id": "nope"})
    assert unknown.status_code == 404
    with httpx.Client(base_url=mcp_server.url) as http:
        not_admin = http.post(
            "/v1/admin/custodial-keys",
            json={"api_key_id": writer["id"]},
            headers={"x-api-key": writer["secret"]},
        )
    assert not_admin.status_code == 403
    assert ROOT_KEY not in mcp_server.admin.get("/v1/admin/custodial-keys").text


async def test_tool_calls_are_rate_limited_and_audited_like_v1_requests(
    mcp_server: McpServer,
) -> None:
    key = mcp_server.api_key("writer", custodial=True)
    subject = new_subject()
    async with http_session(mcp_server.url, key["secret"]) as client:
        answer = structured(
            await client.call_tool("query", {"subject": subject, "predicate": "risk"})
        )
        results = [
            await client.call_tool("skeptic", {"subject": subject, "predicate": "risk"})
            for _ in range(SKEPTIC_LIMIT + 1)
        ]
    assert all(not r.is_error for r in results[:SKEPTIC_LIMIT])
    limited = tool_error(results[-1])
    assert limited["type"] == "RateLimitError" and limited["status"] == 429
    assert limited["retry_after_seconds"] > 0
    assert answer["query_id"] in audited_query_ids(mcp_server, key["custodial"])


def audited_query_ids(mcp_server: McpServer, agent_id: str) -> set[str]:
    """The audited queries of ``agent_id``, once the HTTP worker that served them has
    flushed its audit buffer (every 0.5 s; the listing may be served by the other one)."""
    deadline = time.monotonic() + 10.0
    while True:
        audit = mcp_server.admin.get("/v1/audit/queries", params={"agent_id": agent_id})
        assert audit.status_code == 200, audit.text
        ids = {q["query_id"] for q in audit.json()["queries"]}
        if ids or time.monotonic() > deadline:
            return ids
        time.sleep(0.1)
