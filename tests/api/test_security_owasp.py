"""OWASP API Security Top 10 (2023), the items that apply to StemeDB, each checked
against a real server with API keys, rate limits and quotas on (``auth_server``).

API1 object-level authorization, API2 authentication, API3 property-level
authorization, API4 resource consumption, API5 function-level authorization, API8
security misconfiguration. (API6 business flows, API7 SSRF, API9 inventory and API10
unsafe consumption have no surface here: the server makes no outbound calls and serves
one versioned API described by /openapi.json.)
"""

from __future__ import annotations

import hmac
import inspect
import socket
import time
import uuid
from typing import Any

import httpx
import msgspec
import pytest
from api_helpers import MAX_BATCH, MAX_BODY_BYTES, assert_envelope
from auth_server import *  # noqa: F403  (fixtures)
from auth_server import (
    REQUEST_TIMEOUT_SECONDS,
    ROOT_KEY,
    ServerProcess,
    admin_headers,
    create_key,
    fresh_agent,
    send,
)

from stemedb.api.guard import keys
from stemedb.model import apikey
from stemedb.model.signing import sign_assertion

ADMIN_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/v1/admin/api-keys", None),
    ("POST", "/v1/admin/api-keys", {"name": "x", "role": "admin"}),
    ("POST", "/v1/admin/api-keys/root/disable", None),
    ("POST", "/v1/admin/api-keys/root/confirm", None),
    ("DELETE", "/v1/admin/api-keys/root", None),
    ("GET", "/v1/admin/rate-limit", None),
    ("POST", "/v1/admin/rate-limit", {"agent_id": "a" * 64, "max_requests_per_min": 1}),
    ("DELETE", f"/v1/admin/rate-limit/{'a' * 64}", None),
    ("POST", "/v1/admin/circuit-breaker/trip", {"agent_id": "a" * 64}),
    ("POST", "/v1/admin/circuit-breaker/reset", {"agent_id": "a" * 64}),
    ("GET", "/v1/admin/circuit-breakers", None),
    ("GET", "/v1/admin/slow-queries", None),
    ("GET", "/v1/admin/storage/stats", None),
    ("GET", "/v1/admin/cluster/status", None),
    ("POST", f"/v1/admin/trust/{'a' * 64}/outcome", {"accurate": True}),
    ("GET", "/v1/admin/custodial-keys", None),
    ("POST", "/v1/admin/custodial-keys", {"api_key_id": "root"}),
    ("DELETE", f"/v1/admin/custodial-keys/{'a' * 64}", None),
    ("GET", "/v1/admin/quarantine", None),
    ("POST", "/v1/admin/quarantine/root/approve", {}),
    ("POST", "/v1/admin/quarantine/root/reject", {}),
]


def call(client: httpx.Client, method: str, path: str, body: Any, key: str | None) -> Any:
    headers = {"x-api-key": key} if key else {}
    return client.request(method, path, json=body, headers=headers)


def assert_no_leak(text: str, *secrets: str) -> None:
    assert "Traceback" not in text and "/src/" not in text and ".py" not in text
    for secret in secrets:
        assert secret not in text


# -- API1: broken object-level authorization -----------------------------------------


def test_api1_reader_cannot_disable_or_delete_another_key(auth_client: httpx.Client) -> None:
    victim = create_key(auth_client, "writer")
    reader = create_key(auth_client, "reader")["secret"]
    for method, path in (
        ("POST", f"/v1/admin/api-keys/{victim['id']}/disable"),
        ("DELETE", f"/v1/admin/api-keys/{victim['id']}"),
    ):
        response = call(auth_client, method, path, None, reader)
        assert_envelope(response, 403, "AuthorizationError", "insufficient_role")
    still = auth_client.get("/v1/epochs", headers={"x-api-key": victim["secret"]})
    assert still.status_code == 200


def test_api1_writer_cannot_lift_its_own_limits(auth_client: httpx.Client) -> None:
    writer = create_key(auth_client, "writer")
    body = {"api_key_id": writer["id"], "max_requests_per_min": 10**6}
    response = call(auth_client, "POST", "/v1/admin/rate-limit", body, writer["secret"])
    assert_envelope(response, 403, "AuthorizationError", "insufficient_role")


# -- API2: broken authentication -------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "code"),
    [
        (None, "missing_api_key"),
        ("", "missing_api_key"),
        ("stm_unknown", "invalid_api_key"),
        (ROOT_KEY + "x", "invalid_api_key"),
        (ROOT_KEY[:-1], "invalid_api_key"),
    ],
)
def test_api2_missing_or_unknown_key_is_401(
    auth_client: httpx.Client, key: str | None, code: str
) -> None:
    response = call(auth_client, "GET", "/v1/admin/api-keys", None, key)
    error = assert_envelope(response, 401, "AuthenticationError", code)
    assert error["retryable"] is False


