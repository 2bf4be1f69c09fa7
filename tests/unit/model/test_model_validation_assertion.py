"""Every assertion rule of ARCHITECTURE §2 rejects with the right field and rule."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from model_factories import ID, NOW, SKEW, fixed_key

from stemedb.errors import SignatureError, ValidationError
from stemedb.model.ids import assertion_id
from stemedb.model.records import Assertion, ObjectValue, Signature
from stemedb.model.signing import AgentKey, add_signature
from stemedb.model.validation import validate_assertion, verify_record


def _reject(a: Assertion) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        validate_assertion(a, now=NOW, max_skew_seconds=SKEW)
    assert info.value.details == {"field": info.value.field, "rule": info.value.rule}
    assert info.value.message
    return info.value


def _text(value: Any) -> ObjectValue:
    return ObjectValue(type="text", value=value)


BAD_FIELDS: list[tuple[str, dict[str, Any], str, str]] = [
    ("subject_empty", {"subject": ""}, "subject", "empty"),
    ("subject_513_bytes", {"subject": "s" * 513}, "subject", "too_long"),
    ("subject_multibyte_over_512", {"subject": "é" * 257}, "subject", "too_long"),
    ("subject_nul", {"subject": "a\x00b"}, "subject", "control_character"),
    ("subject_newline", {"subject": "a\nb"}, "subject", "control_character"),
    ("subject_del", {"subject": "a\x7f"}, "subject", "control_character"),
    ("subject_c1", {"subject": "a\x85"}, "subject", "control_character"),
    ("subject_not_string", {"subject": 7}, "subject", "type"),
    ("subject_lone_surrogate", {"subject": "a\ud800"}, "subject", "invalid_unicode"),
    ("predicate_empty", {"predicate": ""}, "predicate", "empty"),
    ("predicate_257_bytes", {"predicate": "p" * 257}, "predicate", "too_long"),
    ("predicate_tab", {"predicate": "a\tb"}, "predicate", "control_character"),
    ("object_not_object", {"object": "rare"}, "object", "type"),
    ("object_unknown_type", {"object": ObjectValue(type="blob", value="x")}, "object.type", "enum"),  # type: ignore[arg-type]
    ("text_over_64k", {"object": _text("x" * (64 * 1024 + 1))}, "object.value", "too_long"),
    ("text_given_number", {"object": _text(3.0)}, "object.value", "type_mismatch"),
    (
        "number_given_bool",
        {"object": ObjectValue(type="number", value=True)},
        "object.value",
        "type_mismatch",
    ),
    (
        "number_given_string",
        {"object": ObjectValue(type="number", value="3")},
        "object.value",
        "type_mismatch",
    ),
    (
        "number_nan",
        {"object": ObjectValue(type="number", value=float("nan"))},
        "object.value",
        "not_finite",
    ),
    (
        "number_infinite",
        {"object": ObjectValue(type="number", value=float("inf"))},
        "object.value",
        "not_finite",
    ),
    (
        "boolean_given_number",
        {"object": ObjectValue(type="boolean", value=1.0)},
        "object.value",
        "type_mismatch",
    ),
    (
        "ref_given_bool",
        {"object": ObjectValue(type="ref", value=False)},
        "object.value",
        "type_mismatch",
    ),
    ("ref_empty", {"object": ObjectValue(type="ref", value="")}, "object.value", "empty"),
    (
        "ref_control_char",
        {"object": ObjectValue(type="ref", value="a\rb")},
        "object.value",
        "control_character",
    ),
    (
        "ref_too_long",
        {"object": ObjectValue(type="ref", value="r" * 513)},
        "object.value",
        "too_long",
    ),
    ("confidence_above_one", {"confidence": 1.0001}, "confidence", "out_of_range"),
    ("confidence_negative", {"confidence": -0.1}, "confidence", "out_of_range"),
    ("confidence_nan", {"confidence": float("nan")}, "confidence", "not_finite"),
    ("confidence_bool", {"confidence": True}, "confidence", "type"),
    ("confidence_string", {"confidence": "0.5"}, "confidence", "type"),
    ("source_hash_uppercase", {"source_hash": "AB" * 32}, "source_hash", "hex_format"),
    ("source_hash_short", {"source_hash": "ab" * 31}, "source_hash", "hex_format"),
    ("source_class_unknown", {"source_class": "blog"}, "source_class", "enum"),
    ("epoch_not_hex", {"epoch": "epoch-1"}, "epoch", "hex_format"),
    ("parent_not_hex", {"parent": "z" * 64}, "parent", "hex_format"),
    ("lifecycle_unknown", {"lifecycle": "draft"}, "lifecycle", "enum"),
    ("valid_from_float", {"valid_from": 1.5}, "valid_from", "type"),
    ("valid_to_bool", {"valid_to": True}, "valid_to", "type"),
    (
        "valid_to_before_valid_from",
        {"valid_from": 10, "valid_to": 9},
        "valid_to",
        "before_valid_from",
    ),
    ("timestamp_negative", {"timestamp": -1}, "timestamp", "negative"),
    ("timestamp_beyond_skew", {"timestamp": NOW + SKEW + 1}, "timestamp", "in_future"),
    ("timestamp_float", {"timestamp": float(NOW)}, "timestamp", "type"),
    ("timestamp_beyond_json_range", {"timestamp": -(2**60)}, "timestamp", "out_of_range"),
]


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [case[1:] for case in BAD_FIELDS],
    ids=[case[0] for case in BAD_FIELDS],
)
def test_broken_field_is_rejected(
    assertion: Assertion, change: dict[str, Any], field: str, rule: str
) -> None:
    error = _reject(msgspec.structs.replace(assertion, **change))
    assert (error.field, error.rule) == (field, rule)


GOOD_FIELDS: list[dict[str, Any]] = [
    {"subject": "s" * 512},
    {"subject": "é" * 256},
    {"subject": "fda://label/123:section"},
    {"subject": "药物/司美格鲁肽 \U0001f9ec"},
    {"predicate": "p" * 256},
    {"object": _text("x" * (64 * 1024))},
    {"object": _text("")},
    {"object": _text("multi\nline\ttext")},
    {"object": ObjectValue(type="number", value=-1e300)},
    {"object": ObjectValue(type="number", value=3)},
    {"object": ObjectValue(type="boolean", value=False)},
    {"object": ObjectValue(type="ref", value="drugs/other")},
    {"confidence": 0.0},
    {"confidence": 1},
    {"source_hash": ID, "epoch": ID, "parent": ID},
    {"source_class": None},
    {"lifecycle": "deprecated"},
    {"valid_from": 5, "valid_to": 5},
    {"valid_from": -100},
    {"timestamp": NOW + SKEW},
    {"timestamp": 0},
]


@pytest.mark.parametrize("change", GOOD_FIELDS)
def test_edge_of_each_rule_is_accepted(assertion: Assertion, change: dict[str, Any]) -> None:
    validate_assertion(msgspec.structs.replace(assertion, **change), now=NOW, max_skew_seconds=SKEW)


def _sig(agent: AgentKey | str, **change: Any) -> Signature:
    agent_id = agent.agent_id if isinstance(agent, AgentKey) else agent
    fields: dict[str, Any] = {"agent_id": agent_id, "signature": "00" * 64, "signed_at": NOW}
    fields.update(change)
    return Signature(**fields)


BAD_SIGNATURES: list[tuple[str, Any, str, str]] = [
    ("no_signatures", (), "signatures", "empty"),
    (
        "seventeen_signatures",
        tuple(_sig(fixed_key(i)) for i in range(17)),
        "signatures",
        "too_many",
    ),
    (
        "same_agent_twice",
        (_sig(fixed_key(0)), _sig(fixed_key(0))),
        "signatures[1].agent_id",
        "duplicate_agent",
    ),
    ("agent_id_short", (_sig("ab" * 31),), "signatures[0].agent_id", "hex_format"),
    (
        "agent_id_uppercase",
        (_sig(fixed_key(0)), _sig("AB" * 32)),
        "signatures[1].agent_id",
        "hex_format",
    ),
    (
        "signature_short",
        (_sig(fixed_key(0), signature="00" * 63),),
        "signatures[0].signature",
        "hex_format",
    ),
    (
        "signature_not_hex",
        (_sig(fixed_key(0), signature="g" * 128),),
        "signatures[0].signature",
        "hex_format",
    ),
    ("signed_at_float", (_sig(fixed_key(0), signed_at=1.5),), "signatures[0].signed_at", "type"),
    (
        "signed_at_negative",
        (_sig(fixed_key(0), signed_at=-5),),
        "signatures[0].signed_at",
        "negative",
    ),
    (
        "signed_at_in_future",
        (_sig(fixed_key(0), signed_at=NOW + SKEW + 1),),
        "signatures[0].signed_at",
        "in_future",
    ),
    ("signature_not_object", ("sig",), "signatures[0]", "type"),
]


@pytest.mark.parametrize(
    ("signatures", "field", "rule"),
    [case[1:] for case in BAD_SIGNATURES],
    ids=[case[0] for case in BAD_SIGNATURES],
)
def test_malformed_signatures_are_rejected(
    assertion: Assertion, signatures: Any, field: str, rule: str
) -> None:
    error = _reject(msgspec.structs.replace(assertion, signatures=signatures))
    assert (error.field, error.rule) == (field, rule)


def test_sixteen_signatures_are_accepted(assertion: Assertion) -> None:
    signed = assertion
    for index in range(1, 16):
        signed = add_signature(signed, fixed_key(index), signed_at=NOW)
    assert len(signed.signatures) == 16
    assert verify_record(signed, now=NOW) == assertion_id(assertion)


def test_verify_record_returns_the_content_id(assertion: Assertion) -> None:
    assert verify_record(assertion, now=NOW, max_skew_seconds=SKEW) == assertion_id(assertion)


def test_verify_record_uses_wall_clock_by_default(key: AgentKey) -> None:
    from model_factories import make_assertion

    fresh = make_assertion(key, timestamp=None)
    assert verify_record(fresh) == assertion_id(fresh)


def test_content_changed_after_signing_is_rejected(assertion: Assertion) -> None:
    tampered = msgspec.structs.replace(assertion, confidence=0.99)
    with pytest.raises(SignatureError) as info:
        verify_record(tampered, now=NOW)
    assert info.value.details["field"] == "signatures[0]"


def test_second_bad_signature_is_named(assertion: Assertion, other_key: AgentKey) -> None:
    forged = other_key.sign(ID, NOW)  # signs some other record
    bad = msgspec.structs.replace(assertion, signatures=(*assertion.signatures, forged))
    with pytest.raises(SignatureError) as info:
        verify_record(bad, now=NOW)
    assert info.value.details["field"] == "signatures[1]"
    assert info.value.details["agent_id"] == other_key.agent_id


def test_signature_moved_to_other_assertion_is_rejected(assertion: Assertion) -> None:
    other = msgspec.structs.replace(assertion, subject="drugs/other")
    moved = msgspec.structs.replace(other, signatures=assertion.signatures)
    with pytest.raises(SignatureError):
        verify_record(moved, now=NOW)


def test_future_timestamp_is_judged_against_given_skew(assertion: Assertion) -> None:
    early = NOW - 100
    with pytest.raises(ValidationError) as info:
        validate_assertion(assertion, now=early, max_skew_seconds=99)
    assert (info.value.field, info.value.rule) == ("timestamp", "in_future")
    validate_assertion(assertion, now=early, max_skew_seconds=100)
