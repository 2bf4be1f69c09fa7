"""Error answers of a real server become typed exceptions with code, status, details and
the request id; no answer at all becomes NetworkError; keys come from the environment."""

from __future__ import annotations

from pathlib import Path

import httpx
import msgspec
import pytest
from support.client_server import ServerProcess, free_port

import stemedb.errors as base
from stemedb.client import (
    AgentKey,
    ApiError,
    AuthenticationError,
    Client,
    NetworkError,
    NotFoundError,
    RetryPolicy,
    ValidationError,
    key_from_env,
    load_key_file,
)


def test_not_found_carries_code_status_and_the_servers_request_id(db: Client) -> None:
    with pytest.raises(NotFoundError) as info:
        db.get_assertion("0" * 64)
    error = info.value
    assert isinstance(error, base.NotFoundError) and isinstance(error, ApiError)
    assert (error.code, error.status, error.retryable) == ("assertion_not_found", 404, False)
    assert error.request_id and len(error.request_id) == 32
    assert error.type_name == "NotFoundError"


def test_validation_error_names_the_field(db: Client, subject: str) -> None:
    with pytest.raises(ValidationError) as info:
        db.query(subject, "risk", lens="no-such-lens")
    error = info.value
    assert isinstance(error, base.ValidationError)
    assert (error.status, error.code, error.field) == (400, "unknown_lens", "lens")
    assert error.details["field"] == "lens"


def test_tampered_signature_is_an_authentication_error(db: Client, subject: str) -> None:
    record = db.sign_assertion(subject, "risk", "rare", 0.8)
    forged = msgspec.structs.replace(record, confidence=0.9)  # signature no longer matches
    with pytest.raises(AuthenticationError) as info:
        db.assert_record(forged)
    assert info.value.code == "bad_signature" and info.value.status == 401


def test_vote_on_an_unknown_assertion_is_not_found(db: Client) -> None:
    with pytest.raises(NotFoundError) as info:
        db.vote("f" * 64, 1.0)
    assert info.value.status == 404 and info.value.request_id


def test_connection_refused_is_a_network_error_after_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    policy = RetryPolicy(max_retries=2, backoff_base_seconds=0.01)
    with Client(url, retry=policy) as client, pytest.raises(NetworkError) as info:
        client.health()
    error = info.value
    assert isinstance(error, base.NetworkError)
    assert isinstance(error.__cause__, httpx.ConnectError)
    assert error.status == 0 and error.retryable and error.code == "connect_error"
    assert error.request_id  # the id the client sent


def test_from_env_reads_url_private_key_and_api_key(server: ServerProcess, subject: str) -> None:
    key = AgentKey.from_seed(b"\x77" * 32)
    env = {
        "STEMEDB_URL": server.url,
        "STEMEDB_PRIVATE_KEY": key.seed_hex(),
        "STEMEDB_API_KEY": "stm_test",
    }
    with Client.from_env(env) as client:
        assert client.url == server.url and client.api_key == "stm_test"
        result = client.assert_(subject, "risk", "rare", 0.8)
        assert client.get_assertion(result.id).signatures[0].agent_id == key.agent_id


def test_from_env_reads_a_keygen_key_file(tmp_path: Path) -> None:
    key = AgentKey.generate()
    path = tmp_path / "agent.key"
    key.save(path)
    loaded = key_from_env({"STEMEDB_KEY_FILE": str(path)})
    assert loaded is not None and loaded.agent_id == key.agent_id
    assert load_key_file(path).agent_id == key.agent_id
    with Client.from_env({"STEMEDB_KEY_FILE": str(path)}) as client:
        assert client.url == "http://127.0.0.1:18180"
        assert client.key is not None and client.key.agent_id == key.agent_id


def test_private_key_wins_over_key_file_and_bad_values_name_the_variable(tmp_path: Path) -> None:
    env_key = AgentKey.from_seed(b"\x01" * 32)
    chosen = key_from_env(
        {"STEMEDB_PRIVATE_KEY": env_key.seed_hex(), "STEMEDB_KEY_FILE": str(tmp_path / "missing")}
    )
    assert chosen is not None and chosen.agent_id == env_key.agent_id
    assert key_from_env({}) is None
    with pytest.raises(base.ValidationError) as info:
        key_from_env({"STEMEDB_PRIVATE_KEY": "not-hex"})
    assert info.value.field == "STEMEDB_PRIVATE_KEY"
    with pytest.raises(base.ValidationError) as info:
        key_from_env({"STEMEDB_KEY_FILE": str(tmp_path / "missing")})
    assert info.value.field == "key_file"
