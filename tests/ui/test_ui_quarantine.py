"""The quarantine reviewed from the dashboard (ADR 0023), in a real browser, against a
server of its own with keys on and ``[defence] quarantine = true`` set explicitly:
held writes are listed with their reason and claim (Admin, the agent's page, flagged
on the question page), an admin approves one and rejects another, and the JSON API
shows the effect; a reader is refused the review forms."""

from __future__ import annotations

import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from playwright.sync_api import Browser, expect
from support.server import ServerProcess
from ui_harness import ROOT_KEY, Watched, admin_session, api_key, sign_in, start_server

from stemedb.model.signing import AgentKey, sign_assertion

ADMIN = {"X-API-Key": ROOT_KEY}
PREDICATE = "gastroparesis_risk"
SPELLINGS = ("Rare", "rare!", "RARE", "rare.", "rare?")
MAX_REPEATS = 2


@pytest.fixture(scope="module")
def held_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory.mktemp("stemedb-ui-quarantine"),
        STEMEDB_DEFENCE_QUARANTINE="true",
        STEMEDB_DEFENCE_NEAR_DUPLICATE_MAX_REPEATS=str(MAX_REPEATS),
    )
    yield proc
    proc.stop()


def spam(server: ServerProcess) -> tuple[str, AgentKey, list[str]]:
    """A new agent repeats one claim on a new question in five spellings: the repeats
    beyond the allowed are held. Its question, the agent and the five ids."""
    subject = f"ui/quarantine/{uuid.uuid4().hex[:10]}"
    key = AgentKey.generate()
    ids = []
    at = int(time.time()) - 60
    for i, text in enumerate(SPELLINGS):
        record = sign_assertion(
            key, subject=subject, predicate=PREDICATE, object=text, confidence=0.8, timestamp=at + i
        )
        answer = httpx.post(
            server.url + "/v1/assert",
            content=msgspec.json.encode(record),
            headers={**ADMIN, "Content-Type": "application/json"},
        )
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return subject, key, ids


def visible(server: ServerProcess, subject: str) -> set[str]:
    answer = httpx.get(
        server.url + "/v1/query",
        params={"subject": subject, "predicate": PREDICATE},
        headers=ADMIN,
    )
    assert answer.status_code == 200, answer.text
    return {claim["id"] for claim in answer.json()["claims"]}


def reviews(server: ServerProcess, agent_id: str) -> dict[str, dict[str, object]]:
    answer = httpx.get(
        server.url + "/v1/admin/quarantine",
        params={"agent_id": agent_id, "status": "all"},
        headers=ADMIN,
    )
    assert answer.status_code == 200, answer.text
    return {item["id"]: item for item in answer.json()["items"]}


@pytest.fixture
def admin(held_server: ServerProcess, browser: Browser) -> Iterator[Watched]:
    yield from admin_session(browser, held_server.url)


def test_an_admin_approves_and_rejects_held_writes_from_the_admin_page(
    held_server: ServerProcess, admin: Watched, shots: Path
) -> None:
    subject, spammer, ids = spam(held_server)
    held = ids[MAX_REPEATS:]
    assert visible(held_server, subject) == set(ids[:MAX_REPEATS])

    page = admin.page
    page.goto(held_server.url + "/ui/admin")
    rows = page.locator("#quarantine-list tbody tr")
    for index, claim_id in enumerate(held):
        row = rows.filter(has=page.locator(f"a[href='/ui/claims/{claim_id}']"))
        expect(row).to_have_count(1)
        expect(row).to_contain_text("near_duplicate")
        expect(row).to_contain_text(SPELLINGS[MAX_REPEATS + index])
        expect(row).to_contain_text(subject)
    page.screenshot(path=str(shots / "admin-quarantine.png"), full_page=True)

    page.locator(f"tr[data-id='{held[0]}'] button", has_text="Approve").click()
    page.wait_for_url(held_server.url + "/ui/admin")
    expect(page.locator(f"tr[data-id='{held[0]}']")).to_have_count(0)
    page.locator(f"tr[data-id='{held[1]}'] button", has_text="Reject").click()
    page.wait_for_url(held_server.url + "/ui/admin")
    expect(page.locator(f"tr[data-id='{held[1]}']")).to_have_count(0)
    expect(page.locator(f"tr[data-id='{held[2]}']")).to_have_count(1)

    # the effect, through the JSON API: the approved claim counts, the rejected does not
    assert visible(held_server, subject) == {*ids[:MAX_REPEATS], held[0]}
    items = reviews(held_server, spammer.agent_id)
    assert {i: items[i]["status"] for i in held} == {
        held[0]: "approved",
        held[1]: "rejected",
        held[2]: "pending",
    }
    assert items[held[0]]["reviewed_by"] == "root" and items[held[1]]["reviewed_by"] == "root"

    # the question page flags what is still held out, and how it was reviewed
    query = urllib.parse.urlencode({"subject": subject, "predicate": PREDICATE})
    page.goto(held_server.url + "/ui/question?" + query)
    claims = page.locator("table.claims tbody")
    expect(claims.locator("tr", has_text="quarantined: pending")).to_have_count(1)
    expect(claims.locator("tr", has_text="quarantined: rejected")).to_have_count(1)
    expect(claims.locator("tr", has_text="quarantined, approved")).to_have_count(1)
    admin.clean()


def test_the_agents_page_lists_the_agents_held_writes_and_reviews_them(
    held_server: ServerProcess, admin: Watched
) -> None:
    subject, spammer, ids = spam(held_server)
    held = ids[MAX_REPEATS:]
    page = admin.page
    agent_page = held_server.url + "/ui/agents?agent_id=" + spammer.agent_id
    page.goto(agent_page)
    listed = page.locator("#quarantine-list tbody tr[data-id]")
    expect(listed).to_have_count(len(held))
    page.locator(f"tr[data-id='{held[0]}'] button", has_text="Reject").click()
    page.wait_for_url(agent_page)  # back on the agent's page
    expect(listed).to_have_count(len(held) - 1)
    assert reviews(held_server, spammer.agent_id)[held[0]]["status"] == "rejected"
    assert held[0] not in visible(held_server, subject)
    admin.clean()


def test_a_reader_is_refused_the_review_and_a_form_without_its_token_is_403(
    held_server: ServerProcess, browser: Browser, admin: Watched
) -> None:
    _, spammer, ids = spam(held_server)
    target = ids[-1]
    reader = api_key(held_server, "reader")
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, held_server.url, reader["secret"])
    page.goto(held_server.url + "/ui/agents?agent_id=" + spammer.agent_id)
    expect(page.locator("#quarantine-list")).to_have_count(0)  # no list, no buttons
    token = page.locator("input[name=csrf]").first.get_attribute("value") or ""
    url = f"{held_server.url}/ui/admin/quarantine/{target}/approve"
    assert page.request.post(url, form={"csrf": token}).status == 403
    context.close()
    # the admin's own session, without the token
    assert admin.page.request.post(url, form={"next": "/ui/admin"}).status == 403
    assert reviews(held_server, spammer.agent_id)[target]["status"] == "pending"
