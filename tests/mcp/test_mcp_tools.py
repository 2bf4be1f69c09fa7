"""Every tool end to end through ``/mcp`` with the SDK's client, against a served node
(two HTTP workers): the listing pinned by a golden file, each tool's answer checked
against what the ``/v1`` API says."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp_harness import McpServer, Mode, http_session, new_subject, structured, tool_error

from stemedb.client import AgentKey, Client
from stemedb.mcp.server import tool_definitions

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "mcp_tools.json"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def listing(tools: list[Any]) -> list[dict[str, Any]]:
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]


def test_the_tool_listing_is_the_golden_file() -> None:
    """A change of a tool's name, description, schema or annotations is a change of the
    contract with every MCP host: update tests/data/mcp_tools.json on purpose."""
    golden = json.loads(GOLDEN.read_text())
    assert listing(list(tool_definitions())) == golden


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_served_listing_is_the_golden_one_in_both_protocol_eras(
    mcp_server: McpServer, writer: dict[str, Any], mode: Mode
) -> None:
    async with http_session(mcp_server.url, writer["secret"], mode=mode) as client:
        served = (await client.list_tools()).tools
    assert listing(served) == json.loads(GOLDEN.read_text())
    by_name = {tool.name: tool for tool in served}
    assert len(by_name) <= 7
    for name in ("query", "skeptic", "trace"):
        annotations = by_name[name].annotations
        assert annotations is not None and annotations.read_only_hint is True
    retract = by_name["retract_source"].annotations
    assert retract is not None and retract.destructive_hint is True
    assert retract.read_only_hint is False
    assert by_name["retract_source"].input_schema["properties"]["dry_run"]["default"] is True
    for tool in served:
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"


async def test_assert_query_skeptic_vote_and_trace_agree_with_the_v1_api(
    mcp_server: McpServer, writer: dict[str, Any]
) -> None:
    subject = new_subject()
    async with http_session(mcp_server.url, writer["secret"]) as client:
        first = structured(
            await client.call_tool(
                "assert_claim",
                {"subject": subject, "predicate": "risk", "value": "rare", "confidence": 0.9},
            )
        )
        second = structured(
            await client.call_tool(
                "assert_claim",
                {"subject": subject, "predicate": "risk", "value": 3, "confidence": 0.4},
            )
        )
        answer = structured(
            await client.call_tool(
                "query", {"subject": subject, "predicate": "risk", "lens": "confidence"}
            )
        )
        doubt = structured(
            await client.call_tool("skeptic", {"subject": subject, "predicate": "risk"})
        )
        vote = structured(await client.call_tool("vote", {"claim_id": second["id"], "weight": 1.0}))
        by_votes = structured(
            await client.call_tool(
                "query", {"subject": subject, "predicate": "risk", "lens": "votes", "limit": 1}
            )
        )
        trace = structured(await client.call_tool("trace", {"id": first["id"]}))
    assert first["status"] == "created" and first["custodial"] is True
    assert first["agent_id"] == writer["custodial"]
    params = {"subject": subject, "predicate": "risk", "lens": "confidence"}
    with httpx.Client(base_url=mcp_server.url, headers={"x-api-key": writer["secret"]}) as api:
        v1 = api.get("/v1/query", params=params)
        v1_trace = api.get(f"/v1/trace/{first['id']}").json()
    assert v1.status_code == 200, v1.text
    assert answer["winner"]["id"] == v1.json()["resolution"]["winner"]["id"] == first["id"]
    assert {c["id"] for c in answer["claims"]} == {c["id"] for c in v1.json()["claims"]}
    assert all(c["signers"] == [writer["custodial"]] for c in answer["claims"])
    assert doubt["status"] == "contested" and len(doubt["values"]) == 2
    assert {v["value"] for v in doubt["values"]} == {"rare", 3}
    assert vote["status"] == "created" and vote["agent_id"] == writer["custodial"]
    assert by_votes["winner"]["id"] == second["id"]
    assert len(by_votes["claims"]) == 1 and by_votes["truncated"] is True
    assert trace["id"] == first["id"] and trace["subject"] == subject
    (signer,) = trace["signers"]
    assert signer == {
        "agent_id": writer["custodial"],
        "signed_at": signer["signed_at"],
        "custodial": True,
        "custodial_api_key_id": writer["id"],
        "custodial_api_key_name": writer["name"],
    }
    assert v1_trace["custodial_signers"][0]["api_key_id"] == writer["id"]


async def test_retract_source_is_a_dry_run_by_default_listing_what_the_cascade_excludes(
    mcp_server: McpServer, writer: dict[str, Any]
) -> None:
    """The dry run lists the citing claim and its revision, writes nothing, and says
    the custodial key may not retract a source another agent registered — which the
    real retraction then refuses (the stdio test retracts for real)."""
    subject = new_subject()
    content = f"a paper about {subject}"
    source = hashlib.sha256(content.encode()).hexdigest()
    with Client(mcp_server.url, key=AgentKey.generate(), api_key=writer["secret"]) as sdk:
        sdk.register_source(f"https://papers.example/{subject}", content, title="A paper")
    async with http_session(mcp_server.url, writer["secret"]) as client:
        cited = structured(
            await client.call_tool(
                "assert_claim",
                {
                    "subject": subject,
                    "predicate": "risk",
                    "value": "common",
                    "confidence": 0.8,
                    "source_hash": source,
                },
            )
        )
        revised = structured(
            await client.call_tool(
                "assert_claim",
                {
                    "subject": subject,
                    "predicate": "risk",
                    "value": "very common",
                    "confidence": 0.8,
                    "parent": cited["id"],
                },
            )
        )
        structured(
            await client.call_tool(
                "assert_claim",
                {"subject": subject, "predicate": "risk", "value": "rare", "confidence": 0.3},
            )
        )
        preview = structured(
            await client.call_tool(
                "retract_source", {"source_hash": source, "reason": "the paper was withdrawn"}
            )
        )
        after = structured(
            await client.call_tool("query", {"subject": subject, "predicate": "risk"})
        )
        refused = tool_error(
            await client.call_tool(
                "retract_source",
                {"source_hash": source, "reason": "the paper was withdrawn", "dry_run": False},
            )
        )
    assert preview["dry_run"] is True and preview["retraction"] is None
    assert preview["registered"] is True and preview["may_retract"] is False
    assert [(e["id"], e["kind"]) for e in preview["excluded"]] == [
        (cited["id"], "cites"),
        (revised["id"], "descends"),
    ]
    assert preview["excluded_count"] == 2 and not preview["truncated"]
    assert len(after["claims"]) == 3  # the dry run wrote nothing
    assert refused["code"] == "not_source_owner" and refused["status"] == 403


async def test_bad_arguments_are_a_tool_error_the_model_can_read(
    mcp_server: McpServer, writer: dict[str, Any]
) -> None:
    async with http_session(mcp_server.url, writer["secret"]) as client:
        unknown = tool_error(
            await client.call_tool("query", {"subject": "a", "predicate": "b", "lense": "recency"})
        )
        missing = tool_error(await client.call_tool("trace", {"id": "ab" * 32}))
    assert unknown["code"] == "invalid_arguments" and "lense" in unknown["message"]
    assert missing["type"] == "NotFoundError" and missing["status"] == 404


async def test_an_inexact_integer_value_is_refused_naming_it(
    mcp_server: McpServer, writer: dict[str, Any]
) -> None:
    """``2**53 + 1`` (no IEEE-754 double holds it) is a tool error naming the argument,
    not a claim silently stored as another number (issue 17); ``2**60`` is written."""
    subject = new_subject()
    async with http_session(mcp_server.url, writer["secret"]) as client:
        refused = tool_error(
            await client.call_tool(
                "assert_claim",
                {"subject": subject, "predicate": "count", "value": 2**53 + 1, "confidence": 0.5},
            )
        )
        written = structured(
            await client.call_tool(
                "assert_claim",
                {"subject": subject, "predicate": "count", "value": 2**60, "confidence": 0.5},
            )
        )
    assert refused["code"] == "invalid_field" and refused["status"] == 400
    assert refused["details"] == {"field": "value", "rule": "integer_out_of_range"}
    assert "9007199254740993" in refused["message"]
    answer = httpx.get(
        mcp_server.url + "/v1/query",
        params={"subject": subject, "predicate": "count"},
        headers={"x-api-key": writer["secret"]},
    ).json()
    assert [c["id"] for c in answer["claims"]] == [written["id"]]
    assert answer["claims"][0]["object"]["value"] == 2**60
