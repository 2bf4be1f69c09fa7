"""The request screen (``api.http.screen``) against a real loopback node with keys off:
what a web page open in the operator's browser could otherwise do to it.

- CORS "simple requests" (``text/plain``, a form, multipart) to a JSON route → 415;
- DNS rebinding (a ``Host`` that is a name of the attacker's) → 421, the health checks
  excepted; ``[api] allowed_hosts`` names (exact, ``.suffix``) are accepted;
- a cross-origin state change (``Origin`` of another site) → 403."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_helpers import assert_envelope
from support.server import ServerProcess

FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("screen")
    proc = ServerProcess(
        base / "data",
        base / "log",
        isolated=True,
        STEMEDB_API_ALLOWED_HOSTS='["stemedb.example.com", ".internal.example"]',
    )
    yield proc
    proc.stop()


@pytest.fixture
def client(node: ServerProcess) -> Iterator[httpx.Client]:
    with node.client() as http:
        yield http


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/admin/api-keys", "text/plain"),
        ("/v1/admin/api-keys", FORM),
        ("/v1/admin/api-keys", "multipart/form-data; boundary=x"),
        ("/v1/assert", "text/plain;charset=UTF-8"),
        ("/v1/query", "text/plain"),
        ("/v1/admin/rate-limit", FORM),
        ("/v1/admin/circuit-breaker/trip", "text/plain"),
    ],
)
def test_a_simple_request_body_gets_415(client: httpx.Client, path: str, content_type: str) -> None:
    body = b'{"name": "csrf", "role": "admin"}'
    answer = client.post(path, content=body, headers={"content-type": content_type})
    assert_envelope(answer, 415, "ValidationError", "unsupported_media_type")
    assert "application/json" in answer.json()["error"]["message"]
    assert client.get("/v1/admin/api-keys").json()["keys"] == []


def test_a_body_without_content_type_gets_415(client: httpx.Client) -> None:
    answer = client.post("/v1/admin/api-keys", content=b'{"name": "x", "role": "admin"}')
    assert "content-type" not in answer.request.headers
    assert_envelope(answer, 415, "ValidationError", "unsupported_media_type")


def test_json_with_a_charset_and_bodiless_posts_pass(client: httpx.Client) -> None:
    made = client.post(
        "/v1/admin/api-keys",
        content=b'{"name": "ok", "role": "reader"}',
        headers={"content-type": "Application/JSON; charset=utf-8"},
    )
    assert made.status_code == 201, made.text
    disabled = client.post(f"/v1/admin/api-keys/{made.json()['id']}/disable")  # no body
    assert disabled.status_code == 200, disabled.text
    assert client.delete(f"/v1/admin/api-keys/{made.json()['id']}").status_code == 200


@pytest.mark.parametrize(
    "host",
    ["attacker.example", "attacker.example:18180", "stemedb.example.com.evil", "internal.example"],
)
def test_a_rebinding_host_gets_421(client: httpx.Client, host: str) -> None:
    for method, path in (("GET", "/v1/admin/api-keys"), ("POST", "/v1/admin/api-keys")):
        answer = client.request(
            method, path, json={"name": "x", "role": "admin"}, headers={"Host": host}
        )
        assert_envelope(answer, 421, "ValidationError", "misdirected_host")
        assert "allowed_hosts" in answer.json()["error"]["message"]
    for path in ("/health", "/ready", "/metrics"):  # load balancers name nodes their own way
        assert client.get(path, headers={"Host": host}).status_code == 200


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST:18180",
        "127.0.0.1:1",
        "[::1]:18180",
        "192.0.2.40",
        "stemedb.example.com",
        "Stemedb.Example.Com.:443",
        "node-1.internal.example",
    ],
)
def test_this_nodes_names_are_answered(client: httpx.Client, host: str) -> None:
    assert client.get("/v1/admin/api-keys", headers={"Host": host}).status_code == 200


def test_a_cross_origin_state_change_gets_403(client: httpx.Client, node: ServerProcess) -> None:
    body = {"name": "x", "role": "admin"}
    for origin in ("https://evil.example", "null", "http://127.0.0.1:1"):
        answer = client.post("/v1/admin/api-keys", json=body, headers={"Origin": origin})
        assert_envelope(answer, 403, "AuthorizationError", "origin_not_allowed")
        deleted = client.delete("/v1/admin/api-keys/nosuch", headers={"Origin": origin})
        assert deleted.status_code == 403
    same = client.post(
        "/v1/admin/api-keys", json={"name": "same", "role": "reader"}, headers={"Origin": node.url}
    )
    assert same.status_code == 201, same.text
    # a cross-origin read is let through (the browser keeps its answer from the page)
    assert (
        client.get("/v1/admin/api-keys", headers={"Origin": "https://evil.example"}).status_code
        == 200
    )


def test_an_allowed_origin_may_change_state(tmp_path: Path) -> None:
    origin = "https://app.example"
    node = ServerProcess(
        tmp_path / "data", tmp_path / "log", isolated=True, STEMEDB_ALLOWED_ORIGINS=origin
    )
    try:
        with node.client() as client:
            made = client.post(
                "/v1/admin/api-keys",
                json={"name": "cors", "role": "reader"},
                headers={"Origin": origin},
            )
            assert made.status_code == 201
            assert made.headers["access-control-allow-origin"] == origin
            refused = client.post(
                "/v1/admin/api-keys",
                content=b"x",
                headers={"Origin": origin, "content-type": "text/plain"},
            )
            assert refused.status_code == 415
            assert refused.headers["access-control-allow-origin"] == origin  # readable error
    finally:
        node.stop()
