"""API keys against a real server: roles, disable/delete/expiry within one request,
secrets shown once, root key seeding, restarts, start-up refusal, trust outcomes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from api_helpers import assert_envelope
from auth_server import *  # noqa: F403  (fixtures)
from auth_server import (
    ROOT_KEY,
    ServerProcess,
    admin_headers,
    create_key,
    fresh_agent,
    send,
    start_refused,
)

from stemedb.model.signing import sign_assertion

pytestmark = pytest.mark.usefixtures("auth_server")


def _assertion_body(subject: str) -> object:
    return sign_assertion(fresh_agent(), subject=subject, predicate="p", object="v", confidence=0.7)


def test_admin_route_without_key_is_401_missing_api_key(auth_client: httpx.Client) -> None:
    response = auth_client.get("/v1/admin/api-keys")
    assert_envelope(response, 401, "AuthenticationError", "missing_api_key")


def test_unknown_key_is_401_invalid_api_key(auth_client: httpx.Client) -> None:
    response = auth_client.get("/v1/admin/api-keys", headers={"x-api-key": "stm_" + "A" * 43})
    assert_envelope(response, 401, "AuthenticationError", "invalid_api_key")


def test_created_secret_is_shown_once_and_never_listed(auth_client: httpx.Client) -> None:
    made = create_key(auth_client, "reader", name="shown-once")
    secret = made["secret"]
    assert secret.startswith("stm_") and len(secret) >= 40
    assert set(made) == {
        "id",
        "name",
        "role",
        "enabled",
        "created_at",
        "expires_at",
        "last_used_at",
        "minted_open",
        "secret",
    }
    listing = auth_client.get("/v1/admin/api-keys", headers=admin_headers())
    assert listing.status_code == 200
    assert listing.headers["cache-control"] == "no-store"
    keys = {k["id"]: k for k in listing.json()["keys"]}
    assert set(keys[made["id"]]) == {
        "id",
        "name",
        "role",
        "enabled",
        "created_at",
        "expires_at",
        "last_used_at",
        "minted_open",
    }
    assert secret not in listing.text and secret[4:] not in listing.text
    assert "hash" not in listing.text


def test_reader_key_reads_but_cannot_write(auth_client: httpx.Client, reader_key: str) -> None:
    headers = {"x-api-key": reader_key}
    read = auth_client.get("/v1/query", params={"subject": "s", "predicate": "p"}, headers=headers)
    assert read.status_code == 200, read.text
    write = send(auth_client, "/v1/assert", _assertion_body("test/r"), headers)
    error = assert_envelope(write, 403, "AuthorizationError", "insufficient_role")
    assert error["details"] == {"required_role": "writer", "role": "reader"}


def test_writer_key_writes_but_cannot_reach_admin(
    auth_client: httpx.Client, writer_key: str
) -> None:
    headers = {"x-api-key": writer_key}
    write = send(auth_client, "/v1/assert", _assertion_body(f"test/{uuid.uuid4().hex}"), headers)
    assert write.status_code == 201, write.text
    admin = auth_client.get("/v1/admin/api-keys", headers=headers)
    assert_envelope(admin, 403, "AuthorizationError", "insufficient_role")


def test_reads_need_a_key_when_require_for_reads(auth_client: httpx.Client) -> None:
    response = auth_client.get("/v1/query", params={"subject": "s", "predicate": "p"})
    assert_envelope(response, 401, "AuthenticationError", "missing_api_key")


def test_disabled_key_is_refused_on_the_next_request(auth_client: httpx.Client) -> None:
    made = create_key(auth_client, "reader")
    headers = {"x-api-key": made["secret"]}
    assert auth_client.get("/v1/epochs", headers=headers).status_code == 200
    disabled = auth_client.post(f"/v1/admin/api-keys/{made['id']}/disable", headers=admin_headers())
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    assert "secret" not in disabled.json()
    again = auth_client.get("/v1/epochs", headers=headers)
    assert_envelope(again, 401, "AuthenticationError", "api_key_disabled")


def test_deleted_key_is_refused_and_gone_from_the_list(auth_client: httpx.Client) -> None:
    made = create_key(auth_client, "writer")
    deleted = auth_client.delete(f"/v1/admin/api-keys/{made['id']}", headers=admin_headers())
    assert deleted.status_code == 200 and deleted.json() == {"id": made["id"], "deleted": True}
    response = auth_client.get("/v1/epochs", headers={"x-api-key": made["secret"]})
    assert_envelope(response, 401, "AuthenticationError", "invalid_api_key")
    ids = [
        k["id"]
        for k in auth_client.get("/v1/admin/api-keys", headers=admin_headers()).json()["keys"]
    ]
    assert made["id"] not in ids
    missing = auth_client.delete(f"/v1/admin/api-keys/{made['id']}", headers=admin_headers())
    assert_envelope(missing, 404, "NotFoundError", "api_key_not_found")


def test_expired_key_is_refused_once_its_time_passes(auth_client: httpx.Client) -> None:
    made = create_key(auth_client, "reader", expires_at=time.time() + 1.0)
    headers = {"x-api-key": made["secret"]}
    assert auth_client.get("/v1/epochs", headers=headers).status_code == 200
    time.sleep(max(0.0, made["expires_at"] - time.time()) + 0.1)
    response = auth_client.get("/v1/epochs", headers=headers)
    assert_envelope(response, 401, "AuthenticationError", "api_key_expired")


def test_expiry_in_the_past_is_refused(auth_client: httpx.Client) -> None:
    response = auth_client.post(
        "/v1/admin/api-keys",
        json={"name": "old", "role": "reader", "expires_at": 1.0},
        headers=admin_headers(),
    )
    assert_envelope(response, 400, "ValidationError")


def test_unknown_role_is_refused(auth_client: httpx.Client) -> None:
    response = auth_client.post(
        "/v1/admin/api-keys", json={"name": "x", "role": "root"}, headers=admin_headers()
    )
    assert_envelope(response, 400, "ValidationError")


def test_last_used_at_is_recorded(auth_client: httpx.Client) -> None:
    made = create_key(auth_client, "reader")
    assert made["last_used_at"] is None
    before = time.time()
    auth_client.get("/v1/epochs", headers={"x-api-key": made["secret"]})
    keys = auth_client.get("/v1/admin/api-keys", headers=admin_headers()).json()["keys"]
    used = next(k for k in keys if k["id"] == made["id"])["last_used_at"]
    assert used is not None and used >= before - 1


def test_last_usable_admin_key_cannot_be_disabled(auth_client: httpx.Client) -> None:
    response = auth_client.post("/v1/admin/api-keys/root/disable", headers=admin_headers())
    assert_envelope(response, 409, "ConflictError", "last_admin_key")


def test_trust_outcome_is_written_through_the_engine(auth_client: httpx.Client) -> None:
    agent = fresh_agent().agent_id
    response = auth_client.post(
        f"/v1/admin/trust/{agent}/outcome", json={"accurate": True}, headers=admin_headers()
    )
    assert response.status_code == 201, response.text
    assert set(response.json()) == {"id", "lsn", "status"}
    info = auth_client.get(f"/v1/agents/{agent}", headers=admin_headers()).json()
    assert info["trust"] > 0.5
    bad = auth_client.post(
        f"/v1/admin/trust/{agent}/outcome", json={"accurate": "yes"}, headers=admin_headers()
    )
    assert_envelope(bad, 400, "ValidationError")


# -- restarts and start-up ------------------------------------------------------------


def _start(tmp_path: Path, name: str, **env: str) -> ServerProcess:
    return ServerProcess(tmp_path / "data", tmp_path / f"{name}.log", **env)


def test_keys_and_their_state_survive_a_restart(tmp_path: Path) -> None:
    env = {"STEMEDB_AUTH_ENABLED": "true", "STEMEDB_ROOT_API_KEY": ROOT_KEY}
    first = _start(tmp_path, "first", **env)
    try:
        with httpx.Client(base_url=first.url, timeout=30) as http:
            kept = create_key(http, "writer", name="kept")
            gone = create_key(http, "reader", name="gone")
            http.post(f"/v1/admin/api-keys/{gone['id']}/disable", headers=admin_headers())
            http.get("/v1/epochs", headers={"x-api-key": kept["secret"]})
    finally:
        assert first.stop() == 0
    second = _start(tmp_path, "second", **env)
    try:
        with httpx.Client(base_url=second.url, timeout=30) as http:
            keys = {
                k["id"]: k
                for k in http.get("/v1/admin/api-keys", headers=admin_headers()).json()["keys"]
            }
            assert [k["id"] for k in keys.values()].count("root") == 1  # seeding is idempotent
            assert keys[kept["id"]]["last_used_at"] is not None  # flushed at shutdown
            assert keys[gone["id"]]["enabled"] is False
            ok = http.get("/v1/epochs", headers={"x-api-key": kept["secret"]})
            assert ok.status_code == 200
            refused = http.get("/v1/epochs", headers={"x-api-key": gone["secret"]})
            assert_envelope(refused, 401, "AuthenticationError", "api_key_disabled")
    finally:
        assert second.stop() == 0
    assert (tmp_path / "data" / "keys.sqlite").stat().st_mode & 0o077 == 0


def test_a_new_root_key_value_rotates_the_root_key(tmp_path: Path) -> None:
    old_root, new_root = "a" * 40, "b" * 40
    first = _start(tmp_path, "first", STEMEDB_AUTH_ENABLED="true", STEMEDB_ROOT_API_KEY=old_root)
    assert first.stop() == 0
    second = _start(tmp_path, "second", STEMEDB_AUTH_ENABLED="true", STEMEDB_ROOT_API_KEY=new_root)
    try:
        with httpx.Client(base_url=second.url, timeout=30) as http:
            old = http.get("/v1/admin/api-keys", headers={"x-api-key": old_root})
            assert_envelope(old, 401, "AuthenticationError", "invalid_api_key")
            new = http.get("/v1/admin/api-keys", headers={"x-api-key": new_root})
            assert [k["id"] for k in new.json()["keys"]] == ["root"]
    finally:
        assert second.stop() == 0


def test_server_refuses_to_start_with_auth_on_and_no_admin_key(tmp_path: Path) -> None:
    code, log = start_refused(tmp_path / "data", STEMEDB_AUTH_ENABLED="true")
    assert code != 0
    assert "Error: ValidationError: auth.enabled is true but there is no usable admin" in log
    assert "STEMEDB_ROOT_API_KEY" in log


def test_server_refuses_a_short_root_key(tmp_path: Path) -> None:
    code, log = start_refused(
        tmp_path / "data", STEMEDB_AUTH_ENABLED="true", STEMEDB_ROOT_API_KEY="tiny-secret-value"
    )
    assert code != 0
    assert "at least 32 characters" in log
    assert "tiny-secret-value" not in log  # the secret itself is never logged


def test_anonymous_reads_when_reads_are_open_but_a_sent_key_must_be_valid(
    tmp_path: Path,
) -> None:
    server = _start(
        tmp_path, "open-reads", STEMEDB_AUTH_ENABLED="true", STEMEDB_ROOT_API_KEY=ROOT_KEY
    )
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert http.get("/v1/epochs").status_code == 200
            bad = http.get("/v1/epochs", headers={"x-api-key": "stm_nope"})
            assert_envelope(bad, 401, "AuthenticationError", "invalid_api_key")
            write = send(http, "/v1/assert", _assertion_body("test/anon"))
            assert_envelope(write, 401, "AuthenticationError", "missing_api_key")
            admin = http.get("/v1/admin/circuit-breakers")
            assert_envelope(admin, 401, "AuthenticationError", "missing_api_key")
    finally:
        assert server.stop() == 0


def test_search_and_listings_are_reads_behind_the_key_check(
    auth_client: httpx.Client, reader_key: str
) -> None:
    for path, params in (
        ("/v1/search", {"q": "semaglutide"}),
        ("/v1/subjects", {}),
        ("/v1/subjects/drugs/semaglutide/predicates", {}),
    ):
        refused = auth_client.get(path, params=params)
        assert_envelope(refused, 401, "AuthenticationError", "missing_api_key")
        read = auth_client.get(path, params=params, headers={"x-api-key": reader_key})
        assert read.status_code == 200, read.text
