"""Rules of votes, co-signatures, epochs, supersessions, sources, retractions, outcomes."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import pytest
from model_factories import ID, NOW, OTHER_ID, SKEW

from stemedb.errors import SignatureError, ValidationError
from stemedb.model.ids import AnyRecord, record_id
from stemedb.model.records import Signature, TrustOutcome
from stemedb.model.signing import (
    AgentKey,
    cosign,
    sign_epoch,
    sign_retraction,
    sign_source,
    sign_supersession,
    sign_vote,
)
from stemedb.model.validation import validate_record, verify_record


def _records(key: AgentKey) -> dict[str, AnyRecord]:
    return {
        "vote": sign_vote(key, assertion_id=ID, weight=0.7, timestamp=NOW),
        "cosign": cosign(key, ID, signed_at=NOW),
        "epoch": sign_epoch(key, name="post-2024", supersedes=(ID,), timestamp=NOW),
        "supersession": sign_supersession(
            key, old=ID, new=OTHER_ID, reason="new trial", timestamp=NOW
        ),
        "source": sign_source(
            key, uri="https://doi.org/10.1/x", content="abstract", title="T", timestamp=NOW
        ),
        "retraction": sign_retraction(key, source_hash=ID, reason="fabricated data", timestamp=NOW),
        "outcome": TrustOutcome(agent_id=key.agent_id, accurate=True, timestamp=NOW),
    }


_SIG = Signature(agent_id="ab" * 32, signature="00" * 64, signed_at=NOW)

BAD: list[tuple[str, str, dict[str, Any], str, str]] = [
    ("vote", "assertion_id_not_hex", {"assertion_id": "x"}, "assertion_id", "hex_format"),
    ("vote", "weight_above_one", {"weight": 1.5}, "weight", "out_of_range"),
    ("vote", "weight_negative", {"weight": -0.5}, "weight", "out_of_range"),
    ("vote", "weight_nan", {"weight": float("nan")}, "weight", "not_finite"),
    ("vote", "weight_bool", {"weight": False}, "weight", "type"),
    ("vote", "timestamp_in_future", {"timestamp": NOW + SKEW + 1}, "timestamp", "in_future"),
    (
        "vote",
        "agent_id_bad",
        {"signature": msgspec.structs.replace(_SIG, agent_id="x")},
        "signature.agent_id",
        "hex_format",
    ),
    (
        "vote",
        "signed_at_in_future",
        {"signature": msgspec.structs.replace(_SIG, signed_at=NOW + 999)},
        "signature.signed_at",
        "in_future",
    ),
    ("cosign", "assertion_id_not_hex", {"assertion_id": "AB" * 32}, "assertion_id", "hex_format"),
    (
        "cosign",
        "signature_short",
        {"signature": msgspec.structs.replace(_SIG, signature="00")},
        "signature.signature",
        "hex_format",
    ),
    ("epoch", "name_empty", {"name": ""}, "name", "empty"),
    ("epoch", "name_257_bytes", {"name": "n" * 257}, "name", "too_long"),
    ("epoch", "name_control_char", {"name": "a\x1bb"}, "name", "control_character"),
    ("epoch", "description_too_long", {"description": "d" * 4097}, "description", "too_long"),
    ("epoch", "kind_unknown", {"kind": "merge"}, "kind", "enum"),
    (
        "epoch",
        "supersedes_65",
        {"supersedes": tuple(f"{i:064x}" for i in range(65))},
        "supersedes",
        "too_many",
    ),
    ("epoch", "supersedes_not_hex", {"supersedes": (ID, "nope")}, "supersedes[1]", "hex_format"),
    (
        "epoch",
        "supersedes_duplicate",
        {"supersedes": (ID, OTHER_ID, ID)},
        "supersedes[2]",
        "duplicate",
    ),
    ("epoch", "no_signatures", {"signatures": ()}, "signatures", "empty"),
    ("epoch", "timestamp_negative", {"timestamp": -1}, "timestamp", "negative"),
    ("supersession", "old_not_hex", {"old": "1"}, "old", "hex_format"),
    ("supersession", "new_not_hex", {"new": "1"}, "new", "hex_format"),
    ("supersession", "new_equals_old", {"new": ID}, "new", "same_as_old"),
    ("supersession", "reason_empty", {"reason": ""}, "reason", "empty"),
    ("supersession", "reason_too_long", {"reason": "r" * 4097}, "reason", "too_long"),
    (
        "supersession",
        "signed_at_in_future",
        {"signatures": (msgspec.structs.replace(_SIG, signed_at=NOW + 999),)},
        "signatures[0].signed_at",
        "in_future",
    ),
    (
        "source",
        "source_hash_not_hex",
        {"source_hash": "x", "content": None},
        "source_hash",
        "hex_format",
    ),
    ("source", "uri_empty", {"uri": ""}, "uri", "empty"),
    ("source", "uri_too_long", {"uri": "u" * 2049}, "uri", "too_long"),
    ("source", "uri_newline", {"uri": "https://x\n"}, "uri", "control_character"),
    ("source", "title_too_long", {"title": "t" * 1025}, "title", "too_long"),
    ("source", "source_class_unknown", {"source_class": "rumour"}, "source_class", "enum"),
    ("source", "published_at_float", {"published_at": 1.5}, "published_at", "type"),
    ("source", "content_over_1mib", {"content": "c" * (1024 * 1024 + 1)}, "content", "too_long"),
    (
        "source",
        "content_hash_mismatch",
        {"content": "other text"},
        "source_hash",
        "content_mismatch",
    ),
    ("retraction", "source_hash_not_hex", {"source_hash": "x"}, "source_hash", "hex_format"),
    ("retraction", "reason_empty", {"reason": ""}, "reason", "empty"),
    ("retraction", "reason_too_long", {"reason": "r" * 4097}, "reason", "too_long"),
    ("retraction", "too_many_signatures", {"signatures": (_SIG,) * 17}, "signatures", "too_many"),
    ("outcome", "agent_id_not_hex", {"agent_id": "agent-1"}, "agent_id", "hex_format"),
    ("outcome", "accurate_not_bool", {"accurate": 1}, "accurate", "type"),
    ("outcome", "timestamp_in_future", {"timestamp": NOW + SKEW + 1}, "timestamp", "in_future"),
]


@pytest.mark.parametrize(
    ("kind", "change", "field", "rule"),
    [(c[0], *c[2:]) for c in BAD],
    ids=[f"{c[0]}-{c[1]}" for c in BAD],
)
def test_broken_field_is_rejected(
    key: AgentKey, kind: str, change: dict[str, Any], field: str, rule: str
) -> None:
    record = msgspec.structs.replace(_records(key)[kind], **change)
    with pytest.raises(ValidationError) as info:
        validate_record(record, now=NOW, max_skew_seconds=SKEW)
    assert (info.value.field, info.value.rule) == (field, rule)
    assert info.value.details == {"field": field, "rule": rule}


@pytest.mark.parametrize(
    "kind", ["vote", "cosign", "epoch", "supersession", "source", "retraction", "outcome"]
)
def test_valid_record_verifies_and_returns_its_id(key: AgentKey, kind: str) -> None:
    record = _records(key)[kind]
    assert verify_record(record, now=NOW) == record_id(record)


def test_source_content_at_one_mib_is_accepted(key: AgentKey) -> None:
    content = "c" * (1024 * 1024)
    source = sign_source(key, uri="https://x", content=content, timestamp=NOW)
    assert source.source_hash == hashlib.sha256(content.encode()).hexdigest()
    verify_record(source, now=NOW)


def test_source_without_content_needs_no_matching_hash(key: AgentKey) -> None:
    verify_record(sign_source(key, uri="https://x", source_hash=ID, timestamp=NOW), now=NOW)


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("vote", {"weight": 0.1}),
        ("epoch", {"name": "other"}),
        ("supersession", {"reason": "other"}),
        ("source", {"title": "other"}),
        ("retraction", {"reason": "other"}),
        ("cosign", {"assertion_id": OTHER_ID}),
    ],
)
def test_signature_over_other_content_is_rejected(
    key: AgentKey, kind: str, change: dict[str, Any]
) -> None:
    tampered = msgspec.structs.replace(_records(key)[kind], **change)
    with pytest.raises(SignatureError) as info:
        verify_record(tampered, now=NOW)
    assert info.value.details["agent_id"] == key.agent_id


def test_vote_signature_cannot_be_claimed_by_other_agent(
    key: AgentKey, other_key: AgentKey
) -> None:
    vote = _records(key)["vote"]
    assert not isinstance(vote, TrustOutcome)
    stolen = msgspec.structs.replace(
        vote,
        signature=msgspec.structs.replace(vote.signature, agent_id=other_key.agent_id),  # type: ignore[union-attr]
    )
    with pytest.raises(SignatureError):
        verify_record(stolen, now=NOW)


def test_retraction_signature_replayed_as_supersession_is_rejected(key: AgentKey) -> None:
    retraction = sign_retraction(key, source_hash=ID, reason="r", timestamp=NOW)
    supersession = sign_supersession(key, old=ID, new=OTHER_ID, reason="r", timestamp=NOW)
    replayed = msgspec.structs.replace(supersession, signatures=retraction.signatures)
    with pytest.raises(SignatureError):
        verify_record(replayed, now=NOW)


def test_non_record_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        validate_record("nope", now=NOW)  # type: ignore[arg-type]
