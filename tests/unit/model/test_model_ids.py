"""Content IDs: what they cover, what they ignore, and domain separation."""

from __future__ import annotations

import hashlib

import msgspec
import pytest
import rfc8785
from model_factories import ID, NOW

from stemedb.model.ids import (
    ASSERTION_TAG,
    EPOCH_TAG,
    RETRACTION_TAG,
    SOURCE_TAG,
    SUPERSESSION_TAG,
    VOTE_TAG,
    assertion_content,
    assertion_id,
    record_id,
)
from stemedb.model.records import (
    Assertion,
    CoSignature,
    ObjectValue,
    Retraction,
    Supersession,
    TrustOutcome,
)
from stemedb.model.signing import (
    AgentKey,
    add_signature,
    cosign,
    sign_epoch,
    sign_retraction,
    sign_source,
    sign_supersession,
    sign_vote,
)


def test_assertion_id_is_sha256_of_tag_and_reference_jcs(assertion: Assertion) -> None:
    expected = hashlib.sha256(ASSERTION_TAG + rfc8785.dumps(assertion_content(assertion)))
    assert assertion_id(assertion) == expected.hexdigest()


def test_assertion_content_has_all_twelve_fields_and_no_signatures(assertion: Assertion) -> None:
    content = assertion_content(assertion)
    assert sorted(content) == sorted(
        [
            "subject",
            "predicate",
            "object",
            "confidence",
            "source_hash",
            "source_class",
            "epoch",
            "parent",
            "lifecycle",
            "valid_from",
            "valid_to",
            "timestamp",
        ]
    )
    assert content["lifecycle"] == "proposed"
    assert content["epoch"] is None


def test_cosigning_does_not_change_assertion_id(assertion: Assertion, other_key: AgentKey) -> None:
    assert assertion_id(add_signature(assertion, other_key, signed_at=NOW)) == assertion_id(
        assertion
    )


def test_decoded_wire_json_has_same_id_as_built_record(assertion: Assertion) -> None:
    wire = msgspec.json.encode(assertion)
    decoded = msgspec.json.decode(wire, type=Assertion)
    assert assertion_id(decoded) == assertion_id(assertion)


def test_omitted_optional_fields_hash_like_explicit_nulls(assertion: Assertion) -> None:
    wire = msgspec.json.decode(msgspec.json.encode(assertion))
    for name in ("source_hash", "epoch", "parent", "valid_from", "valid_to", "lifecycle"):
        wire.pop(name, None)
    decoded = msgspec.json.decode(msgspec.json.encode(wire), type=Assertion)
    assert assertion_id(decoded) == assertion_id(assertion)


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "drugs/other"},
        {"predicate": "other"},
        {"object": ObjectValue(type="text", value="common")},
        {"object": ObjectValue(type="ref", value="rare")},
        {"confidence": 0.81},
        {"source_hash": ID},
        {"source_class": "expert"},
        {"epoch": ID},
        {"parent": ID},
        {"lifecycle": "approved"},
        {"valid_from": 0},
        {"valid_to": 0},
        {"timestamp": NOW + 1},
    ],
)
def test_changing_any_content_field_changes_the_id(
    assertion: Assertion, change: dict[str, object]
) -> None:
    assert assertion_id(msgspec.structs.replace(assertion, **change)) != assertion_id(assertion)


def test_number_value_one_point_zero_and_one_share_an_id(assertion: Assertion) -> None:
    as_float = msgspec.structs.replace(assertion, object=ObjectValue(type="number", value=1.0))
    as_int = msgspec.structs.replace(assertion, object=ObjectValue(type="number", value=1))
    assert assertion_id(as_float) == assertion_id(as_int)


def test_fast_and_slow_assertion_paths_agree(assertion: Assertion) -> None:
    # An int confidence and a str-subclass subject take the slow path; ids must match.
    class Subject(str):
        pass

    slow = msgspec.structs.replace(assertion, subject=Subject(assertion.subject), confidence=1)
    fast = msgspec.structs.replace(assertion, confidence=1.0)
    assert assertion_id(slow) == assertion_id(fast)


def test_same_content_as_other_kind_gets_different_id(key: AgentKey) -> None:
    retraction = sign_retraction(key, source_hash=ID, reason="r", timestamp=NOW)
    supersession = sign_supersession(key, old=ID, new="cd" * 32, reason="r", timestamp=NOW)
    content = {"source_hash": ID, "reason": "r", "timestamp": NOW}
    assert (
        record_id(retraction) == hashlib.sha256(RETRACTION_TAG + rfc8785.dumps(content)).hexdigest()
    )
    assert (
        record_id(retraction)
        != hashlib.sha256(SUPERSESSION_TAG + rfc8785.dumps(content)).hexdigest()
    )
    assert record_id(supersession) != record_id(retraction)


def test_every_record_kind_uses_its_own_tag(key: AgentKey) -> None:
    vote = sign_vote(key, assertion_id=ID, weight=1.0, timestamp=NOW)
    epoch = sign_epoch(key, name="e", timestamp=NOW)
    source = sign_source(key, uri="https://x", content="c", timestamp=NOW)
    cases = [
        (
            vote,
            VOTE_TAG,
            {"assertion_id": ID, "weight": 1, "timestamp": NOW, "agent_id": key.agent_id},
        ),
        (
            epoch,
            EPOCH_TAG,
            {"name": "e", "description": "", "supersedes": [], "kind": "replace", "timestamp": NOW},
        ),
        (
            source,
            SOURCE_TAG,
            {
                "source_hash": source.source_hash,
                "uri": "https://x",
                "title": "",
                "source_class": None,
                "published_at": None,
                "content": "c",
                "timestamp": NOW,
            },
        ),
    ]
    for record, tag, content in cases:
        assert record_id(record) == hashlib.sha256(tag + rfc8785.dumps(content)).hexdigest()


def test_vote_id_depends_on_the_voter(key: AgentKey, other_key: AgentKey) -> None:
    mine = sign_vote(key, assertion_id=ID, weight=0.5, timestamp=NOW)
    theirs = sign_vote(other_key, assertion_id=ID, weight=0.5, timestamp=NOW)
    assert record_id(mine) != record_id(theirs)


def test_vote_id_ignores_signed_at(key: AgentKey) -> None:
    early = sign_vote(key, assertion_id=ID, weight=0.5, timestamp=NOW, signed_at=NOW)
    late = sign_vote(key, assertion_id=ID, weight=0.5, timestamp=NOW, signed_at=NOW + 5)
    assert record_id(early) == record_id(late)


def test_repeated_cosignature_by_same_agent_has_same_id(key: AgentKey) -> None:
    first: CoSignature = cosign(key, ID, signed_at=NOW)
    again = cosign(key, ID, signed_at=NOW + 60)
    assert record_id(first) == record_id(again)


def test_trust_outcome_has_an_id() -> None:
    outcome = TrustOutcome(agent_id=ID, accurate=True, timestamp=NOW)
    assert len(record_id(outcome)) == 64


def test_supersession_with_different_reason_has_different_id(key: AgentKey) -> None:
    one: Supersession = sign_supersession(key, old=ID, new="cd" * 32, reason="a", timestamp=NOW)
    two = msgspec.structs.replace(one, reason="b")
    assert record_id(one) != record_id(two)


def test_record_id_of_non_record_raises_type_error() -> None:
    with pytest.raises(TypeError):
        record_id("not a record")  # type: ignore[arg-type]


def test_retraction_is_a_record(key: AgentKey) -> None:
    assert isinstance(sign_retraction(key, source_hash=ID, reason="x", timestamp=NOW), Retraction)
