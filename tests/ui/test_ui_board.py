"""The disagreement board's categories, and that a question's row follows a write at
once (the board keeps each row until a write touches its question)."""

from __future__ import annotations

import html
import re
import uuid

import httpx
from support.server import ServerProcess
from ui_harness import ROOT_KEY

from stemedb.client import Client
from stemedb.model.signing import AgentKey

SECTION = re.compile(r'<section [^>]*id="board-(\w+)">(.*?)</section>', re.S)


def board(server: ServerProcess, prefix: str) -> dict[str, str]:
    """Category -> the HTML of its section, for the questions under ``prefix``."""
    answer = httpx.get(server.url + "/ui/disagreements", params={"prefix": prefix})
    assert answer.status_code == 200, answer.text
    return {key: html.unescape(body) for key, body in SECTION.findall(answer.text)}


def category(sections: dict[str, str], subject: str) -> str:
    found = [key for key, body in sections.items() if f">{subject} · risk<" in body]
    assert len(found) == 1, (subject, found)
    return found[0]


def test_the_board_sorts_questions_into_their_categories_and_follows_writes(
    server: ServerProcess,
) -> None:
    prefix = f"ui/board/{uuid.uuid4().hex[:10]}/"
    active, emerging, settled = (prefix + name for name in ("active", "emerging", "settled"))
    agents = [AgentKey.generate() for _ in range(3)]
    with Client(server.url, key=agents[0], api_key=ROOT_KEY) as sdk:
        sdk.assert_(active, "risk", "rare", 0.9, source_class="regulatory")
        sdk.assert_(settled, "risk", "low", 0.9, source_class="clinical")
    with Client(server.url, key=agents[1], api_key=ROOT_KEY) as sdk:
        sdk.assert_(active, "risk", "common", 0.9, source_class="clinical")
    # three anecdotes (three claims: one content id would be one claim), none authoritative
    for i, key in enumerate(agents):
        with Client(server.url, key=key, api_key=ROOT_KEY) as sdk:
            sdk.assert_(emerging, "risk", "high", 0.6 + i / 100, source_class="anecdotal")
    sections = board(server, prefix)
    assert set(sections) == {"active", "emerging", "resolved", "low"}
    assert category(sections, active) == "active"
    assert category(sections, emerging) == "emerging"
    assert category(sections, settled) == "resolved"
    assert board(server, prefix) == sections  # the same rows from the kept ones

    # an authoritative contradiction of the settled question: its row moves at once
    with Client(server.url, key=agents[2], api_key=ROOT_KEY) as sdk:
        sdk.assert_(settled, "risk", "high", 0.9, source_class="observational")
    moved = board(server, prefix)
    assert category(moved, settled) == "active"
    assert category(moved, active) == "active" and category(moved, emerging) == "emerging"
