"""Writes over HTTP: assertions, batches, co-signatures, votes, supersessions, epochs,
sources and retractions, each read back right after it is acknowledged."""

from __future__ import annotations

import hashlib
import uuid

import httpx
import msgspec
from api_helpers import MAX_BATCH, now, post

from stemedb.model.ids import record_id
from stemedb.model.signing import (
    AgentKey,
    cosign,
    sign_assertion,
    sign_epoch,
    sign_retraction,
    sign_source,
    sign_supersession,
    sign_vote,
)


def test_assert_is_created_then_exists_and_readable_at_once(
    client: httpx.Client, alice: AgentKey, subject: str
) -> None:
    record = sign_assertion(alice, subject=subject, predicate="p", object="x", confidence=0.9)
    first = post(client, "/v1/assert", record)
    assert first.status_code == 201, first.text
    body = first.json()
    assert set(body) == {"id", "lsn", "status"}
    assert body["status"] == "created" and body["id"] == record_id(record)
    assert first.headers["x-request-id"]

    # read-your-writes: visible to the very next query and the detail route
    answer = client.get("/v1/query", params={"subject": subject, "predicate": "p"}).json()
    assert answer["resolution"]["winner"]["id"] == body["id"]
    detail = client.get(f"/v1/assertions/{body['id']}").json()
    assert detail["id"] == body["id"] and detail["lsn"] == body["lsn"]
    assert detail["signatures"][0]["agent_id"] == alice.agent_id

    again = post(client, "/v1/assert", record)
    assert again.status_code == 200
    assert again.json() == {"id": body["id"], "lsn": body["lsn"], "status": "exists"}


def test_batch_gives_per_item_results_in_one_commit(
    client: httpx.Client, alice: AgentKey, subject: str
) -> None:
    good = [
        sign_assertion(alice, subject=subject, predicate="p", object=i, confidence=0.5)
        for i in range(3)
    ]
    bad_sig = msgspec.structs.replace(good[0], confidence=0.6)  # signature over other content
    items = [msgspec.to_builtins(r) for r in (*good, bad_sig)]
    items.append({"subject": subject, "nonsense": 1})
    response = client.post("/v1/assert/batch", json={"assertions": items})
    assert response.status_code == 207, response.text
    body = response.json()
    assert (body["created"], body["exists"], body["failed"]) == (3, 0, 2)
    results = body["results"]
    assert [r["status"] for r in results] == ["created"] * 3 + ["error", "error"]
    lsns = [r["lsn"] for r in results[:3]]
    assert lsns == list(range(lsns[0], lsns[0] + 3))
    assert results[3]["error"]["code"] == "bad_signature"
    assert results[4]["error"]["details"]["field"].startswith("assertions[4]")
    again = client.post("/v1/assert/batch", json={"assertions": items[:1]}).json()
    assert again["results"][0]["status"] == "exists"
    answer = client.get("/v1/query", params={"subject": subject, "predicate": "p"}).json()
    assert answer["resolution"]["candidates_count"] == 3


def test_batch_of_max_batch_items_is_accepted(
    client: httpx.Client, alice: AgentKey, subject: str
) -> None:
    items = [
        msgspec.to_builtins(
            sign_assertion(alice, subject=subject, predicate=f"p{i}", object=1, confidence=0.5)
        )
        for i in range(MAX_BATCH)
    ]
    response = client.post("/v1/assert/batch", json={"assertions": items})
    assert response.status_code == 207 and response.json()["created"] == MAX_BATCH


def test_cosignature_and_vote_show_in_detail(
    client: httpx.Client, alice: AgentKey, bob: AgentKey, subject: str
) -> None:
    record = sign_assertion(alice, subject=subject, predicate="p", object="x", confidence=0.9)
    aid = post(client, "/v1/assert", record).json()["id"]
    signature = cosign(bob, aid).signature
    response = post(client, f"/v1/assertions/{aid}/signatures", signature)
    assert response.status_code == 201, response.text
    assert post(client, f"/v1/assertions/{aid}/signatures", signature).status_code == 200
    vote = sign_vote(bob, assertion_id=aid, weight=0.7)
    assert post(client, "/v1/vote", vote).status_code == 201
    detail = client.get(f"/v1/assertions/{aid}").json()
    assert {s["agent_id"] for s in detail["signatures"]} == {alice.agent_id, bob.agent_id}
    assert detail["votes"]["count"] == 1 and detail["votes"]["weight"] == 0.7
    agent = client.get(f"/v1/agents/{bob.agent_id}").json()
    assert agent["agent_id"] == bob.agent_id
    assert agent["counts"]["cosignatures"] >= 1 and agent["counts"]["votes"] >= 1
    assert 0.0 <= agent["trust"] <= 1.0


