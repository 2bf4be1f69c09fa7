"""Every SDK write against a real server: signed with the client's key, stored, and
idempotent (the same record sent twice is stored once)."""

from __future__ import annotations

import hashlib

import pytest
from support.client_server import ServerProcess

import stemedb.errors as base
from stemedb.client import AgentKey, Client, ObjectValue, ValidationError
from stemedb.model.ids import assertion_id, record_id
from stemedb.model.signing import sign_assertion, sign_epoch


def test_assert_signs_with_the_clients_key_and_stores_the_claim(
    db: Client, alice: AgentKey, subject: str
) -> None:
    result = db.assert_(subject, "risk", "rare", 0.8, source_class="clinical")
    assert result.status == "created" and result.lsn > 0
    detail = db.get_assertion(result.id)
    assert detail.assertion.subject == subject
    assert detail.assertion.object == ObjectValue("text", "rare")
    assert detail.source_class == "clinical"
    assert [s.agent_id for s in detail.signatures] == [alice.agent_id]


def test_assert_passes_every_optional_field(db: Client, subject: str) -> None:
    parent = db.assert_(subject, "base", 1.5, 0.5)
    result = db.assert_(
        subject,
        "risk",
        ObjectValue("ref", "drugs/other"),
        0.7,
        timestamp=1_700_000_000,
        source_class="observational",
        parent=parent.id,
        lifecycle="approved",
        valid_from=1_600_000_000,
        valid_to=1_800_000_000,
    )
    stored = db.get_assertion(result.id).assertion
    assert stored.object == ObjectValue("ref", "drugs/other")
    assert stored.timestamp == 1_700_000_000
    assert stored.parent == parent.id
    assert stored.lifecycle == "approved"
    assert (stored.valid_from, stored.valid_to) == (1_600_000_000, 1_800_000_000)


def test_sending_the_same_signed_record_twice_stores_it_once(db: Client, subject: str) -> None:
    record = db.sign_assertion(subject, "risk", True, 0.6)
    first = db.assert_record(record)
    again = db.assert_record(record)
    assert first.status == "created"
    assert again.status == "exists"
    assert (again.id, again.lsn) == (first.id, first.lsn) == (assertion_id(record), first.lsn)


def test_assert_batch_answers_per_item_including_failures(
    db: Client, alice: AgentKey, subject: str
) -> None:
    good = db.sign_assertion(subject, "risk", "a", 0.5)
    bad = sign_assertion(alice, subject=subject, predicate="risk", object="b", confidence=2.0)
    batch = db.assert_batch([good, bad, good])
    assert (batch.created, batch.exists, batch.failed) == (1, 1, 1)
    assert [item.status for item in batch.results] == ["created", "error", "exists"]
    error = batch.results[1].error
    assert error is not None and error.type == "ValidationError"
    assert error.details["field"].startswith("assertions[1]")


def test_assert_batch_larger_than_max_batch_raises_validation_error(
    db: Client, subject: str
) -> None:
    records = [db.sign_assertion(subject, "risk", str(i), 0.5) for i in range(6)]
    with pytest.raises(ValidationError) as info:
        db.assert_batch(records)
    assert info.value.code == "batch_too_large"


def test_cosign_and_vote_are_signed_by_the_second_agent(
    db: Client, db_bob: Client, bob: AgentKey, subject: str
) -> None:
    claim = db.assert_(subject, "risk", "rare", 0.8)
    assert db_bob.cosign(claim.id).status == "created"
    assert db_bob.vote(claim.id, 0.9).status == "created"
    detail = db.get_assertion(claim.id)
    assert bob.agent_id in {s.agent_id for s in detail.signatures}
    assert detail.votes.count == 1 and detail.votes.weight == pytest.approx(0.9)


def test_epoch_supersede_source_and_retraction(db: Client, subject: str) -> None:
    old_epoch = db.epoch(f"{subject}-old", "first")
    new_epoch = db.epoch(f"{subject}-new", "second", supersedes=[old_epoch.id], kind="refine")
    row = db.get_epoch(new_epoch.id)
    assert row.supersedes == (old_epoch.id,) and row.kind == "refine"
    assert new_epoch.id in {e.id for e in db.epochs()}

    old = db.assert_(subject, "risk", "rare", 0.8)
    new = db.assert_(subject, "risk", "common", 0.8)
    assert db.supersede(old.id, new.id, "newer data").status == "created"
    assert db.get_assertion(old.id).superseded_by == [new.id]

    content = f"evidence for {subject}"
    source_hash = hashlib.sha256(content.encode()).hexdigest()
    registered = db.register_source("doi:10/x", content, title="x", source_class="clinical")
    assert (registered.status, registered.source_hash) == ("created", source_hash)
    cited = db.assert_(subject, "cited", "yes", 0.9, source_hash=source_hash)
    assert db.get_source(source_hash).content == content
    assert db.retract_source(source_hash, "withdrawn").status == "created"
    assert db.get_source(source_hash).retracted
    warnings = db.get_assertion(cited.id).source_warnings
    assert warnings and warnings[0].kind == "retracted_source"


def test_write_sends_any_presigned_record_to_its_route(
    db: Client, alice: AgentKey, subject: str
) -> None:
    epoch = sign_epoch(alice, name=f"{subject}-presigned")
    assert db.write(epoch).id == record_id(epoch)
    assert db.write(epoch).status == "exists"


def test_writing_without_a_key_fails_before_sending(server: ServerProcess, subject: str) -> None:
    with Client(server.url) as anonymous:
        with pytest.raises(base.ValidationError) as info:
            anonymous.assert_(subject, "risk", "rare", 0.8)
        assert info.value.field == "key"
        assert anonymous.health().status == "ok"  # reads need no key
