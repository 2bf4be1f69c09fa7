"""The quarantine end to end (ADR 0023) on a real server with keys on and
``[defence] quarantine = true``, one HTTP process and two: a spammed claim is accepted
(durable) but left out of the query answer, listed at ``GET /v1/admin/quarantine``,
shown with ``include_quarantined=true``, released or rejected by an admin (audited by
the admin's key id in the answer and the log), counted in ``/metrics``; readers and
writers cannot list or review."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import msgspec
import pytest
from api_helpers import now
from api_server import ServerProcess

from stemedb.model.signing import AgentKey, sign_assertion

ROOT_KEY = "root-test-key-" + "9a1b7c" * 6
ADMIN = {"x-api-key": ROOT_KEY, "content-type": "application/json"}
PREDICATE = "gastroparesis_risk"


@pytest.fixture(scope="module", params=[1, 2], ids=["workers1", "workers2"])
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("stemedb-quarantine")
    proc = ServerProcess(
        base / "data",
        base / "server.log",
        STEMEDB_API_WORKERS=str(request.param),
        STEMEDB_AUTH_ENABLED="true",
        STEMEDB_ROOT_API_KEY=ROOT_KEY,
        STEMEDB_DEFENCE_QUARANTINE="true",
    )
    yield proc
    assert proc.stop() == 0, proc.log_path.read_text()[-2000:]


@pytest.fixture
def http(node: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.url, timeout=30.0) as client:
        yield client


def post(http: httpx.Client, path: str, body: object, headers: dict[str, str]) -> httpx.Response:
    return http.post(path, content=msgspec.json.encode(body), headers=headers)


def _spam(http: httpx.Client, subject: str, key: AgentKey, count: int) -> list[str]:
    ids = []
    at = now() - 60
    for i, text in enumerate(["Rare", "rare!", "RARE", "rare.", "rare?"][:count]):
        record = sign_assertion(
            key, subject=subject, predicate=PREDICATE, object=text, confidence=0.8, timestamp=at + i
        )
        answer = post(http, "/v1/assert", record, headers=ADMIN)
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return ids


def _query(http: httpx.Client, subject: str, **extra: str) -> set[str]:
    params = {"subject": subject, "predicate": PREDICATE, **extra}
    answer = http.get("/v1/query", params=params, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return {claim["id"] for claim in answer.json()["claims"]}


def _listed(http: httpx.Client, **params: str) -> dict[str, dict[str, object]]:
    answer = http.get("/v1/admin/quarantine", params={"limit": "1000", **params}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return {item["id"]: item for item in answer.json()["items"]}


def test_spam_is_stored_but_held_back_listed_and_released_by_an_admin(http: httpx.Client) -> None:
    subject = f"test/{uuid.uuid4().hex[:12]}"
    spammer = AgentKey.generate()
    ids = _spam(http, subject, spammer, 5)
    held = ids[2:]  # two repeats are allowed (near_duplicate_max_repeats = 2)
    assert _query(http, subject) == set(ids[:2])
    assert _query(http, subject, include_quarantined="true") == set(ids)
    listed = _listed(http, agent_id=spammer.agent_id)
    assert set(listed) == set(held)
    assert {item["reason"] for item in listed.values()} == {"near_duplicate"}
    assert {item["subject"] for item in listed.values()} == {subject}
    one = http.get(f"/v1/assertions/{held[0]}", headers=ADMIN)
    assert one.status_code == 200  # stored: nothing was dropped

    approved = http.post(f"/v1/admin/quarantine/{held[0]}/approve", headers=ADMIN)
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["item"]["status"] == "approved" and body["item"]["reviewed_by"]
    rejected = http.post(f"/v1/admin/quarantine/{held[1]}/reject", headers=ADMIN)
    assert rejected.status_code == 200 and rejected.json()["item"]["status"] == "rejected"
    again = http.post(f"/v1/admin/quarantine/{held[1]}/approve", headers=ADMIN)
    assert again.status_code == 409 and again.json()["error"]["code"] == "quarantine_reviewed"
    assert _query(http, subject) == {*ids[:2], held[0]}
    assert set(_listed(http, agent_id=spammer.agent_id)) == {held[2]}  # pending only
    assert set(_listed(http, agent_id=spammer.agent_id, status="all")) == set(held)


def test_review_of_an_assertion_not_in_quarantine_is_404(http: httpx.Client) -> None:
    answer = http.post(f"/v1/admin/quarantine/{'ab' * 32}/approve", headers=ADMIN)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "quarantine_not_found"


def test_listing_pages_with_a_cursor_and_refuses_bad_parameters(http: httpx.Client) -> None:
    subject = f"test/{uuid.uuid4().hex[:12]}"
    spammer = AgentKey.generate()
    held = _spam(http, subject, spammer, 5)[2:]
    first = http.get(
        "/v1/admin/quarantine", params={"agent_id": spammer.agent_id, "limit": "2"}, headers=ADMIN
    ).json()
    assert [i["id"] for i in first["items"]] == held[:2] and first["next_cursor"]
    second = http.get(
        "/v1/admin/quarantine",
        params={"agent_id": spammer.agent_id, "limit": "2", "cursor": first["next_cursor"]},
        headers=ADMIN,
    ).json()
    assert [i["id"] for i in second["items"]] == held[2:] and second["next_cursor"] is None
    for params in ({"reason": "nope"}, {"status": "nope"}, {"limit": "0"}, {"cursor": "x"}):
        assert http.get("/v1/admin/quarantine", params=params, headers=ADMIN).status_code == 400


def test_only_an_admin_may_list_or_review(http: httpx.Client) -> None:
    made = post(http, "/v1/admin/api-keys", {"name": "w", "role": "writer"}, headers=ADMIN)
    writer = {"x-api-key": made.json()["secret"], "content-type": "application/json"}
    assert http.get("/v1/admin/quarantine", headers=writer).status_code == 403
    assert http.post(f"/v1/admin/quarantine/{'ab' * 32}/reject", headers=writer).status_code == 403
    assert http.get("/v1/admin/quarantine").status_code == 401


def test_metrics_count_pending_and_quarantined_by_reason(http: httpx.Client) -> None:
    _spam(http, f"test/{uuid.uuid4().hex[:12]}", AgentKey.generate(), 4)
    deadline = time.monotonic() + 10
    text = ""
    while time.monotonic() < deadline:
        text = http.get("/metrics").text
        if "stemedb_quarantine_pending" in text:
            break
        time.sleep(0.2)
    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith(("stemedb_quarantine_pending", "stemedb_quarantined_total"))
    }
    assert values["stemedb_quarantine_pending"] >= 2
    assert values['stemedb_quarantined_total{reason="near_duplicate"}'] >= 2
    assert values['stemedb_quarantined_total{reason="fresh_key_burst"}'] == 0


def test_every_review_is_logged_with_the_admin_key(node: ServerProcess, http: httpx.Client) -> None:
    held = _spam(http, f"test/{uuid.uuid4().hex[:12]}", AgentKey.generate(), 3)[2]
    assert http.post(f"/v1/admin/quarantine/{held}/reject", headers=ADMIN).status_code == 200
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if any(f"quarantine: rejected {held}" in line for line in node.log_lines()):
            return
        time.sleep(0.1)
    raise AssertionError("no log line for the review")
