"""Hostile wire input on every route (issue 17 item 6), against a real node: invalid
UTF-8 and 10,000-deep JSON are 400s from the one body decoder, never a 500; a path with
``%0A`` cannot forge a line of the text log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.server import ServerProcess

JSON = {"content-type": "application/json"}
HEX = "0" * 64
INVALID_UTF8 = [
    b'{"subject": "a\xff\xfeb", "predicate": "p"}',
    b'{"name": "\xc3\x28", "role": "admin"}',
    b'{"assertions": [{"subject": "\xed\xa0\x80"}]}',  # an encoded lone surrogate
    b'{"queries": [{"subject": "\xf8\x88\x80\x80\x80", "predicate": "p"}]}',
    b"\xff\xfe{}",
    b'{"\xe2\x82": 1}',  # a truncated sequence in a key
]
DEEP = b"[" * 10_000 + b"]" * 10_000
DEEP_BODIES = [
    DEEP,
    b'{"assertions": [' + DEEP + b"]}",
    b'{"queries": ' + DEEP + b"}",
    b'{"subject": "s", "predicate": "p", "object": {"type": "json", "value": ' + DEEP + b"}}",
]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("hostile")
    proc = ServerProcess(base / "data", base / "log", isolated=True, STEMEDB_LOGGING_FORMAT="text")
    yield proc
    proc.stop()


def body_routes(client: httpx.Client) -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI document that takes a request body, path
    parameters filled with well-formed ids."""
    spec = client.get("/openapi.json").json()
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                found.append((method.upper(), re.sub(r"\{[^}]+\}", HEX, path)))
    assert len(found) >= 15, found
    return found


def test_every_body_route_answers_400_to_invalid_utf8_and_deep_nesting(
    node: ServerProcess,
) -> None:
    with node.client() as client:
        routes = body_routes(client)
        for method, path in routes:
            for body in INVALID_UTF8 + DEEP_BODIES:
                answer = client.request(method, path, content=body, headers=JSON)
                if path == "/v1/assert/batch" and answer.status_code != 400:
                    # a batch answers per item: the item is the error, nothing stored
                    assert answer.status_code in (200, 207), answer.text
                    assert answer.json()["failed"] == len(answer.json()["results"])
                    errors = [item["error"] for item in answer.json()["results"]]
                else:
                    assert answer.status_code == 400, (method, path, body[:40], answer.text)
                    errors = [answer.json()["error"]]
                for error in errors:
                    assert error["type"] in {"SerializationError", "ValidationError"}, error
        assert client.get("/ready").status_code == 200
    tracebacks = [line for line in node.log_lines() if "Traceback" in line or " 500 " in line]
    assert tracebacks == []


def test_invalid_utf8_is_malformed_body_and_deep_json_is_too_deep(node: ServerProcess) -> None:
    with node.client() as client:
        bad = client.post("/v1/assert", content=INVALID_UTF8[0], headers=JSON)
        assert bad.json()["error"]["code"] == "malformed_body"
        assert "UTF-8" in bad.json()["error"]["message"]
        deep = client.post("/v1/assert/batch", content=DEEP_BODIES[1], headers=JSON)
        assert deep.status_code == 400 and deep.json()["error"]["code"] == "too_deep"


def test_a_percent_encoded_newline_in_a_path_cannot_forge_a_text_log_line(
    node: ServerProcess, tmp_path: Path
) -> None:
    forged = "2026-12-07 07:00:00,000 ERROR injected"
    with node.client() as client:
        for escape in ("%0A", "%0D%0A", "%0D", "%E2%80%A8", "%1B[2K"):
            path = "/v1/nosuch" + escape + forged.replace(" ", "%20")
            assert client.get(path).status_code == 404
    lines = node.log_lines()
    assert not [line for line in lines if line.startswith(forged)], lines[-10:]
    escaped = [line for line in lines if "/v1/nosuch\\x0a" + forged in line]
    assert escaped, lines[-10:]
