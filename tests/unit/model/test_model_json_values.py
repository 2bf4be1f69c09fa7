"""``json`` object values and integer numbers (ADR 0019): the vectors of
``tests/data/signing_vectors_json.json``, checked by our model code and by the independent
reference of ``test_model_signing_vectors``; the rules of a json value; and numbers that
keep the form their canonical JSON has."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import msgspec
import nacl.signing
import pytest
import rfc8785
from model_factories import NOW
from test_model_signing_vectors import TAGS, reference_content

from stemedb.errors import ValidationError
from stemedb.model import ids
from stemedb.model.canonical import canonical_json
from stemedb.model.json_value import JSON_VALUE_MAX_BYTES, JSON_VALUE_MAX_DEPTH
from stemedb.model.records import Assertion, ObjectValue
from stemedb.model.signing import AgentKey, make_object, sign_assertion
from stemedb.model.validation import check_object, verify_record

VECTORS_PATH = Path(__file__).parents[2] / "data" / "signing_vectors_json.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))["vectors"]
DOC_PATH = Path(__file__).parents[3] / "docs" / "design" / "signing.md"
KEY = AgentKey.from_seed(b"\x07" * 32)


def test_the_vectors_cover_an_object_an_array_and_an_integer_number() -> None:
    kinds = {v["record"]["object"]["type"] for v in VECTORS}
    assert kinds == {"json", "number"}
    values = [v["record"]["object"]["value"] for v in VECTORS]
    assert any(type(value) is dict for value in values)
    assert any(type(value) is list for value in values)
    assert 3 in values


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_independent_reference_agrees_with_vector(vector: dict[str, Any]) -> None:
    canonical = rfc8785.dumps(reference_content("assertion", vector["record"]))
    assert canonical == vector["canonical_json"].encode("utf-8")
    assert hashlib.sha256(TAGS["assertion"] + canonical).hexdigest() == vector["content_id"]
    signing_key = nacl.signing.SigningKey(bytes.fromhex(vector["seed_hex"]))
    assert bytes(signing_key.verify_key).hex() == vector["public_key_hex"]
    message = vector["signature_message"].encode("ascii")
    assert message == f"stemedb/sig/v1:{vector['content_id']}:{vector['signed_at']}".encode()
    assert signing_key.sign(message).signature.hex() == vector["signature_hex"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_model_code_agrees_with_vector_from_wire_bytes(vector: dict[str, Any]) -> None:
    wire = json.dumps(vector["record"], ensure_ascii=False).encode()
    record = msgspec.json.decode(wire, type=Assertion)
    assert canonical_json(ids.assertion_content(record)).decode() == vector["canonical_json"]
    assert verify_record(record, now=vector["signed_at"]) == vector["content_id"]
    key = AgentKey.from_hex(vector["seed_hex"])
    assert key.sign(vector["content_id"], vector["signed_at"]).signature == vector["signature_hex"]
    # stored and read back (msgpack, as both stores keep records): the same value, types too
    again = msgspec.msgpack.decode(msgspec.msgpack.encode(record), type=Assertion)
    assert again == record
    assert json.dumps(msgspec.to_builtins(again.object.value)) == json.dumps(
        vector["record"]["object"]["value"]
    )


def test_design_doc_shows_the_json_vectors() -> None:
    doc = DOC_PATH.read_text(encoding="utf-8")
    assert "tests/data/signing_vectors_json.json" in doc
    for vector in VECTORS:
        assert f": `{vector['name']}` (" in doc, vector["name"]
        for field in ("content_id", "signature_hex"):
            assert f"`{vector[field]}`" in doc, (vector["name"], field)
        assert f"\n{vector['canonical_json']}\n" in doc, vector["name"]


def test_an_integer_number_reads_back_as_an_integer_with_the_id_of_its_float_spelling() -> None:
    (integer,) = [v for v in VECTORS if v["record"]["object"]["type"] == "number"]
    wire = json.dumps(integer["record"]).encode()
    assert b'"value": 3}' in wire
    record = msgspec.json.decode(wire, type=Assertion)
    assert type(record.object.value) is int
    assert b'"value":3}' in msgspec.json.encode(record)
    as_float = json.loads(wire)
    as_float["object"]["value"] = 3.0
    spelled = msgspec.json.decode(json.dumps(as_float).encode(), type=Assertion)
    assert spelled.object.value == 3 and type(spelled.object.value) is int
    assert ids.record_id(spelled) == integer["content_id"]


@pytest.mark.parametrize(
    ("written", "held"),
    [(3, 3), (3.0, 3), (-0.0, 0), (2.5, 2.5), (1e300, 1e300), (2**53 - 1, 2**53 - 1)],
)
def test_a_number_is_held_in_the_form_of_its_canonical_json(written: float, held: float) -> None:
    value = ObjectValue("number", written).value
    assert (value, type(value)) == (held, type(held))
    assert canonical_json(value) == canonical_json(written)


def test_an_integer_beyond_the_exact_range_stays_a_float_as_before() -> None:
    value = ObjectValue("number", 2**60).value
    assert type(value) is float and value == float(2**60)
    record = sign_assertion(KEY, subject="s", predicate="p", object=2**60, confidence=0.5)
    assert verify_record(record, now=record.timestamp)


def test_make_object_keeps_integers_and_takes_dicts_and_lists_as_json() -> None:
    assert make_object(4) == ObjectValue("number", 4) and type(make_object(4).value) is int
    assert make_object({"a": 1}) == ObjectValue("json", {"a": 1})
    assert make_object([1]) == ObjectValue("json", [1])


def test_equal_json_values_have_one_id_whatever_their_key_order_and_number_spelling() -> None:
    first = sign_assertion(
        KEY,
        subject="s",
        predicate="p",
        object={"b": [1.0, 2], "a": "x"},
        confidence=0.5,
        timestamp=NOW,
        signed_at=NOW,
    )
    second = sign_assertion(
        KEY,
        subject="s",
        predicate="p",
        object={"a": "x", "b": [1, 2.0]},
        confidence=0.5,
        timestamp=NOW,
        signed_at=NOW,
    )
    assert ids.record_id(first) == ids.record_id(second)
    text = sign_assertion(
        KEY,
        subject="s",
        predicate="p",
        object='{"a":"x","b":[1,2]}',
        confidence=0.5,
        timestamp=NOW,
        signed_at=NOW,
    )
    assert ids.record_id(text) != ids.record_id(first)


def _rule(value: Any) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        check_object(ObjectValue("json", value))
    return caught.value.field, caught.value.rule


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_a_json_value_is_an_object_or_an_array() -> None:
    for scalar in ("text", 3, 2.5, True, None):
        assert _rule(scalar) == ("object.value", "type_mismatch")
    check_object(ObjectValue("json", {}))
    check_object(ObjectValue("json", []))


def test_the_size_cap_counts_canonical_bytes_and_names_the_field() -> None:
    overhead = len(canonical_json({"k": ""}))
    check_object(ObjectValue("json", {"k": "x" * (JSON_VALUE_MAX_BYTES - overhead)}))
    assert _rule({"k": "x" * (JSON_VALUE_MAX_BYTES - overhead + 1)}) == ("object.value", "too_long")
    # whitespace is not counted: the cap is on the canonical form, not on what was sent
    spaced = json.loads(json.dumps({"k": "x" * (JSON_VALUE_MAX_BYTES - overhead)}, indent=8))
    check_object(ObjectValue("json", spaced))


def test_the_depth_cap() -> None:
    check_object(ObjectValue("json", _nested(JSON_VALUE_MAX_DEPTH)))
    assert _rule(_nested(JSON_VALUE_MAX_DEPTH + 1)) == ("object.value", "too_deep")
    assert _rule({"a": {"b": _nested(JSON_VALUE_MAX_DEPTH - 1)}}) == ("object.value", "too_deep")


def test_what_jcs_cannot_carry_is_named_by_its_path() -> None:
    assert _rule({"a": [1, {"b": 2**53}]}) == ("object.value.a[1].b", "integer_out_of_range")
    assert _rule([{"k": "\ud800"}]) == ("object.value[0].k", "invalid_unicode")
    assert _rule({"a": float("nan")}) == ("object.value.a", "not_finite")