def test_api2_disabled_and_expired_keys_are_401_at_once(auth_client: httpx.Client) -> None:
    disabled = create_key(auth_client, "admin")
    auth_client.post(f"/v1/admin/api-keys/{disabled['id']}/disable", headers=admin_headers())
    response = call(auth_client, "GET", "/v1/admin/api-keys", None, disabled["secret"])
    assert_envelope(response, 401, "AuthenticationError", "api_key_disabled")
    expiring = create_key(auth_client, "admin", expires_at=time.time() + 0.5)
    time.sleep(max(0.0, expiring["expires_at"] - time.time()) + 0.1)
    response = call(auth_client, "GET", "/v1/admin/api-keys", None, expiring["secret"])
    assert_envelope(response, 401, "AuthenticationError", "api_key_expired")


def test_api2_secrets_are_compared_in_constant_time_and_stored_hashed() -> None:
    source = inspect.getsource(apikey.same_hash)
    assert "hmac.compare_digest" in source
    assert "same_hash(" in inspect.getsource(keys.KeyRing.authenticate)
    secret = apikey.new_secret()
    digest = apikey.hash_secret(secret)
    assert secret not in digest and len(digest) == 64
    assert apikey.same_hash(digest, apikey.hash_secret(secret))
    assert not apikey.same_hash(digest, apikey.hash_secret(secret + "x"))
    assert hmac.compare_digest(digest, apikey.hash_secret(secret))


def test_api2_secret_is_never_logged_nor_returned_again(
    auth_client: httpx.Client, auth_server: ServerProcess
) -> None:
    made = create_key(auth_client, "writer", name=f"leak-{uuid.uuid4().hex[:6]}")
    secret = made["secret"]
    headers = {"x-api-key": secret}
    record = sign_assertion(
        fresh_agent(), subject="test/leak", predicate="p", object="v", confidence=0.5
    )
    send(auth_client, "/v1/assert", record, headers)
    auth_client.get("/v1/admin/api-keys", headers=headers)  # 403, logged as an error
    auth_client.post(f"/v1/admin/api-keys/{made['id']}/disable", headers=admin_headers())
    refused = auth_client.get("/v1/epochs", headers=headers)  # 401, logged as an error
    texts = [
        refused.text,
        auth_client.get("/v1/admin/api-keys", headers=admin_headers()).text,
        auth_client.get("/metrics").text,
        auth_server.log_text(),
    ]
    for text in texts:
        assert secret not in text and secret[4:] not in text
        assert ROOT_KEY not in text
        assert apikey.hash_secret(secret) not in text


# -- API3: broken object property level authorization ----------------------------------


def test_api3_key_listings_carry_no_secret_or_hash(auth_client: httpx.Client) -> None:
    create_key(auth_client, "reader")
    listing = auth_client.get("/v1/admin/api-keys", headers=admin_headers()).json()
    for key in listing["keys"]:
        assert set(key) == {
            "id",
            "name",
            "role",
            "enabled",
            "created_at",
            "expires_at",
            "last_used_at",
            "minted_open",
        }
        assert not any(str(v).startswith("stm_") for v in key.values())


def test_api3_unknown_fields_cannot_set_hidden_properties(auth_client: httpx.Client) -> None:
    body = {"name": "sneaky", "role": "reader", "secret_hash": "0" * 64, "enabled": True}
    response = auth_client.post("/v1/admin/api-keys", json=body, headers=admin_headers())
    assert_envelope(response, 400, "ValidationError", "unknown_field")


# -- API4: unrestricted resource consumption ---------------------------------------------


def test_api4_huge_body_is_413_before_it_is_read(
    auth_client: httpx.Client, writer_key: str
) -> None:
    body = b'{"subject": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'
    response = auth_client.post(
        "/v1/assert",
        content=body,
        headers={"x-api-key": writer_key, "content-type": "application/json"},
    )
    assert_envelope(response, 413, "ValidationError", "body_too_large")


def test_api4_huge_limit_is_400(auth_client: httpx.Client, writer_key: str) -> None:
    response = auth_client.get(
        "/v1/query",
        params={"subject": "s", "predicate": "p", "limit": 10**9},
        headers={"x-api-key": writer_key},
    )
    assert_envelope(response, 400, "ValidationError")


def test_api4_oversized_batches_are_400(auth_client: httpx.Client, writer_key: str) -> None:
    agent = fresh_agent()
    items = [
        msgspec.to_builtins(
            sign_assertion(agent, subject="test/big", predicate="p", object=i, confidence=0.5)
        )
        for i in range(MAX_BATCH + 1)
    ]
    headers = {"x-api-key": writer_key}
    batch = auth_client.post("/v1/assert/batch", json={"assertions": items}, headers=headers)
    assert_envelope(batch, 400, "ValidationError", "batch_too_large")
    queries = [{"subject": "s", "predicate": "p"}] * (MAX_BATCH + 1)
    many = auth_client.post("/v1/query", json={"queries": queries}, headers=headers)
    assert_envelope(many, 400, "ValidationError", "batch_too_large")


