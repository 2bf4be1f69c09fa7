"""The session an agent host runs, with the SDK's own client over both transports,
against a node of its own: search for semaglutide, query the top hit through two lenses
that disagree, assert a claim, and see in ``trace`` who signed it — the API key's
custodial key over Streamable HTTP, the agent's own key file over stdio."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_harness import McpServer, http_session, start_node, stdio_session, structured

from stemedb.client import AgentKey
from stemedb.client import Client as Sdk

pytestmark = pytest.mark.anyio
SUBJECT = "drugs/semaglutide"
PREDICATE = "gastroparesis_risk"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpServer]:
    """A node holding the semaglutide question (two agents said "rare" days ago, a third
    says "common" now, more sure) and one about another drug, for the search to pass over."""
    server = start_node(tmp_path_factory.mktemp("stemedb-mcp-session"))
    seeder = server.api_key("writer", custodial=False)
    for seed, value, confidence, age_days in ((1, "rare", 0.6, 2), (2, "rare", 0.6, 1)):
        with Sdk(
            server.url, key=AgentKey.from_seed(bytes([seed]) * 32), api_key=seeder["secret"]
        ) as db:
            db.assert_(SUBJECT, PREDICATE, value, confidence, timestamp=now() - age_days * 86400)
    with Sdk(server.url, key=AgentKey.from_seed(b"\x03" * 32), api_key=seeder["secret"]) as db:
        db.assert_(SUBJECT, PREDICATE, "common", 0.9)
        db.assert_("drugs/metformin", "lactic_acidosis_risk", "rare", 0.8)
    yield server
    server.stop()


def now() -> int:
    return int(time.time())


def local_agent(directory: Path) -> tuple[AgentKey, Path]:
    """An agent of the host's own, and its key file (what `stemedb mcp` signs with)."""
    agent = AgentKey.generate()
    agent.save(directory / "agent.key")
    return agent, directory / "agent.key"


async def ask_and_assert(client: Client, value: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The session's steps (search, two lenses on the top hit, a write, its trace); the
    written claim and its trace."""
    tools = {tool.name for tool in (await client.list_tools()).tools}
    assert {"search", "query", "assert_claim", "trace"} <= tools
    hits = structured(await client.call_tool("search", {"q": "semaglutide"}))["hits"]
    assert hits, "the search found nothing"
    top = hits[0]
    assert (top["subject"], top["predicate"]) == (SUBJECT, PREDICATE) and top["claims"] >= 3
    assert all(hit["subject"] != "drugs/metformin" for hit in hits)
    question = {"subject": top["subject"], "predicate": top["predicate"]}
    consensus = structured(await client.call_tool("query", {**question, "lens": "consensus"}))
    recency = structured(await client.call_tool("query", {**question, "lens": "recency"}))
    assert consensus["winner"]["value"] == "rare"  # two agents agree
    newest = max(recency["claims"], key=lambda c: c["timestamp"])
    assert recency["winner"]["value"] == newest["value"] != "rare"  # the newest claim
    assert consensus["conflict_score"] > 0
    written = structured(
        await client.call_tool(
            "assert_claim",
            {"subject": SUBJECT, "predicate": PREDICATE, "value": value, "confidence": 0.7},
        )
    )
    trace = structured(await client.call_tool("trace", {"id": written["id"]}))
    assert trace["id"] == written["id"] and trace["value"] == value
    return written, trace


async def test_over_streamable_http_the_claim_is_signed_by_the_api_keys_custodial_key(
    node: McpServer,
) -> None:
    key = node.api_key("writer", custodial=True)
    async with http_session(node.url, key["secret"]) as client:
        written, trace = await ask_and_assert(client, "uncommon")
    assert written["custodial"] is True and written["agent_id"] == key["custodial"]
    (signer,) = trace["signers"]
    assert signer["agent_id"] == key["custodial"] and signer["custodial"] is True
    assert signer["custodial_api_key_id"] == key["id"]
    assert signer["custodial_api_key_name"] == key["name"]


async def test_over_stdio_the_claim_is_signed_by_the_local_key_file(
    node: McpServer, tmp_path: Path
) -> None:
    key = node.api_key("writer", custodial=False)
    agent, key_file = local_agent(tmp_path)
    async with stdio_session(node.url, key["secret"], key_file) as client:
        written, trace = await ask_and_assert(client, "unknown")
    assert written["custodial"] is False and written["agent_id"] == agent.agent_id
    (signer,) = trace["signers"]
    assert signer == {
        "agent_id": agent.agent_id,
        "signed_at": signer["signed_at"],
        "custodial": False,
        "custodial_api_key_id": None,
        "custodial_api_key_name": None,
    }


async def test_over_stdio_vote_skeptic_and_a_real_retraction_of_the_agents_own_source(
    node: McpServer, tmp_path: Path
) -> None:
    key = node.api_key("writer", custodial=False)
    agent, key_file = local_agent(tmp_path)
    subject = f"drugs/semaglutide-{agent.agent_id[:8]}"
    content = f"a trial report {agent.agent_id}"
    with Sdk(node.url, key=agent, api_key=key["secret"]) as db:
        source = db.register_source("https://trials.example/1", content, title="A trial")
    source_hash = hashlib.sha256(content.encode()).hexdigest()
    assert source.status == "created"
    question = {"subject": subject, "predicate": PREDICATE}
    async with stdio_session(node.url, key["secret"], key_file) as client:
        cited = structured(
            await client.call_tool(
                "assert_claim",
                {**question, "value": "rare", "confidence": 0.9, "source_hash": source_hash},
            )
        )
        other = structured(
            await client.call_tool(
                "assert_claim", {**question, "value": "common", "confidence": 0.2}
            )
        )
        vote = structured(await client.call_tool("vote", {"claim_id": other["id"]}))
        doubt = structured(await client.call_tool("skeptic", question))
        preview = structured(
            await client.call_tool(
                "retract_source", {"source_hash": source_hash, "reason": "fabricated data"}
            )
        )
        done = structured(
            await client.call_tool(
                "retract_source",
                {"source_hash": source_hash, "reason": "fabricated data", "dry_run": False},
            )
        )
        after = structured(await client.call_tool("query", question))
        trace = structured(await client.call_tool("trace", {"id": cited["id"]}))
    assert vote["status"] == "created" and vote["agent_id"] == agent.agent_id
    assert doubt["status"] != "unanimous" and {v["value"] for v in doubt["values"]} == {
        "rare",
        "common",
    }
    assert preview["may_retract"] is True and preview["dry_run"] is True
    assert [e["id"] for e in preview["excluded"]] == [cited["id"]]
    assert done["dry_run"] is False and done["retraction"]["agent_id"] == agent.agent_id
    assert done["retraction"]["custodial"] is False
    assert after["winner"]["id"] == other["id"]
    assert trace["source_retracted"] is True
