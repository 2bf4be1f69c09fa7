"""A real server (keys on, the demo loaded) and a real Chromium (Debian's ``chromium``,
driven by Playwright; no browser download). Screenshots go to ``$STEMEDB_UI_SHOTS`` or
a temporary directory (``shots``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright
from support.server import ServerProcess
from ui_harness import CHROMIUM, ROOT_KEY, Watched, admin_session, start_server

from stemedb.cli.demo import demo_records
from stemedb.cli.remote import load_remote


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-debian-deps.sh")
    proc = start_server(
        tmp_path_factory.mktemp("stemedb-ui"),
        STEMEDB_DEFENCE_QUARANTINE="false",  # explicit: tests/ui/test_ui_quarantine.py has it on
    )
    load_remote(proc.url, list(demo_records()), api_key=ROOT_KEY)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module, not per session: while Playwright's sync API runs, this thread looks
    as if an asyncio loop were running, so every later ``asyncio.run`` of the session
    (tests/unit) would fail."""
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


@pytest.fixture
def admin_page(server: ServerProcess, browser: Browser) -> Iterator[Watched]:
    yield from admin_session(browser, server.url)
