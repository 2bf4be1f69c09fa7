"""Reads over HTTP: every GET /v1/query parameter, paging, POST /v1/query, skeptic,
trace, audit and agents, against one small contested (subject, predicate)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from api_helpers import assert_envelope, now, post

from stemedb.model.signing import AgentKey, sign_assertion, sign_epoch

PREDICATE = "gastroparesis_risk"


class World:
    def __init__(self, subject: str, ids: dict[str, str], epoch: str, before: float) -> None:
        self.subject = subject
        self.ids = ids
        self.epoch = epoch
        self.before = before


@pytest.fixture(scope="module")
def world(server: Any, alice: AgentKey, bob: AgentKey, carol: AgentKey) -> World:
    subject = f"drugs/reads-{int(time.time() * 1000)}"
    t = now()
    before = time.time() - 1.0
    with httpx.Client(base_url=server.url) as client:
        epoch = sign_epoch(alice, name=f"e-{subject}")
        epoch_id = post(client, "/v1/epoch", epoch).json()["id"]
        records = {
            "old_clinical": sign_assertion(
                alice,
                subject=subject,
                predicate=PREDICATE,
                object="rare",
                confidence=0.9,
                timestamp=t - 1000,
                source_class="clinical",
                lifecycle="approved",
                valid_from=t - 5000,
                valid_to=t - 500,
            ),
            "new_anecdote": sign_assertion(
                bob,
                subject=subject,
                predicate=PREDICATE,
                object="common",
                confidence=0.6,
                timestamp=t - 10,
                source_class="anecdotal",
            ),
            "deprecated": sign_assertion(
                carol,
                subject=subject,
                predicate=PREDICATE,
                object="rare",
                confidence=0.7,
                timestamp=t - 50,
                lifecycle="deprecated",
            ),
            "in_epoch": sign_assertion(
                carol,
                subject=subject,
                predicate=PREDICATE,
                object="unknown",
                confidence=0.3,
                timestamp=t - 40,
                epoch=epoch_id,
            ),
            "other_predicate": sign_assertion(
                alice,
                subject=subject,
                predicate="dose",
                object=1.0,
                confidence=0.5,
                timestamp=t - 30,
            ),
        }
        ids = {}
        for name, record in records.items():
            response = post(client, "/v1/assert", record)
            assert response.status_code == 201, response.text
            ids[name] = response.json()["id"]
    return World(subject, ids, epoch_id, before)


def query(client: httpx.Client, world: World, **params: Any) -> dict[str, Any]:
    response = client.get(
        "/v1/query", params={"subject": world.subject, "predicate": PREDICATE, **params}
    )
    assert response.status_code == 200, response.text
    out: dict[str, Any] = response.json()
    return out


def claim_ids(answer: dict[str, Any]) -> set[str]:
    return {c["id"] for c in answer["claims"]}


def test_query_answer_has_the_documented_shape(client: httpx.Client, world: World) -> None:
    answer = query(client, world)
    for key in (
        "query_id",
        "subject",
        "predicate",
        "lens",
        "resolution",
        "claims",
        "source_warnings",
        "stale",
        "next_cursor",
    ):
        assert key in answer
    assert set(answer["resolution"]) >= {
        "winner",
        "resolution_confidence",
        "conflict_score",
        "candidates_count",
    }
    assert answer["lens"] == "consensus"
    assert all("weight" in c for c in answer["claims"])
    # default lifecycles hide the deprecated claim
    assert world.ids["deprecated"] not in claim_ids(answer)


@pytest.mark.parametrize(
    ("lens", "winner"),
    [("recency", "new_anecdote"), ("confidence", "old_clinical"), ("layered", "old_clinical")],
)
def test_lens_picks_its_winner(client: httpx.Client, world: World, lens: str, winner: str) -> None:
    answer = query(client, world, lens=lens)
    assert answer["lens"] == lens
    assert answer["resolution"]["winner"]["id"] == world.ids[winner]


@pytest.mark.parametrize("lens", ["consensus", "votes", "authority", "skeptic"])
def test_every_lens_answers(client: httpx.Client, world: World, lens: str) -> None:
    assert query(client, world, lens=lens)["lens"] == lens


def test_as_of_before_the_writes_sees_nothing(client: httpx.Client, world: World) -> None:
    answer = query(client, world, as_of=world.before)
    assert answer["claims"] == [] and answer["resolution"]["candidates_count"] == 0
    assert claim_ids(query(client, world, as_of=time.time() + 1))


def test_valid_at_filters_on_valid_time(client: httpx.Client, world: World) -> None:
    t = now()
    assert world.ids["old_clinical"] not in claim_ids(query(client, world, valid_at=t))
    assert world.ids["old_clinical"] in claim_ids(query(client, world, valid_at=t - 1000))


def test_since_keeps_newer_claims(client: httpx.Client, world: World) -> None:
    assert claim_ids(query(client, world, since=now() - 20)) == {world.ids["new_anecdote"]}


def test_lifecycle_is_comma_separated(client: httpx.Client, world: World) -> None:
    answer = query(client, world, lifecycle="deprecated")
    assert claim_ids(answer) == {world.ids["deprecated"]}
    both = query(client, world, lifecycle="deprecated,approved")
    assert claim_ids(both) == {world.ids["deprecated"], world.ids["old_clinical"]}


def test_epoch_filter(client: httpx.Client, world: World) -> None:
    assert claim_ids(query(client, world, epoch=world.epoch)) == {world.ids["in_epoch"]}


def test_source_class_is_comma_separated(client: httpx.Client, world: World) -> None:
    answer = query(client, world, source_class="clinical,anecdotal")
    assert claim_ids(answer) == {world.ids["old_clinical"], world.ids["new_anecdote"]}


def test_agent_id_filter(client: httpx.Client, world: World, bob: AgentKey) -> None:
    assert claim_ids(query(client, world, agent_id=bob.agent_id)) == {world.ids["new_anecdote"]}


def test_include_flags_and_staleness_are_accepted(client: httpx.Client, world: World) -> None:
    answer = query(client, world, include_retracted="true", include_superseded="false")
    assert len(answer["claims"]) == 3
    stale = query(client, world, max_stale_seconds=600)
    assert isinstance(stale["stale"], bool) and len(stale["claims"]) == 3


def test_limit_and_cursor_page_through_every_claim(client: httpx.Client, world: World) -> None:
    first = query(client, world, lens="confidence", limit=1)
    pages = [first]
    while pages[-1]["next_cursor"]:
        pages.append(
            query(client, world, lens="confidence", limit=1, cursor=pages[-1]["next_cursor"])
        )
    ids = [c["id"] for page in pages for c in page["claims"]]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert ids[0] == world.ids["old_clinical"]
    full = query(client, world, lens="confidence", limit=100)
    assert [c["id"] for c in full["claims"]] == ids and full["next_cursor"] is None


def test_cursor_of_another_query_is_refused(client: httpx.Client, world: World) -> None:
    cursor = query(client, world, lens="confidence", limit=1)["next_cursor"]
    response = client.get(
        "/v1/query",
        params={
            "subject": world.subject,
            "predicate": PREDICATE,
            "lens": "recency",
            "limit": 1,
            "cursor": cursor,
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_cursor"


def test_subject_prefix_groups_by_predicate(client: httpx.Client, world: World) -> None:
    response = client.get("/v1/query", params={"subject_prefix": world.subject})
    assert response.status_code == 200, response.text
    groups = response.json()["results"]
    assert {(g["subject"], g["predicate"]) for g in groups} == {
        (world.subject, PREDICATE),
        (world.subject, "dose"),
    }


def test_post_query_answers_many(client: httpx.Client, world: World) -> None:
    body = {
        "queries": [
            {"subject": world.subject, "predicate": PREDICATE, "lens": "recency"},
            {"subject": world.subject, "predicate": "dose", "lifecycle": ["proposed"]},
        ]
    }
    response = client.post("/v1/query", json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[0]["resolution"]["winner"]["id"] == world.ids["new_anecdote"]
    assert results[1]["resolution"]["winner"]["id"] == world.ids["other_predicate"]


def test_skeptic_shows_every_value(client: httpx.Client, world: World) -> None:
    response = client.get("/v1/skeptic", params={"subject": world.subject, "predicate": PREDICATE})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "contested"
    assert 0.0 < body["conflict_score"] <= 1.0
    values = {c["value"]["value"] for c in body["claims"]}
    assert values == {"rare", "common", "unknown"}
    assert abs(sum(c["support_share"] for c in body["claims"]) - 1.0) < 1e-9
    assert all("tier" in c for c in body["claims"])
    missing = client.get("/v1/skeptic", params={"subject": world.subject})
    assert missing.status_code == 400


def test_trace_walks_the_parent_chain(client: httpx.Client, world: World, alice: AgentKey) -> None:
    parent = world.ids["old_clinical"]
    child = sign_assertion(
        alice,
        subject=world.subject,
        predicate="revised",
        object="x",
        confidence=0.5,
        parent=parent,
    )
    child_id = post(client, "/v1/assert", child).json()["id"]
    trace = client.get(f"/v1/trace/{child_id}")
    assert trace.status_code == 200, trace.text
    body = trace.json()
    assert body["id"] == child_id
    assert [p["id"] for p in body["parents"]] == [parent]
    parent_trace = client.get(f"/v1/trace/{parent}").json()
    assert child_id in parent_trace["children"]


def test_audit_records_who_asked_what(client: httpx.Client, world: World, carol: AgentKey) -> None:
    started = time.time() - 1
    answer = client.get(
        "/v1/query",
        params={"subject": world.subject, "predicate": PREDICATE, "lens": "recency"},
        headers={"X-Agent-Id": carol.agent_id},
    ).json()
    query_id = answer["query_id"]
    one = client.get(f"/v1/audit/queries/{query_id}")
    assert one.status_code == 200, one.text
    record = one.json()
    assert record["agent_id"] == carol.agent_id and record["lens"] == "recency"
    assert record["subject"] == world.subject
    listed = client.get(
        "/v1/audit/queries",
        params={"agent_id": carol.agent_id, "from": started, "to": time.time() + 1, "limit": 50},
    )
    assert listed.status_code == 200, listed.text
    assert query_id in {q["query_id"] for q in listed.json()["queries"]}
    none = client.get("/v1/audit/queries", params={"to": started - 3600}).json()
    assert query_id not in {q["query_id"] for q in none["queries"]}
    assert len(client.get("/v1/audit/queries", params={"limit": 1}).json()["queries"]) <= 1
    assert client.get(f"/v1/audit/queries/{'f' * 32}").status_code == 404


def test_agent_info(client: httpx.Client, world: World, alice: AgentKey) -> None:
    info = client.get(f"/v1/agents/{alice.agent_id}").json()
    assert info["agent_id"] == alice.agent_id
    assert info["counts"]["assertions"] >= 2
    assert info["trust"] == 0.5


def test_min_lsn_reads_a_write_at_once_and_refuses_an_lsn_nobody_committed(
    client: httpx.Client, world: World, alice: AgentKey
) -> None:
    record = sign_assertion(
        alice, subject=world.subject, predicate="min_lsn_probe", object="x", confidence=0.5
    )
    written = post(client, "/v1/assert", record).json()
    lsn = written["lsn"]
    params = {"subject": world.subject, "predicate": "min_lsn_probe", "min_lsn": lsn}
    answer = client.get("/v1/query", params=params)
    assert answer.status_code == 200, answer.text
    assert [c["id"] for c in answer.json()["claims"]] == [written["id"]]
    for path in (f"/v1/assertions/{written['id']}", f"/v1/trace/{written['id']}"):
        assert client.get(path, params={"min_lsn": lsn}).status_code == 200
    batch = client.post("/v1/query", params={"min_lsn": lsn}, json={"queries": [params_of(params)]})
    assert batch.status_code == 200, batch.text
    future = client.get("/v1/query", params={**params, "min_lsn": lsn + 10**9})
    error = assert_envelope(future, 400, "ValidationError", "lsn_not_committed")
    assert error["details"]["field"] == "min_lsn"
    for bad in ("-1", "x"):
        refused = client.get("/v1/query", params={**params, "min_lsn": bad})
        assert_envelope(refused, 400, "ValidationError")


def params_of(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != "min_lsn"}
