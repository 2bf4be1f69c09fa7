"""Every SDK read against a real server, with every query parameter."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

import stemedb.errors as base
from stemedb.client import AgentKey, Client, ObjectValue, QuerySpec
from stemedb.model.records import Assertion

T = TypeVar("T")


def _after(seconds: float, action: Callable[[], T]) -> T:
    """``action()`` after ``seconds`` (on a worker thread of the caller's pool, which
    joins it, so it never outlives the client it uses)."""
    time.sleep(seconds)
    return action()


def test_query_resolves_through_the_lens_and_returns_typed_claims(
    db: Client, db_bob: Client, subject: str
) -> None:
    db.assert_(subject, "risk", "rare", 0.9, source_class="regulatory")
    db_bob.assert_(subject, "risk", "common", 0.4, source_class="anecdotal")
    result = db.query(subject, "risk", lens="authority")
    assert result.lens == "authority"
    assert result.resolution is not None and result.resolution.winner is not None
    assert result.resolution.winner.object.value == "rare"
    assert {c.object.value for c in result.claims} == {"rare", "common"}
    assert result.next_cursor is None


def test_query_sends_every_filter(db: Client, db_bob: Client, bob: AgentKey, subject: str) -> None:
    epoch = db.epoch(f"{subject}-epoch").id
    db.assert_(subject, "risk", "a", 0.9, source_class="clinical", timestamp=1_700_000_000)
    db_bob.assert_(
        subject,
        "risk",
        "b",
        0.8,
        source_class="expert",
        epoch=epoch,
        lifecycle="approved",
        valid_from=1_600_000_000,
        valid_to=1_900_000_000,
    )

    def values(**filters: object) -> set[object]:
        result = db.query(subject, "risk", **filters)  # type: ignore[arg-type]
        return {c.object.value for c in result.claims}

    assert values() == {"a", "b"}
    assert values(agent_id=bob.agent_id) == {"b"}
    assert values(source_class=["clinical"]) == {"a"}
    assert values(source_class="expert") == {"b"}
    assert values(lifecycle=["approved"]) == {"b"}
    assert values(epoch=epoch) == {"b"}
    assert values(since=1_750_000_000) == {"b"}
    assert values(valid_at=1_950_000_000) == {"a"}
    assert values(as_of=1.0) == set()
    assert values(include_retracted=True, include_superseded=True, max_stale_seconds=5) == {
        "a",
        "b",
    }
    assert db.query(subject, "risk", lens="recency", limit=1).next_cursor is not None


def test_query_all_follows_the_cursor_through_every_page(db: Client, subject: str) -> None:
    for i in range(5):
        db.assert_(subject, "risk", f"v{i}", 0.5)
    pages = list(db.query_all(subject, "risk", limit=2))
    assert [len(p.claims) for p in pages] == [2, 2, 1]
    ids = [c.id for p in pages for c in p.claims]
    assert len(set(ids)) == 5


def test_subject_prefix_query_groups_by_subject_and_predicate(db: Client, subject: str) -> None:
    db.assert_(f"{subject}/a", "risk", "x", 0.5)
    db.assert_(f"{subject}/b", "risk", "y", 0.5)
    result = db.query(subject_prefix=f"{subject}/", predicate="risk")
    assert result.results is not None
    assert {g.subject for g in result.results} == {f"{subject}/a", f"{subject}/b"}


def test_query_needs_exactly_one_of_subject_and_subject_prefix(db: Client) -> None:
    # Refused before sending: stemedb.errors.ValidationError, not an ApiError.
    with pytest.raises(base.ValidationError) as info:
        db.query()
    assert info.value.field == "subject"
    with pytest.raises(base.ValidationError):
        db.query("a", subject_prefix="a")


def test_query_batch_answers_in_order(db: Client, subject: str) -> None:
    db.assert_(subject, "p1", "one", 0.5)
    db.assert_(subject, "p2", "two", 0.5)
    results = db.query_batch(
        [QuerySpec(subject=subject, predicate="p1"), {"subject": subject, "predicate": "p2"}]
    )
    assert [r.claims[0].object.value for r in results] == ["one", "two"]


def test_skeptic_reports_support_shares(db: Client, db_bob: Client, subject: str) -> None:
    db.assert_(subject, "risk", "rare", 0.8)
    db_bob.assert_(subject, "risk", "common", 0.8)
    skeptic = db.skeptic(subject, "risk", source_class=["expert"])
    assert skeptic.status and skeptic.candidates_count == 2
    assert sum(c.support_share for c in skeptic.claims) == pytest.approx(1.0)
    with pytest.raises(base.ValidationError):
        db.skeptic(subject, "risk", lens="recency")


def test_trace_shows_the_parent_chain_and_votes(db: Client, db_bob: Client, subject: str) -> None:
    root = db.assert_(subject, "risk", "rare", 0.8)
    child = db.assert_(subject, "risk", "rare", 0.7, parent=root.id)
    db_bob.vote(child.id, 1.0)
    trace = db.trace(child.id)
    assert trace.id == child.id
    assert [p.id for p in trace.parents] == [root.id]
    assert len(trace.votes) == 1
    assert child.id in db.trace(root.id).children


def test_audit_lists_the_clients_own_queries(db: Client, alice: AgentKey, subject: str) -> None:
    db.assert_(subject, "risk", "rare", 0.8)
    asked = db.query(subject, "risk")
    records = db.audit_queries(agent_id=alice.agent_id, limit=1000)
    assert asked.query_id in {r.query_id for r in records}
    record = db.audit_query(asked.query_id)
    assert (record.subject, record.predicate, record.agent_id) == (subject, "risk", alice.agent_id)
    assert record.contributions and record.contributions[0].weight > 0
    assert db.audit_queries(since=time.time() + 3600) == []


def test_feed_pages_and_long_polls(db: Client, subject: str) -> None:
    head = db.feed(0, limit=1).last_lsn
    written = db.assert_(subject, "risk", "rare", 0.8)
    page = db.feed(head, limit=10)
    assert written.lsn in {item.lsn for item in page.items}
    assert page.next_after >= written.lsn

    latest = db.feed(0, limit=1).last_lsn
    with ThreadPoolExecutor(1) as later:  # joined before the client closes
        late = later.submit(_after, 0.3, lambda: db.assert_(subject, "late", "x", 0.5))
        started = time.monotonic()
        waited = db.feed(latest, limit=10, wait_seconds=2)
        elapsed = time.monotonic() - started
        assert late.result().lsn > latest  # the write's own failure fails this test
    assert waited.items and waited.items[0].kind == "assertion"
    assert elapsed < 2.0


def test_stream_feed_yields_records_as_they_commit(db: Client, subject: str) -> None:
    head = db.feed(0, limit=1).last_lsn
    first = db.assert_(subject, "risk", "one", 0.5)
    stream = db.stream_feed(after=head)
    # Joined before the client closes: the write is streamed before its answer arrives.
    with ThreadPoolExecutor(1) as later:
        try:
            item = next(stream)
            assert (item.lsn, item.kind, item.id) == (first.lsn, "assertion", first.id)
            second = later.submit(_after, 0.2, lambda: db.assert_(subject, "risk", "two", 0.5))
            item = next(stream)
            assert item.kind == "assertion" and isinstance(item.record, Assertion)
            assert item.record.object == ObjectValue("text", "two")
            assert second.result().id == item.id
        finally:
            stream.close()


def test_agent_counts_what_the_agent_signed(db: Client, alice: AgentKey, subject: str) -> None:
    before = db.agent(alice.agent_id).counts.assertions
    db.assert_(subject, "risk", "rare", 0.8)
    info = db.agent(alice.agent_id)
    assert info.agent_id == alice.agent_id
    assert info.counts.assertions == before + 1
    assert 0.0 <= info.trust <= 1.0


def test_sources_are_listed_with_a_cursor(db: Client, subject: str) -> None:
    for i in range(3):
        db.register_source(f"doi:{subject}/{i}", f"{subject} content {i}")
    first = db.sources(limit=1)
    assert len(first.sources) == 1 and first.next_cursor is not None
    second = db.sources(cursor=first.next_cursor, limit=1)
    assert second.sources[0].source_hash > first.sources[0].source_hash


def test_health_and_ready(db: Client) -> None:
    health = db.health()
    assert health.status == "ok" and health.version
    ready = db.ready()
    assert ready.status == "ready" and ready.reasons == []
