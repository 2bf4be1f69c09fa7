"""Roles, keys and the retraction preview through the dashboard, in a real browser."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx
from playwright.sync_api import Browser, expect
from support.server import ServerProcess
from ui_harness import ROOT_KEY, Watched, api_key, sign_in

from stemedb.client import Client
from stemedb.model.signing import AgentKey


def test_a_reader_key_is_refused_the_admin_pages_and_sees_no_admin_link(
    server: ServerProcess, browser: Browser
) -> None:
    reader = api_key(server, "reader")
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, server.url, reader["secret"])
    expect(page.locator("nav")).not_to_contain_text("Admin")
    answer = page.goto(server.url + "/ui/admin")
    assert answer is not None and answer.status == 403
    expect(page.locator("p.error")).to_contain_text("admin role")
    # its forms too, even with the session's own CSRF token
    csrf = page.goto(server.url + "/ui/search")
    assert csrf is not None
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    posted = page.request.post(
        server.url + "/ui/admin/api-keys", form={"csrf": token or "", "name": "x", "role": "admin"}
    )
    assert posted.status == 403
    context.close()
    # without a session, with keys on: the admin page asks to sign in
    assert httpx.get(server.url + "/ui/admin").status_code == 401


def test_an_admin_creates_a_key_sees_its_secret_once_and_disables_it(
    server: ServerProcess, admin_page: Watched, shots: Path
) -> None:
    page = admin_page.page
    page.goto(server.url + "/ui/admin")
    name = f"made-in-ui-{time.time_ns()}"
    page.fill("#key-name", name)
    page.select_option("#key-role", "writer")
    page.click("form[action='/ui/admin/api-keys'] button")
    secret = page.locator("#new-secret code").inner_text()
    assert secret.startswith("stm_")
    page.screenshot(path=str(shots / "admin-created.png"), full_page=True)
    assert httpx.get(server.url + "/v1/feed", headers={"X-API-Key": secret}).status_code == 200
    page.goto(server.url + "/ui/admin")
    assert secret not in page.content()  # shown once
    row = page.locator("#keys tr", has_text=name)
    row.locator("button", has_text="Disable").click()
    page.wait_for_url(server.url + "/ui/admin")
    assert httpx.get(server.url + "/v1/feed", headers={"X-API-Key": secret}).status_code == 401
    admin_page.clean()


def test_the_retraction_preview_lists_what_the_cascade_excludes_and_confirming_excludes_it(
    server: ServerProcess, admin_page: Watched, shots: Path
) -> None:
    made = httpx.post(
        server.url + "/v1/admin/custodial-keys",
        json={"api_key_id": "root"},
        headers={"X-API-Key": ROOT_KEY},
    )
    assert made.status_code in (201, 409)
    page = admin_page.page
    content = f"a paper the dashboard registers {time.time_ns()}"
    source = hashlib.sha256(content.encode()).hexdigest()
    page.goto(server.url + "/ui/sources")
    page.fill("#uri", f"https://papers.example/{source[:8]}")
    page.fill("#title", "A paper")
    page.select_option("#source_class", "observational")
    page.fill("#content", content)
    page.click("form[action='/ui/sources'] button")
    subject = f"ui/retract/{source[:8]}"
    with Client(server.url, key=AgentKey.generate(), api_key=ROOT_KEY) as sdk:
        cited = sdk.assert_(subject, "risk", "high", 0.8, source_hash=source)
        derived = sdk.assert_(subject, "risk", "very high", 0.7, parent=cited.id)
        kept = sdk.assert_(subject, "risk", "low", 0.6, source_class="clinical")
    page.goto(server.url + f"/ui/sources/{source}/retract")
    expect(page.locator("#impact-count")).to_contain_text("exclude 2 claims")
    listed = page.locator("#excluded tbody").inner_text()
    assert cited.id[:12] in listed and derived.id[:12] in listed and kept.id[:12] not in listed
    page.screenshot(path=str(shots / "retraction-preview.png"), full_page=True)
    page.fill("#reason", "withdrawn by its authors")
    page.click("button.danger")
    expect(page.locator("p", has_text="already retracted")).to_be_visible()
    answer = httpx.get(
        server.url + "/v1/query",
        params={"subject": subject, "predicate": "risk"},
        headers={"X-API-Key": ROOT_KEY},
    ).json()
    assert [c["id"] for c in answer["claims"]] == [kept.id]
    admin_page.clean()
