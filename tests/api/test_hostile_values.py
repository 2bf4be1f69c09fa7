"""Hostile values on the write and read routes (issue 17 item 6), against a real node:
each is a 400 envelope naming the field (a 401 where the body parses and only the
signature cannot hold), and afterwards the node holds exactly what it held before —
nothing written, the stored claim read back unchanged.

Integers beyond ±(2**53 - 1): JCS signs every number as an IEEE-754 double, so one no
double equals (``2**53 + 1``) is refused naming its field (``integer_out_of_range``)
instead of a ``bad_signature`` against the rounded value, or a 500 for one too large
for a float; one a double holds (``2**60``) is accepted, as before (ADR 0019)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest
from api_helpers import assert_envelope
from support.server import ServerProcess

from stemedb.model.signing import AgentKey, sign_assertion, sign_epoch, sign_source, sign_vote

JSON = {"content-type": "application/json"}
KEY = AgentKey.from_seed(b"h" * 32)
SUBJECT = "hostile/base"
BEYOND = 2**53 + 1  # no double equals it
Body = dict[str, Any]


@dataclass(frozen=True)
class Stored:
    claim_id: str
    lsn: int
    answer: dict[str, Any]


def snapshot(client: httpx.Client) -> tuple[int, list[dict[str, Any]]]:
    """The last LSN and the stored claim (the parts that do not move with the clock)."""
    page = client.get("/v1/feed", params={"after": 0, "limit": 1000}).json()
    claims = client.get("/v1/query", params={"subject": SUBJECT, "predicate": "p"}).json()
    held = [{k: c[k] for k in ("id", "lsn", "object", "confidence")} for c in claims["claims"]]
    return int(page["last_lsn"]), held


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("hostile-values")
    proc = ServerProcess(base / "data", base / "log", isolated=True)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def stored(node: ServerProcess) -> Stored:
    claim = sign_assertion(KEY, subject=SUBJECT, predicate="p", object="v", confidence=0.5)
    with node.client() as client:
        created = client.post("/v1/assert", content=msgspec.json.encode(claim), headers=JSON)
        assert created.status_code == 201, created.text
        lsn, claims = snapshot(client)
    return Stored(created.json()["id"], lsn, {"claims": claims})


def _assertion(**changes: Any) -> Body:
    claim = sign_assertion(KEY, subject="hostile/new", predicate="p", object="v", confidence=0.5)
    body: Body = msgspec.to_builtins(claim)
    body.update(changes)
    return body


def _signed_at(value: int) -> Body:
    body = _assertion()
    body["signatures"][0]["signed_at"] = value
    return body


def _vote(claim_id: str, **changes: Any) -> Body:
    body: Body = msgspec.to_builtins(sign_vote(KEY, assertion_id=claim_id, weight=1.0))
    body.update(changes)
    return body


def _source(**changes: Any) -> Body:
    body: Body = msgspec.to_builtins(sign_source(KEY, uri="https://x.example/a", content="c"))
    body.update(changes)
    return body


def _epoch(**changes: Any) -> Body:
    body: Body = msgspec.to_builtins(sign_epoch(KEY, name="hostile"))
    body.update(changes)
    return body


def _number(value: object) -> Body:
    return _assertion(object={"type": "number", "value": value})


@dataclass(frozen=True)
class Case:
    path: str
    body: Callable[[str], Body | bytes]  # given the stored claim's id
    status: int
    code: str
    field: str | None  # details.field (None: not checked)
    rule: str | None = None


def _replace(old: bytes, new: bytes) -> Callable[[str], bytes]:
    def body(_: str) -> bytes:
        encoded = json.dumps(_assertion(), separators=(",", ":")).encode()
        assert old in encoded
        return encoded.replace(old, new, 1)

    return body


TEXT_OBJECT = b'"object":{"type":"text","value":"v"}'
NEW_SUBJECT = b'"subject":"hostile/new"'
DEEP_VALUE = b'"object":{"type":"json","value":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
BAD = "invalid_field"
INT_RULE = "integer_out_of_range"
CASES = {
    # integers beyond ±(2**53 - 1), on every write route
    "number-2**53+1": Case(
        "/v1/assert", lambda _: _number(BEYOND), 400, BAD, "object.value", INT_RULE
    ),
    "number--2**63-1": Case(
        "/v1/assert", lambda _: _number(-(2**63) - 1), 400, BAD, "object.value", INT_RULE
    ),
    "number-400-digits": Case(
        "/v1/assert", lambda _: _number(10**400 + 1), 400, BAD, "object.value", INT_RULE
    ),
    "json-value-int": Case(
        "/v1/assert",
        lambda _: _assertion(object={"type": "json", "value": {"a": [BEYOND]}}),
        400,
        BAD,
        "object.value.a[0]",
        INT_RULE,
    ),
    "confidence-int": Case(
        "/v1/assert", lambda _: _assertion(confidence=BEYOND), 400, BAD, "confidence"
    ),
    "timestamp-int": Case(
        "/v1/assert", lambda _: _assertion(timestamp=BEYOND), 400, BAD, "timestamp", "out_of_range"
    ),
    "signed-at-int": Case(
        "/v1/assert",
        lambda _: _signed_at(-BEYOND),
        400,
        BAD,
        "signatures[0].signed_at",
        "out_of_range",
    ),
    "valid-from-2**64": Case(
        "/v1/assert", lambda _: _assertion(valid_from=2**64), 400, BAD, "valid_from"
    ),
    "vote-weight-int": Case("/v1/vote", lambda i: _vote(i, weight=BEYOND), 400, BAD, "weight"),
    "vote-timestamp-int": Case(
        "/v1/vote", lambda i: _vote(i, timestamp=BEYOND), 400, BAD, "timestamp", "out_of_range"
    ),
    "source-published-at": Case(
        "/v1/sources",
        lambda _: _source(published_at=BEYOND),
        400,
        BAD,
        "published_at",
        "out_of_range",
    ),
    "epoch-timestamp-int": Case(
        "/v1/epoch", lambda _: _epoch(timestamp=BEYOND), 400, BAD, "timestamp", "out_of_range"
    ),
    # out-of-range and non-finite numbers
    "confidence-1.5": Case(
        "/v1/assert", lambda _: _assertion(confidence=1.5), 400, BAD, "confidence", "out_of_range"
    ),
    "confidence-negative": Case(
        "/v1/assert", lambda _: _assertion(confidence=-0.1), 400, BAD, "confidence", "out_of_range"
    ),
    "confidence-NaN": Case(
        "/v1/assert",
        _replace(b'"confidence":0.5', b'"confidence":NaN'),
        400,
        "malformed_body",
        "body",
    ),
    "confidence-1e999": Case(
        "/v1/assert", _replace(b'"confidence":0.5', b'"confidence":1e999'), 400, BAD, "confidence"
    ),
    "number-1e999": Case(
        "/v1/assert",
        _replace(TEXT_OBJECT, b'"object":{"type":"number","value":-1e999}'),
        400,
        BAD,
        "object.value",
    ),
    # deep nesting, lone surrogates, control characters, huge names
    "json-value-40-deep": Case(
        "/v1/assert",
        lambda _: _assertion(object={"type": "json", "value": json.loads("[" * 40 + "]" * 40)}),
        400,
        BAD,
        "object.value",
        "too_deep",
    ),
    "value-10000-deep": Case(
        "/v1/assert", _replace(TEXT_OBJECT, DEEP_VALUE), 400, "too_deep", "body"
    ),
    "lone-surrogate-escape": Case(
        "/v1/assert", _replace(NEW_SUBJECT, b'"subject":"a\\ud800b"'), 400, "malformed_body", "body"
    ),
    "lone-surrogate-utf8": Case(
        "/v1/assert",
        _replace(NEW_SUBJECT, b'"subject":"a\xed\xa0\x80b"'),
        400,
        "malformed_body",
        "body",
    ),
    "nul-in-subject": Case(
        "/v1/assert",
        lambda _: _assertion(subject="a\x00b"),
        400,
        BAD,
        "subject",
        "control_character",
    ),
    "escape-in-predicate": Case(
        "/v1/assert",
        lambda _: _assertion(predicate="\x1b[31mred"),
        400,
        BAD,
        "predicate",
        "control_character",
    ),
    "c1-in-ref": Case(
        "/v1/assert",
        lambda _: _assertion(object={"type": "ref", "value": "a\x85b"}),
        400,
        BAD,
        "object.value",
        "control_character",
    ),
    "100kb-subject": Case(
        "/v1/assert", lambda _: _assertion(subject="s" * 100_000), 400, BAD, "subject", "too_long"
    ),
    "100kb-predicate": Case(
        "/v1/assert",
        lambda _: _assertion(predicate="p" * 100_000),
        400,
        BAD,
        "predicate",
        "too_long",
    ),
    "nul-in-source-uri": Case(
        "/v1/sources",
        lambda _: _source(uri="https://x.example/\x00"),
        400,
        BAD,
        "uri",
        "control_character",
    ),
    # wrong shapes
    "batch-not-a-list": Case(
        "/v1/assert/batch", lambda _: {"assertions": {"0": 1}}, 400, BAD, "assertions"
    ),
    "string-confidence": Case(
        "/v1/assert", lambda _: _assertion(confidence="0.5"), 400, BAD, "confidence"
    ),
    "bool-timestamp": Case(
        "/v1/assert", lambda _: _assertion(timestamp=True), 400, BAD, "timestamp"
    ),
    # duplicate keys: the last wins (msgspec), so the signature over the first fails
    "duplicate-subject-key": Case(
        "/v1/assert",
        _replace(NEW_SUBJECT, b'"subject":"hostile/new","subject":"hostile/other"'),
        401,
        "bad_signature",
        None,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_hostile_write_is_refused_naming_the_field_and_stores_nothing(
    node: ServerProcess, stored: Stored, name: str
) -> None:
    case = CASES[name]
    built = case.body(stored.claim_id)
    content = built if isinstance(built, bytes) else json.dumps(built).encode()
    with node.client() as client:
        answer = client.post(case.path, content=content, headers=JSON)
        kind = "AuthenticationError" if case.status == 401 else None
        error = assert_envelope(answer, case.status, kind or answer.json()["error"]["type"])
        assert error["code"] == case.code, error
        assert case.status != 400 or error["type"] in ("ValidationError", "SerializationError")
        if case.field is not None:
            assert error["details"]["field"] == case.field, error
        if case.rule is not None:
            assert error["details"]["rule"] == case.rule, error
        if case.rule == INT_RULE:
            assert "IEEE-754" in error["message"] or "exactly" in error["message"], error
        assert snapshot(client) == (stored.lsn, stored.answer["claims"])


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/query", {"subject": SUBJECT, "predicate": "p", "limit": "0"}, "limit"),
        ("/v1/query", {"subject": SUBJECT, "predicate": "p", "limit": str(10**30)}, "limit"),
        ("/v1/query", {"subject": SUBJECT, "predicate": "p", "limit": "1e3"}, "limit"),
        ("/v1/feed", {"after": "0", "limit": "-1"}, "limit"),
        ("/v1/search", {"q": "v", "limit": "101"}, "limit"),
        ("/v1/sources", {"limit": "abc"}, "limit"),
        ("/v1/subjects", {"limit": "0"}, "limit"),
        ("/v1/query", {"subject": "a\x00b", "predicate": "p"}, "subject"),
    ],
)
def test_bad_read_parameters_are_400_naming_them(
    node: ServerProcess, stored: Stored, path: str, params: dict[str, str], field: str
) -> None:
    with node.client() as client:
        error = assert_envelope(client.get(path, params=params), 400, "ValidationError")
        assert error["details"]["field"] == field, error
        assert snapshot(client) == (stored.lsn, stored.answer["claims"])


@pytest.mark.parametrize("prefix", ["%", "_", "hostile%", "hostile_base", "%/base"])
def test_like_wildcards_in_a_prefix_match_themselves_only(
    node: ServerProcess, stored: Stored, prefix: str
) -> None:
    with node.client() as client:
        literal = client.get("/v1/query", params={"subject_prefix": prefix, "predicate": "p"})
        assert literal.status_code == 200, literal.text
        assert literal.json()["results"] == []
        subjects = client.get("/v1/subjects", params={"prefix": prefix})
        assert subjects.status_code == 200 and subjects.json()["subjects"] == []
        real = client.get("/v1/query", params={"subject_prefix": "hostile/", "predicate": "p"})
        assert [r["subject"] for r in real.json()["results"]] == [SUBJECT]


def test_a_batch_refuses_the_inexact_integer_item_alone(
    node: ServerProcess, stored: Stored
) -> None:
    good = _assertion(subject="hostile/batch-good")
    good_claim = sign_assertion(
        KEY, subject="hostile/batch-good", predicate="p", object=2**60, confidence=0.5
    )
    bad = _number(BEYOND)
    body = {"assertions": [msgspec.to_builtins(good_claim), bad, good | {"subject": SUBJECT}]}
    with node.client() as client:
        answer = client.post("/v1/assert/batch", content=json.dumps(body), headers=JSON)
        assert answer.status_code == 207, answer.text
        results = answer.json()["results"]
        assert results[0]["status"] == "created"
        assert results[1]["status"] == "error"
        assert results[1]["error"]["code"] == BAD
        assert results[1]["error"]["details"] == {
            "field": "assertions[1].object.value",
            "rule": INT_RULE,
        }
        claims = client.get(
            "/v1/query", params={"subject": "hostile/batch-good", "predicate": "p"}
        ).json()["claims"]
        assert [c["object"] for c in claims] == [{"type": "number", "value": float(2**60)}]
        _, held = snapshot(client)
        assert held == stored.answer["claims"]


def test_an_integer_a_double_holds_is_accepted_as_before(node: ServerProcess) -> None:
    """``2**60`` written as an integer literal: the same content id as the float, read
    back as the number it is."""
    claim = sign_assertion(KEY, subject="hostile/exact", predicate="p", object=2**60, confidence=1)
    body = json.dumps(msgspec.to_builtins(claim) | {"object": {"type": "number", "value": 2**60}})
    assert str(2**60) in body
    with node.client() as client:
        answer = client.post("/v1/assert", content=body, headers=JSON)
        assert answer.status_code == 201, answer.text
        read = client.get(f"/v1/assertions/{answer.json()['id']}").json()
    assert read["assertion"]["object"]["value"] == 2**60


def test_nothing_hostile_reached_the_store(node: ServerProcess, stored: Stored) -> None:
    """After every case above (the module's tests run in order): the stored claim is as
    written and no request was answered 500."""
    with node.client() as client:
        read = client.get(f"/v1/assertions/{stored.claim_id}").json()["assertion"]
    assert (read["subject"], read["object"]) == (SUBJECT, {"type": "text", "value": "v"})
    assert not [line for line in node.log_lines() if '"status":500' in line]
