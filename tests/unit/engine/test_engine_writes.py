"""The engine's write path: idempotence, references, ownership, per-record errors,
refusal of invalid records, read-your-writes and group commit — on the embedded store
and on cluster mode's shared PostgreSQL store (the commit-time checks run in its batch
transaction), with the same expected results."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from stemedb.engine import Engine, WriteResult
from stemedb.errors import (
    AuthorizationError,
    ConflictError,
    NotFoundError,
    SemanticError,
    SignatureError,
    StemeError,
    ValidationError,
)
from stemedb.model.records import Assertion
from stemedb.model.signing import (
    AgentKey,
    cosign,
    sign_epoch,
    sign_retraction,
    sign_source,
    sign_supersession,
    sign_vote,
)
from stemedb.query.params import QueryParams
from stemedb.query.service import QueryService

T0 = 1_700_000_000
SUBJECT = "drugs/semaglutide"
PREDICATE = "gastroparesis_risk"
UNKNOWN_ID = "ab" * 32

Claim = Callable[..., Assertion]


@pytest.fixture(params=["sqlite", "postgres"])
def store_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def snapshot(engine: Engine) -> tuple[int, int, dict[str, int]]:
    """Everything a refused write must leave untouched."""
    return engine.wal.last_lsn, engine.applied_lsn, engine.store.counts()


def ok(result: WriteResult | StemeError) -> WriteResult:
    assert isinstance(result, WriteResult), result
    return result


# -- idempotence -------------------------------------------------------------------


def test_duplicate_assertion_returns_existing_lsn_and_writes_nothing(
    engine: Engine, claim: Claim
) -> None:
    a = claim()
    first = engine.write(a)
    before = snapshot(engine)
    again = engine.write(a)
    assert again == WriteResult(first.id, first.lsn, "exists")
    assert snapshot(engine) == before


def test_duplicate_with_different_signed_at_is_still_the_same_assertion(
    engine: Engine, claim: Claim, keys: list[AgentKey]
) -> None:
    a = claim()
    b = claim(signed_at=T0 - 50)  # same content, another signature
    first = engine.write(a)
    again = engine.write(b)
    assert (again.id, again.lsn, again.status) == (first.id, first.lsn, "exists")
    assert engine.store.counts()["assertions"] == 1


def test_duplicate_within_one_batch_is_written_once_and_both_get_its_lsn(
    engine: Engine, claim: Claim
) -> None:
    a, other = claim("rare"), claim("common")
    results = [ok(r) for r in engine.write_many([a, other, a])]
    assert [r.status for r in results] == ["created", "created", "exists"]
    assert results[2].lsn == results[0].lsn and results[2].id == results[0].id
    assert engine.wal.last_lsn == 2
    assert engine.store.counts()["assertions"] == 2


def test_duplicate_across_batches_of_write_many_keeps_wal_last_lsn(
    engine: Engine, claim: Claim
) -> None:
    batch = [claim(v) for v in ("a", "b", "c")]
    first = [ok(r) for r in engine.write_many(batch)]
    before = snapshot(engine)
    second = [ok(r) for r in engine.write_many(batch)]
    assert [(r.id, r.lsn) for r in second] == [(r.id, r.lsn) for r in first]
    assert {r.status for r in second} == {"exists"}
    assert snapshot(engine) == before


def test_duplicate_vote_and_epoch_and_supersession_are_idempotent(
    engine: Engine, claim: Claim, keys: list[AgentKey]
) -> None:
    old, new = engine.write(claim("a")), engine.write(claim("b"))
    records: list[Any] = [
        sign_vote(keys[1], assertion_id=old.id, weight=0.7, timestamp=T0 - 10),
        sign_epoch(keys[0], name="glp1-era", timestamp=T0 - 10),
        sign_supersession(keys[0], old=old.id, new=new.id, reason="typo", timestamp=T0 - 10),
    ]
    first = [ok(r) for r in engine.write_many(records)]
    before = snapshot(engine)
    again = [ok(r) for r in engine.write_many(records)]
    assert [(r.id, r.lsn, r.status) for r in again] == [(r.id, r.lsn, "exists") for r in first]
    assert snapshot(engine) == before


# -- co-signatures and votes ---------------------------------------------------------


def test_cosignature_of_stored_assertion_adds_the_signer(
    engine: Engine, service: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    a = engine.write(claim())
    result = engine.write(cosign(keys[1], a.id, signed_at=T0 - 5))
    assert result.status == "created" and result.lsn == a.lsn + 1
    q = service.query(QueryParams(subject=SUBJECT, predicate=PREDICATE))
    assert [s.agent_id for s in q.claims[0].signatures] == [keys[0].agent_id, keys[1].agent_id]
    assert service.provenance.agent(keys[1].agent_id, T0).counts["cosignatures"] == 1


def test_cosignature_by_an_existing_signer_is_a_duplicate(
    engine: Engine, claim: Claim, keys: list[AgentKey]
) -> None:
    a = engine.write(claim())
    before = snapshot(engine)
    again = engine.write(cosign(keys[0], a.id, signed_at=T0 - 5))
    assert again.status == "exists" and again.lsn == a.lsn
    assert snapshot(engine) == before


def test_cosignature_of_assertion_earlier_in_the_same_batch_is_accepted(
    engine: Engine, claim: Claim, keys: list[AgentKey]
) -> None:
    a = claim()
    a_id = engine.prepare(a).record_id
    c = cosign(keys[1], a_id, signed_at=T0 - 5)
    results = [ok(r) for r in engine.write_many([a, c, c])]
    assert [r.status for r in results] == ["created", "created", "exists"]
    assert results[1].lsn == results[0].lsn + 1 == results[2].lsn
    assert engine.writer.stats.batches == 1
    assert engine.store.counts()["signatures"] == 2


@pytest.mark.parametrize("kind", ["cosignature", "vote"])
def test_cosignature_or_vote_of_unknown_assertion_is_not_found_and_writes_nothing(
    engine: Engine, claim: Claim, keys: list[AgentKey], kind: str
) -> None:
    engine.write(claim())
    before = snapshot(engine)
    record: Any = (
        cosign(keys[1], UNKNOWN_ID, signed_at=T0)
        if kind == "cosignature"
        else sign_vote(keys[1], assertion_id=UNKNOWN_ID, weight=1.0, timestamp=T0)
    )
    with pytest.raises(NotFoundError) as info:
        engine.write(record)
    assert info.value.code == "assertion_not_found"
    assert info.value.details["field"] == "assertion_id"
    assert snapshot(engine) == before


# -- references ------------------------------------------------------------------------


def test_assertion_with_unknown_parent_is_semantic_error_on_field_parent(
    engine: Engine, claim: Claim
) -> None:
    before = snapshot(engine)
    with pytest.raises(SemanticError) as info:
        engine.write(claim(parent=UNKNOWN_ID))
    assert info.value.field == "parent" and info.value.status == 422
    assert snapshot(engine) == before


def test_assertion_with_parent_earlier_in_the_batch_is_accepted(
    engine: Engine, claim: Claim
) -> None:
    parent = claim("rare")
    child = claim("uncommon", parent=engine.prepare(parent).record_id, timestamp=T0 - 50)
    assert [ok(r).status for r in engine.write_many([parent, child])] == ["created", "created"]


@pytest.mark.parametrize("missing", ["old", "new"])
def test_supersession_naming_unknown_assertion_is_semantic_error_on_that_field(
    engine: Engine, claim: Claim, keys: list[AgentKey], missing: str
) -> None:
    stored = engine.write(claim()).id
    old, new = (UNKNOWN_ID, stored) if missing == "old" else (stored, UNKNOWN_ID)
    before = snapshot(engine)
    with pytest.raises(SemanticError) as info:
        engine.write(sign_supersession(keys[0], old=old, new=new, reason="x", timestamp=T0))
    assert info.value.field == missing
    assert snapshot(engine) == before


def test_epoch_superseding_unknown_epoch_is_semantic_error(
    engine: Engine, keys: list[AgentKey]
) -> None:
    known = engine.write(sign_epoch(keys[0], name="old", timestamp=T0 - 10)).id
    before = snapshot(engine)
    bad = sign_epoch(keys[0], name="new", supersedes=(known, UNKNOWN_ID), timestamp=T0)
    with pytest.raises(SemanticError) as info:
        engine.write(bad)
    assert info.value.field == "supersedes[1]"
    assert snapshot(engine) == before


# -- sources and retractions -------------------------------------------------------------


def test_source_registered_twice_with_different_content_is_conflict(
    engine: Engine, keys: list[AgentKey]
) -> None:
    first = engine.write(sign_source(keys[0], uri="fda://label/1", content="v1", timestamp=T0))
    same_hash = sign_source(keys[0], uri="fda://label/1", content="v1", timestamp=T0)
    assert engine.write(same_hash) == WriteResult(first.id, first.lsn, "exists")
    before = snapshot(engine)
    h = same_hash.source_hash
    other = sign_source(keys[1], uri="fda://label/other", source_hash=h, timestamp=T0)
    with pytest.raises(ConflictError) as info:
        engine.write(other)
    assert info.value.code == "source_exists"
    assert info.value.details["existing_id"] == first.id
    assert snapshot(engine) == before


def test_source_registered_twice_differently_in_one_batch_is_conflict(
    engine: Engine, keys: list[AgentKey]
) -> None:
    first = sign_source(keys[0], uri="fda://label/1", content="v1", timestamp=T0)
    other = sign_source(keys[1], uri="https://evil", source_hash=first.source_hash, timestamp=T0)
    results = engine.write_many([first, other])
    assert ok(results[0]).status == "created"
    assert isinstance(results[1], ConflictError)
    assert engine.wal.last_lsn == 1
    row = engine.store.source(first.source_hash)
    assert row is not None and row.uri == "fda://label/1"


def test_retraction_by_agent_that_did_not_register_the_source_is_forbidden(
    engine: Engine, keys: list[AgentKey]
) -> None:
    src = sign_source(keys[0], uri="doi:10/x", content="paper", timestamp=T0 - 10)
    engine.write(src)
    before = snapshot(engine)
    with pytest.raises(AuthorizationError) as info:
        engine.write(
            sign_retraction(keys[1], source_hash=src.source_hash, reason="x", timestamp=T0)
        )
    assert info.value.code == "not_source_owner"
    assert snapshot(engine) == before
    row = engine.store.source(src.source_hash)
    assert row is not None and not row.retracted


def test_retraction_of_unknown_source_is_not_found(engine: Engine, keys: list[AgentKey]) -> None:
    before = snapshot(engine)
    with pytest.raises(NotFoundError) as info:
        engine.write(sign_retraction(keys[0], source_hash=UNKNOWN_ID, reason="x", timestamp=T0))
    assert info.value.code == "source_not_found"
    assert snapshot(engine) == before


def test_retraction_by_registering_agent_in_the_same_batch_is_accepted(
    engine: Engine, keys: list[AgentKey]
) -> None:
    src = sign_source(keys[0], uri="doi:10/x", content="paper", timestamp=T0 - 10)
    ret = sign_retraction(keys[0], source_hash=src.source_hash, reason="fraud", timestamp=T0)
    assert [ok(r).status for r in engine.write_many([src, ret])] == ["created", "created"]
    row = engine.store.source(src.source_hash)
    assert row is not None and row.retracted and row.retracted_reason == "fraud"


# -- write_many: every bad record fails alone ----------------------------------------------


def test_each_bad_record_of_write_many_fails_alone_and_the_good_ones_commit(
    engine: Engine, claim: Claim, keys: list[AgentKey]
) -> None:
    good1, good2 = claim("a"), claim("b")
    forged = msgspec.structs.replace(claim("c"), signatures=claim("d").signatures)
    records: list[Any] = [
        good1,
        claim("e", parent=UNKNOWN_ID),
        cosign(keys[1], UNKNOWN_ID, signed_at=T0),
        forged,
        claim("f", timestamp=T0 + 3600),
        sign_retraction(keys[0], source_hash=UNKNOWN_ID, reason="x", timestamp=T0),
        good2,
    ]
    results = engine.write_many(records)
    assert ok(results[0]).status == ok(results[6]).status == "created"
    assert isinstance(results[1], SemanticError)
    assert isinstance(results[2], NotFoundError)
    assert isinstance(results[3], SignatureError)
    assert isinstance(results[4], ValidationError) and results[4].rule == "in_future"
    assert isinstance(results[5], NotFoundError)
    assert engine.wal.last_lsn == 2
    assert engine.store.counts()["assertions"] == 2


def test_write_many_async_reports_errors_per_item_like_write_many(
    engine: Engine, claim: Claim
) -> None:
    async def scenario() -> tuple[list[WriteResult | StemeError], WriteResult]:
        results = await engine.write_many_async([claim("a"), claim("b", parent=UNKNOWN_ID)])
        return results, await engine.write_async(claim("a"))

    results, single = asyncio.run(scenario())
    assert ok(results[0]).status == "created"
    assert isinstance(results[1], SemanticError)
    assert single.status == "exists" and single.lsn == ok(results[0]).lsn


# -- invalid records are refused before anything is written ----------------------------------


def _bad_signature(claim: Claim) -> Assertion:
    a = claim()
    sig = a.signatures[0]
    flipped = ("0" if sig.signature[0] != "0" else "1") + sig.signature[1:]
    return msgspec.structs.replace(a, signatures=(msgspec.structs.replace(sig, signature=flipped),))


def _signature_over_other_content(claim: Claim) -> Assertion:
    return msgspec.structs.replace(claim("rare"), signatures=claim("common").signatures)


def _future_timestamp(claim: Claim) -> Assertion:
    return claim(timestamp=T0 + 301)


def _future_signed_at(claim: Claim) -> Assertion:
    return claim(signed_at=T0 + 3600)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (_bad_signature, SignatureError),
        (_signature_over_other_content, SignatureError),
        (_future_timestamp, ValidationError),
        (_future_signed_at, ValidationError),
    ],
)
def test_invalid_record_is_refused_and_nothing_is_written(
    engine: Engine, claim: Claim, make: Callable[[Claim], Assertion], error: type[StemeError]
) -> None:
    engine.write(claim("baseline"))
    before = snapshot(engine)
    with pytest.raises(error):
        engine.write(make(claim))
    assert isinstance(engine.write_many([make(claim)])[0], error)
    assert snapshot(engine) == before
    assert engine.writer.stats.records == 1


def test_cosignature_signed_over_another_assertion_is_refused(
    engine: Engine, claim: Claim, keys: list[AgentKey]
) -> None:
    a, b = engine.write(claim("a")), engine.write(claim("b"))
    wrong = cosign(keys[1], b.id, signed_at=T0)
    forged = msgspec.structs.replace(wrong, assertion_id=a.id)
    before = snapshot(engine)
    with pytest.raises(SignatureError):
        engine.write(forged)
    assert snapshot(engine) == before


# -- read-your-writes and group commit -------------------------------------------------------


def test_query_right_after_write_sees_it(
    engine: Engine, service: QueryService, claim: Claim
) -> None:
    params = QueryParams(subject=SUBJECT, predicate=PREDICATE, lens="recency")
    for i in range(5):
        written = engine.write(claim(f"v{i}", timestamp=T0 - 100 + i))
        q = service.query(params)
        assert q.resolution is not None and q.resolution.winner is not None
        assert q.resolution.winner.id == written.id
        assert q.as_of_lsn == written.lsn


def test_concurrent_writers_are_group_committed_into_fewer_batches(
    make_engine: Callable[..., Engine], claim: Claim
) -> None:
    engine = make_engine(group_commit_max_delay_us=20_000)
    records = [claim(f"v{i}", subject=f"drugs/d{i}") for i in range(48)]
    prepared = [engine.prepare(r) for r in records]
    results: list[WriteResult] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def writer(chunk: list[Any]) -> None:
        start.wait()
        for p in chunk:
            r = engine.submit([p])[0].result(timeout=10)
            with lock:
                results.append(r)

    threads = [threading.Thread(target=writer, args=(prepared[i::16],)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = engine.writer.stats
    assert stats.records == 48 == len(results)
    assert stats.batches < stats.records
    assert sorted(r.lsn for r in results) == list(range(1, 49))
    assert engine.wal.last_lsn == engine.applied_lsn == 48


def test_second_retraction_by_a_non_owner_is_refused_not_reported_as_existing(
    tmp_path: Path,
) -> None:
    from stemedb.errors import AuthorizationError
    from stemedb.model.signing import AgentKey, sign_retraction, sign_source

    owner, stranger = AgentKey.from_seed(b"\x01" * 32), AgentKey.from_seed(b"\x02" * 32)
    with Engine.embedded(tmp_path / "data") as engine:
        source = sign_source(owner, uri="doi:x", content="evidence")
        engine.write(source)
        first = engine.write(sign_retraction(owner, source_hash=source.source_hash, reason="a"))
        with pytest.raises(AuthorizationError):
            engine.write(sign_retraction(stranger, source_hash=source.source_hash, reason="b"))
        again = engine.write(sign_retraction(owner, source_hash=source.source_hash, reason="c"))
        assert again.status == "exists"
        assert (again.id, again.lsn) == (first.id, first.lsn)
