"""Bad input: each case gets its documented status, the error envelope, an
X-Request-Id, and stores nothing (the feed head does not move)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import msgspec
import pytest
from api_helpers import MAX_BATCH, MAX_BODY_BYTES, assert_envelope, last_lsn, now, post

from stemedb.model.records import Assertion, Signature
from stemedb.model.signing import AgentKey, sign_assertion


@pytest.fixture
def good(alice: AgentKey, subject: str) -> Assertion:
    return sign_assertion(alice, subject=subject, predicate="p", object="x", confidence=0.5)


def as_dict(record: Assertion) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(record)
    return out


def send_raw(client: httpx.Client, body: bytes, path: str = "/v1/assert") -> httpx.Response:
    return client.post(path, content=body, headers={"content-type": "application/json"})


def stores_nothing(client: httpx.Client, call: Callable[[], httpx.Response]) -> httpx.Response:
    before = last_lsn(client)
    response = call()
    assert last_lsn(client) == before, "a refused request stored something"
    return response


def test_malformed_json_is_400_serialization_error(client: httpx.Client) -> None:
    response = stores_nothing(client, lambda: send_raw(client, b'{"subject": "a",'))
    assert_envelope(response, 400, "SerializationError", "malformed_body")


def test_empty_body_is_400(client: httpx.Client) -> None:
    response = stores_nothing(client, lambda: send_raw(client, b""))
    assert_envelope(response, 400, "SerializationError", "empty_body")


def test_wrong_type_names_the_field(client: httpx.Client, good: Assertion) -> None:
    body = as_dict(good) | {"confidence": "high"}
    response = stores_nothing(client, lambda: post(client, "/v1/assert", body))
    error = assert_envelope(response, 400, "ValidationError")
    assert error["details"]["field"] == "confidence"


def test_nested_wrong_type_names_the_path(client: httpx.Client, good: Assertion) -> None:
    body = as_dict(good)
    body["signatures"][0]["signed_at"] = "yesterday"
    response = stores_nothing(client, lambda: post(client, "/v1/assert", body))
    error = assert_envelope(response, 400, "ValidationError")
    assert error["details"]["field"] == "signatures[0].signed_at"


def test_unknown_field_is_refused(client: httpx.Client, good: Assertion) -> None:
    body = as_dict(good) | {"truth": True}
    response = stores_nothing(client, lambda: post(client, "/v1/assert", body))
    error = assert_envelope(response, 400, "ValidationError", "unknown_field")
    assert error["details"]["field"] == "truth"


def test_missing_field_is_refused(client: httpx.Client, good: Assertion) -> None:
    body = as_dict(good)
    del body["predicate"]
    response = stores_nothing(client, lambda: post(client, "/v1/assert", body))
    error = assert_envelope(response, 400, "ValidationError", "missing_field")
    assert error["details"]["field"] == "predicate"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_numbers_are_refused(
    client: httpx.Client, good: Assertion, literal: bytes
) -> None:
    text = msgspec.json.encode(as_dict(good) | {"confidence": 0.123456})
    body = text.replace(b"0.123456", literal)
    response = stores_nothing(client, lambda: send_raw(client, body))
    assert response.status_code == 400
    assert_envelope(response, 400, response.json()["error"]["type"])


def test_confidence_out_of_range_is_400(
    client: httpx.Client, alice: AgentKey, subject: str
) -> None:
    record = sign_assertion(alice, subject=subject, predicate="p", object="x", confidence=1.5)
    response = stores_nothing(client, lambda: post(client, "/v1/assert", record))
    error = assert_envelope(response, 400, "ValidationError")
    assert error["details"]["field"] == "confidence"


def test_oversize_subject_is_400(client: httpx.Client, alice: AgentKey) -> None:
    record = sign_assertion(alice, subject="s" * 513, predicate="p", object="x", confidence=0.5)
    response = stores_nothing(client, lambda: post(client, "/v1/assert", record))
    error = assert_envelope(response, 400, "ValidationError")
    assert error["details"] == {"field": "subject", "rule": "too_long"}


def test_oversize_text_value_is_400(client: httpx.Client, alice: AgentKey, subject: str) -> None:
    text = "v" * (64 * 1024 + 1)
    record = sign_assertion(alice, subject=subject, predicate="p", object=text, confidence=0.5)
    response = stores_nothing(client, lambda: post(client, "/v1/assert", record))
    error = assert_envelope(response, 400, "ValidationError")
    assert error["details"]["field"] == "object.value"


def test_body_over_limit_by_content_length_is_413(client: httpx.Client) -> None:
    body = b" " * (MAX_BODY_BYTES + 1)
    response = stores_nothing(client, lambda: send_raw(client, body))
    assert_envelope(response, 413, "ValidationError", "body_too_large")


def test_streamed_body_over_limit_is_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY_BYTES // 10_000 + 2):
            yield b" " * 10_000

    def call() -> httpx.Response:
        return client.post(
            "/v1/assert", content=chunks(), headers={"content-type": "application/json"}
        )  # chunked

    response = stores_nothing(client, call)
    assert_envelope(response, 413, "ValidationError", "body_too_large")


def _with_signature(record: Assertion, **changes: Any) -> Assertion:
    sig = msgspec.structs.replace(record.signatures[0], **changes)
    return msgspec.structs.replace(record, signatures=(sig,))


def test_bad_hex_agent_id_is_400(client: httpx.Client, good: Assertion) -> None:
    record = _with_signature(good, agent_id="zz" * 32)
    response = stores_nothing(client, lambda: post(client, "/v1/assert", record))
    error = assert_envelope(response, 400, "ValidationError")
    assert error["details"] == {"field": "signatures[0].agent_id", "rule": "hex_format"}


def test_wrong_key_length_is_400(client: httpx.Client, good: Assertion) -> None:
    record = _with_signature(good, agent_id=good.signatures[0].agent_id[:62])
    response = stores_nothing(client, lambda: post(client, "/v1/assert", record))
    error = assert_envelope(response, 400, "ValidationError")
    assert error["details"]["field"] == "signatures[0].agent_id"


def test_uppercase_signature_hex_is_400(client: httpx.Client, good: Assertion) -> None:
    record = _with_signature(good, signature=good.signatures[0].signature.upper())
    response = stores_nothing(client, lambda: post(client, "/v1/assert", record))
    error = assert_envelope(response, 400, "ValidationError")
    assert error["details"]["field"] == "signatures[0].signature"


def test_bad_signature_is_401(client: httpx.Client, good: Assertion) -> None:
    record = _with_signature(good, signature=os.urandom(64).hex())
    response = stores_nothing(client, lambda: post(client, "/v1/assert", record))
    assert_envelope(response, 401, "AuthenticationError", "bad_signature")


def test_signature_over_other_content_is_401(client: httpx.Client, good: Assertion) -> None:
    record = msgspec.structs.replace(good, confidence=0.99)
    response = stores_nothing(client, lambda: post(client, "/v1/assert", record))
    assert_envelope(response, 401, "AuthenticationError", "bad_signature")


def test_signature_by_another_key_is_401(
    client: httpx.Client, good: Assertion, bob: AgentKey
) -> None:
    record = _with_signature(good, agent_id=bob.agent_id)
    response = stores_nothing(client, lambda: post(client, "/v1/assert", record))
    assert_envelope(response, 401, "AuthenticationError", "bad_signature")


def test_far_future_timestamp_is_400(client: httpx.Client, alice: AgentKey, subject: str) -> None:
    later = now() + 3600
    record = sign_assertion(
        alice, subject=subject, predicate="p", object="x", confidence=0.5, timestamp=later
    )
    response = stores_nothing(client, lambda: post(client, "/v1/assert", record))
    error = assert_envelope(response, 400, "ValidationError")
    assert error["details"] == {"field": "timestamp", "rule": "in_future"}


def test_vote_with_bad_signature_is_401(client: httpx.Client, good: Assertion) -> None:
    aid = post(client, "/v1/assert", good).json()["id"]
    sig = Signature(good.signatures[0].agent_id, os.urandom(64).hex(), now())
    vote = {"assertion_id": aid, "weight": 0.5, "timestamp": now(), "signature": sig}
    response = stores_nothing(client, lambda: post(client, "/v1/vote", vote))
    assert_envelope(response, 401, "AuthenticationError", "bad_signature")


def test_empty_batch_is_400(client: httpx.Client) -> None:
    response = stores_nothing(
        client, lambda: client.post("/v1/assert/batch", json={"assertions": []})
    )
    assert_envelope(response, 400, "ValidationError", "empty_batch")


def test_batch_over_limit_is_400(client: httpx.Client, alice: AgentKey, subject: str) -> None:
    items = [
        as_dict(sign_assertion(alice, subject=subject, predicate=f"p{i}", object=1, confidence=1))
        for i in range(MAX_BATCH + 1)
    ]
    response = stores_nothing(
        client, lambda: client.post("/v1/assert/batch", json={"assertions": items})
    )
    assert_envelope(response, 400, "ValidationError", "batch_too_large")


def test_unknown_lens_is_400(client: httpx.Client) -> None:
    response = client.get("/v1/query", params={"subject": "a", "predicate": "b", "lens": "vibes"})
    error = assert_envelope(response, 400, "ValidationError", "unknown_lens")
    assert error["details"]["field"] == "lens"


@pytest.mark.parametrize("cursor", ["not-a-cursor", "AAAA", "kwEBAQ"])
def test_bad_cursor_is_400(client: httpx.Client, cursor: str) -> None:
    params = {"subject": "a", "predicate": "b", "cursor": cursor}
    response = client.get("/v1/query", params=params)
    assert_envelope(response, 400, "ValidationError", "bad_cursor")


def test_bad_source_cursor_is_400(client: httpx.Client) -> None:
    response = client.get("/v1/sources", params={"cursor": "xyz"})
    assert_envelope(response, 400, "ValidationError", "bad_cursor")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"subject": "a", "predicate": "b", "lense": "recency"}, "lense"),
        ({"subject": "a", "predicate": "b", "limit": "many"}, "limit"),
        ({"subject": "a", "predicate": "b", "limit": "0"}, "limit"),
        ({"subject": "a", "predicate": "b", "limit": "1001"}, "limit"),
        ({"subject": "a", "predicate": "b", "as_of": "nan"}, "as_of"),
        ({"subject": "a", "predicate": "b", "valid_at": "inf"}, "valid_at"),
        ({"subject": "a", "predicate": "b", "include_retracted": "maybe"}, "include_retracted"),
        ({"subject": "a", "predicate": "b", "lifecycle": "draft"}, "lifecycle"),
        ({"subject": "a", "predicate": "b", "source_class": "gossip"}, "source_class"),
        ({"subject": "a", "predicate": "b", "epoch": "12"}, "epoch"),
        ({"subject": "a", "predicate": "b", "agent_id": "AB" * 32}, "agent_id"),
        ({"subject": "a", "predicate": "b", "max_stale_seconds": "-1"}, "max_stale_seconds"),
        ({"predicate": "b"}, "subject"),
        ({"subject": "a", "subject_prefix": "a", "predicate": "b"}, "subject"),
    ],
)
def test_bad_query_parameter_is_400_naming_it(
    client: httpx.Client, params: dict[str, str], field: str
) -> None:
    response = client.get("/v1/query", params=params)
    error = assert_envelope(response, 400, "ValidationError")
    assert error["details"]["field"] == field


def test_bad_item_of_post_query_names_its_index(client: httpx.Client) -> None:
    body = {"queries": [{"subject": "a", "predicate": "b"}, {"subject": "a", "lens": "x"}]}
    response = client.post("/v1/query", json=body)
    error = assert_envelope(response, 400, "ValidationError")
    assert error["details"]["field"] == "queries[1].lens"


def test_bad_hex_in_path_is_400(client: httpx.Client) -> None:
    for path in ("/v1/assertions/zz", "/v1/trace/12", "/v1/agents/xyz", "/v1/epochs/q"):
        assert_envelope(client.get(path), 400, "ValidationError")


def test_unknown_assertion_is_404(client: httpx.Client) -> None:
    response = client.get(f"/v1/assertions/{'0' * 64}")
    assert_envelope(response, 404, "NotFoundError", "assertion_not_found")
    assert_envelope(client.get(f"/v1/trace/{'0' * 64}"), 404, "NotFoundError")


def test_unknown_route_and_method_get_the_envelope(client: httpx.Client) -> None:
    assert_envelope(client.get("/v1/nothing"), 404, "NotFoundError", "route_not_found")
    assert_envelope(client.get("/v1/assert/"), 404, "NotFoundError", "route_not_found")
    response = client.delete("/v1/assert")
    assert_envelope(response, 405, "ValidationError", "method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_client_request_id_is_echoed(client: httpx.Client) -> None:
    response = client.get("/v1/nothing", headers={"X-Request-Id": "trace-42.a"})
    assert response.headers["x-request-id"] == "trace-42.a"
    assert response.json()["request_id"] == "trace-42.a"
    ok = client.get("/health", headers={"X-Request-Id": "trace-43"})
    assert ok.headers["x-request-id"] == "trace-43"


def test_insane_request_id_is_replaced(client: httpx.Client) -> None:
    response = client.get("/health", headers={"X-Request-Id": "a b" * 100})
    assert response.headers["x-request-id"] != "a b" * 100
    assert len(response.headers["x-request-id"]) == 32


def test_bad_agent_header_is_400(client: httpx.Client) -> None:
    response = client.get(
        "/v1/query", params={"subject": "a", "predicate": "b"}, headers={"X-Agent-Id": "me"}
    )
    error = assert_envelope(response, 400, "ValidationError")
    assert error["details"]["field"] == "X-Agent-Id"
