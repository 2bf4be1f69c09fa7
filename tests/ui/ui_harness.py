"""What the dashboard's browser tests share: the root key, a watched page, sign-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page
from support.server import ServerProcess

ROOT_KEY = "ui-test-root-key-" + "0" * 32
CHROMIUM = "/usr/bin/chromium"


def start_server(base: Path, **env: str) -> ServerProcess:
    """A server of its own (keys on, the root key ``ROOT_KEY``) configured by ``env``."""
    return ServerProcess(
        base / "data",
        base / "server.log",
        isolated=True,
        STEMEDB_AUTH_ENABLED="true",
        STEMEDB_ROOT_API_KEY=ROOT_KEY,
        **env,
    )


def api_key(server: ServerProcess, role: str) -> dict[str, Any]:
    answer = httpx.post(
        server.url + "/v1/admin/api-keys",
        json={"name": f"ui-{role}", "role": role},
        headers={"X-API-Key": ROOT_KEY},
    )
    answer.raise_for_status()
    made: dict[str, Any] = answer.json()
    return made


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


def admin_session(browser: Browser, url: str) -> Iterator[Watched]:
    """A watched page of a new browser context, signed in with the root key."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watched = Watched(context.new_page())
    sign_in(watched.page, url, ROOT_KEY)
    yield watched
    context.close()