def test_cosignature_of_unknown_assertion_is_404(client: httpx.Client, bob: AgentKey) -> None:
    missing = "ab" * 32
    response = post(client, f"/v1/assertions/{missing}/signatures", cosign(bob, missing).signature)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "assertion_not_found"


def test_supersession_hides_the_old_claim(
    client: httpx.Client, alice: AgentKey, subject: str
) -> None:
    old = sign_assertion(alice, subject=subject, predicate="p", object="old", confidence=0.9)
    new = sign_assertion(alice, subject=subject, predicate="p", object="new", confidence=0.5)
    old_id = post(client, "/v1/assert", old).json()["id"]
    new_id = post(client, "/v1/assert", new).json()["id"]
    sup = sign_supersession(alice, old=old_id, new=new_id, reason="corrected")
    assert post(client, "/v1/supersede", sup).status_code == 201
    answer = client.get("/v1/query", params={"subject": subject, "predicate": "p"}).json()
    assert [c["id"] for c in answer["claims"]] == [new_id]
    both = client.get(
        "/v1/query", params={"subject": subject, "predicate": "p", "include_superseded": "true"}
    ).json()
    assert {c["id"] for c in both["claims"]} == {old_id, new_id}
    assert client.get(f"/v1/assertions/{old_id}").json()["superseded_by"] == [new_id]


def test_epochs_are_registered_listed_and_fetched(client: httpx.Client, alice: AgentKey) -> None:
    epoch = sign_epoch(alice, name=f"epoch-{uuid.uuid4().hex[:8]}", description="d")
    response = post(client, "/v1/epoch", epoch)
    assert response.status_code == 201
    eid = response.json()["id"]
    listed = client.get("/v1/epochs").json()["epochs"]
    assert eid in {e["id"] for e in listed}
    one = client.get(f"/v1/epochs/{eid}")
    assert one.status_code == 200 and one.json()["name"] == epoch.name
    assert client.get(f"/v1/epochs/{'cd' * 32}").status_code == 404


def test_sources_register_page_fetch_and_retract(
    client: httpx.Client, alice: AgentKey, subject: str
) -> None:
    hashes = []
    for i in range(3):
        content = f"source {subject} {i}"
        source = sign_source(alice, uri=f"https://example.org/{i}", content=content)
        response = post(client, "/v1/sources", source)
        assert response.status_code == 201, response.text
        hashes.append(hashlib.sha256(content.encode()).hexdigest())
    # cursor paging over every source, one per page, finds ours without content
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/sources", params=params).json()
        assert len(page["sources"]) <= 1
        for row in page["sources"]:
            assert row["content"] is None
            seen.append(row["source_hash"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert set(hashes) <= set(seen) and seen == sorted(seen)
    full = client.get(f"/v1/sources/{hashes[0]}").json()
    assert full["content"] == f"source {subject} 0"

    claim = sign_assertion(
        alice, subject=subject, predicate="p", object="x", confidence=0.9, source_hash=hashes[0]
    )
    claim_id = post(client, "/v1/assert", claim).json()["id"]
    retraction = sign_retraction(alice, source_hash=hashes[0], reason="fabricated data")
    body = {
        "reason": retraction.reason,
        "timestamp": retraction.timestamp,
        "signatures": retraction.signatures,
    }
    response = post(client, f"/v1/sources/{hashes[0]}/retract", body)
    assert response.status_code == 201, response.text
    assert client.get(f"/v1/sources/{hashes[0]}").json()["retracted"] is True
    answer = client.get("/v1/query", params={"subject": subject, "predicate": "p"}).json()
    assert answer["claims"] == []
    assert answer["source_warnings"][0]["assertion_id"] == claim_id
    kept = client.get(
        "/v1/query", params={"subject": subject, "predicate": "p", "include_retracted": "1"}
    ).json()
    assert [c["id"] for c in kept["claims"]] == [claim_id]
    assert kept["claims"][0]["retracted_source"] is True


def test_unknown_source_is_404(client: httpx.Client) -> None:
    response = client.get(f"/v1/sources/{'ef' * 32}")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "NotFoundError"


def test_write_timestamp_now_is_accepted(
    client: httpx.Client, carol: AgentKey, subject: str
) -> None:
    record = sign_assertion(
        carol, subject=subject, predicate="p", object=True, confidence=1, timestamp=now()
    )
    assert post(client, "/v1/assert", record).status_code == 201
