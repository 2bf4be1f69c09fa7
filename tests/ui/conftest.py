"""A real server (keys on, the demo loaded) and a real Chromium (Debian's ``chromium``,
driven by Playwright; no browser download). Screenshots go to ``$STEMEDB_UI_SHOTS`` or
a temporary directory (``shots``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from support.server import ServerProcess

from stemedb.cli.demo import demo_records
from stemedb.cli.remote import load_remote

ROOT_KEY = "ui-test-root-key-" + "0" * 32
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-debian-deps.sh")
    base = tmp_path_factory.mktemp("stemedb-ui")
    proc = ServerProcess(
        base / "data",
        base / "server.log",
        isolated=True,
        STEMEDB_AUTH_ENABLED="true",
        STEMEDB_ROOT_API_KEY=ROOT_KEY,
    )
    load_remote(proc.url, list(demo_records()), api_key=ROOT_KEY)
    yield proc
    proc.stop()


def api_key(server: ServerProcess, role: str) -> dict[str, Any]:
    answer = httpx.post(
        server.url + "/v1/admin/api-keys",
        json={"name": f"ui-{role}", "role": role},
        headers={"X-API-Key": ROOT_KEY},
    )
    answer.raise_for_status()
    made: dict[str, Any] = answer.json()
    return made


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("STEMEDB_UI_SHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("ui-shots")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Watched:
    """A page whose console errors and failed requests are collected."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.failed: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", self._failed)
        page.on(
            "response",
            lambda r: self.failed.append(f"{r.url} {r.status}") if r.status >= 400 else None,
        )

    def _failed(self, request: Any) -> None:
        # leaving a page aborts what it still loads (the live-feed stream, the icon):
        # the browser's doing; what the server fails is a response >= 400, counted too
        if "ERR_ABORTED" in str(request.failure):
            return
        self.failed.append(f"{request.url} {request.failure}")

    def clean(self) -> None:
        assert self.errors == []
        assert self.failed == []


def sign_in(page: Page, url: str, secret: str) -> None:
    page.goto(url + "/ui/login")
    page.fill("#api_key", secret)
    page.click("form.card button[type=submit]")
    page.wait_for_url(url + "/ui")


@pytest.fixture
def admin_page(server: ServerProcess, browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watched = Watched(context.new_page())
    sign_in(watched.page, server.url, ROOT_KEY)
    yield watched
    context.close()