def test_api4_slow_client_is_cut_off_by_the_request_timeout(
    auth_server: ServerProcess, writer_key: str
) -> None:
    """A slowloris-style client: headers at once, then the body one byte at a time."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", auth_server.port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/assert HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"X-API-Key: " + writer_key.encode() + b"\r\nContent-Length: 1000\r\n\r\n{"
        )
        answer = b""
        sock.settimeout(0.5)
        while time.monotonic() - started < REQUEST_TIMEOUT_SECONDS + 10:
            try:
                sock.sendall(b" ")
            except OSError:
                break
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            answer += chunk
            if b"\r\n\r\n" in answer and b"}" in answer.split(b"\r\n\r\n", 1)[1]:
                break
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 504"), answer[:200]
    assert b'"type":"TimeoutError"' in answer and b'"code":"request_timeout"' in answer
    assert REQUEST_TIMEOUT_SECONDS - 0.5 <= elapsed <= REQUEST_TIMEOUT_SECONDS + 5


def test_api4_rate_limits_and_quotas_apply(auth_client: httpx.Client) -> None:
    reader = create_key(auth_client, "reader")
    auth_client.post(
        "/v1/admin/rate-limit",
        json={"api_key_id": reader["id"], "max_requests_per_min": 1},
        headers=admin_headers(),
    )
    headers = {"x-api-key": reader["secret"]}
    codes = [auth_client.get("/v1/epochs", headers=headers).status_code for _ in range(3)]
    assert codes[0] == 200 and 429 in codes[1:]


# -- API5: broken function level authorization -----------------------------------------


@pytest.mark.parametrize("role", ["reader", "writer"])
def test_api5_non_admin_keys_get_403_on_every_admin_route(
    auth_client: httpx.Client, role: str
) -> None:
    secret = create_key(auth_client, role)["secret"]
    for method, path, body in ADMIN_ROUTES:
        response = call(auth_client, method, path, body, secret)
        assert_envelope(response, 403, "AuthorizationError", "insufficient_role")


def test_api5_every_admin_route_needs_a_key(auth_client: httpx.Client) -> None:
    for method, path, body in ADMIN_ROUTES:
        response = call(auth_client, method, path, body, None)
        assert_envelope(response, 401, "AuthenticationError", "missing_api_key")


def test_api5_every_admin_route_of_the_openapi_document_is_covered(
    auth_client: httpx.Client,
) -> None:
    spec = auth_client.get("/openapi.json").json()
    documented = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        if path.startswith("/v1/admin/")
        for method in item
        if method in ("get", "post", "delete", "put", "patch")
    }
    templated = {
        (m, p.replace("a" * 64, "{agent_id}").replace("/root", "/{id}")) for m, p, _ in ADMIN_ROUTES
    }
    assert documented <= templated, documented - templated


def test_api5_reader_cannot_write_anything(auth_client: httpx.Client, reader_key: str) -> None:
    headers = {"x-api-key": reader_key}
    record = sign_assertion(
        fresh_agent(), subject="test/ro", predicate="p", object=1, confidence=0.5
    )
    for path in ("/v1/assert", "/v1/vote", "/v1/epoch", "/v1/supersede", "/v1/sources"):
        response = send(auth_client, path, record, headers)
        assert_envelope(response, 403, "AuthorizationError", "insufficient_role")


# -- API8: security misconfiguration ----------------------------------------------------


def test_api8_cors_is_closed_by_default(auth_client: httpx.Client) -> None:
    origin = {"origin": "https://evil.example"}
    for response in (
        auth_client.get("/health", headers=origin),
        auth_client.get("/v1/epochs", headers={**origin, **admin_headers()}),
        auth_client.options(
            "/v1/assert", headers={**origin, "access-control-request-method": "POST"}
        ),
    ):
        assert "access-control-allow-origin" not in response.headers


def test_api8_errors_leak_no_stack_traces_or_paths(auth_client: httpx.Client) -> None:
    answers = [
        auth_client.post("/v1/assert", content=b"{not json", headers=admin_headers()),
        auth_client.get("/v1/nope", headers=admin_headers()),
        auth_client.delete("/v1/assert", headers=admin_headers()),
        auth_client.get("/v1/assertions/zz", headers=admin_headers()),
        auth_client.get("/v1/admin/api-keys", headers={"x-api-key": b"\xe9" * 10}),
    ]
    for response in answers:
        assert response.status_code >= 400
        assert set(response.json()) == {"error", "request_id"}
        assert_no_leak(response.text, ROOT_KEY)
    assert "server" not in {k.lower() for k in answers[0].headers}
