"""Audit records, provenance trace, the change feed, materialized views and the result
cache of the query service."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest

from stemedb.engine import Engine
from stemedb.errors import NotFoundError, ValidationError
from stemedb.model.ids import record_id
from stemedb.model.records import Assertion, CoSignature
from stemedb.model.signing import (
    AgentKey,
    cosign,
    sign_epoch,
    sign_source,
    sign_supersession,
    sign_vote,
)
from stemedb.query.params import QueryParams
from stemedb.query.service import QueryService
from stemedb.sys.faults import FakeClock
from stemedb.wire import QueryResult

T0 = 1_700_000_000
SUBJECT, PREDICATE = "drugs/semaglutide", "gastroparesis_risk"
PLAIN = QueryParams(subject=SUBJECT, predicate=PREDICATE)

Claim = Callable[..., Assertion]


def plain_data(result: QueryResult) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(result)
    data.pop("query_id")
    return data


# -- audit ----------------------------------------------------------------------------


def test_every_query_is_audited_with_asker_parameters_winner_and_contributions(
    engine: Engine, service: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    a = engine.write(claim("rare", confidence=0.9)).id
    b = engine.write(claim("common", key=keys[1], confidence=0.3)).id
    asker = keys[4].agent_id
    q = service.query(
        QueryParams(subject=SUBJECT, predicate=PREDICATE, lens="confidence"), asker=asker
    )
    rec = service.audit_record(q.query_id)
    assert rec.agent_id == asker and rec.lens == "confidence"
    assert (rec.subject, rec.predicate) == (SUBJECT, PREDICATE)
    assert rec.parameters["subject"] == SUBJECT and rec.parameters["lens"] == "confidence"
    assert rec.winner == a
    assert {c.assertion_id: c.weight for c in rec.contributions} == {
        c.id: c.weight for c in q.claims
    }
    assert {c.assertion_id for c in rec.contributions} == {a, b}
    service.skeptic(SUBJECT, PREDICATE, asker=asker)
    service.query(PLAIN, asker=keys[3].agent_id)
    listed = service.audit.list(agent_id=asker, since=None, until=None, limit=10)
    assert [r.endpoint for r in listed] == ["skeptic", "query"]  # newest first
    assert listed[1].query_id == q.query_id
    assert service.audit_record(q.query_id) == rec  # also after the flush to disk


def test_unknown_query_id_is_not_found(service: QueryService) -> None:
    with pytest.raises(NotFoundError):
        service.audit_record("0" * 32)


def test_audit_survives_a_restart_of_the_service(
    make_engine: Callable[..., Engine], claim: Claim
) -> None:
    engine = make_engine()
    engine.write(claim())
    service = QueryService(engine, refresh_views=False)
    query_id = service.query(PLAIN, asker="auditor").query_id
    service.close()
    engine.close()
    reopened = QueryService(make_engine(), refresh_views=False)
    try:
        assert reopened.audit_record(query_id).agent_id == "auditor"
    finally:
        reopened.close()


def _audit_rows(service: QueryService) -> tuple[int, int]:
    """(audit_queries, audit_claims) rows in audit.sqlite, or in the PostgreSQL tables."""
    tables = ("audit_queries", "audit_claims")
    if service.store.backend == "postgres":
        import psycopg

        with psycopg.connect(service.store.dsn) as pg:  # type: ignore[attr-defined]
            counts = [pg.execute(f"SELECT count(*) FROM {t}").fetchone() for t in tables]
        return tuple(row[0] for row in counts if row is not None)  # type: ignore[return-value]
    conn = service.store._db.audit_reader()
    return tuple(  # type: ignore[return-value]
        conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables
    )


@pytest.mark.parametrize("chunk", [2, 2_000])
def test_audit_retention_deletes_old_queries_and_their_claim_links(
    engine: Engine,
    clock: FakeClock,
    claim: Claim,
    keys: list[AgentKey],
    chunk: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("stemedb.query.audit.PRUNE_CHUNK_QUERIES", chunk)
    a = engine.write(claim("rare")).id
    engine.write(claim("common", key=keys[1]))
    service = QueryService(
        engine,
        refresh_views=False,
        audit_retention_seconds=3600.0,
        audit_prune_interval_seconds=3600.0,
    )
    try:
        old = [service.query(PLAIN, asker="early").query_id for _ in range(5)]
        clock.advance(3000)
        middle = service.query(PLAIN, asker="middle").query_id
        clock.advance(1000)  # the first five are 4,000 s old, the middle one 1,000 s
        new = service.query(PLAIN, asker="late").query_id
        service.audit.flush()
        assert _audit_rows(service) == (7, 14)
        assert service.audit.prune() == 5
        assert service.audit.pruned == 5
        assert _audit_rows(service) == (2, 4)  # no claim link of a pruned query is left
        for query_id in old:
            with pytest.raises(NotFoundError):
                service.audit_record(query_id)
        assert service.audit_record(middle).agent_id == "middle"
        assert set(service.audit.queries_using(a)) == {middle, new}
        listed = service.audit.list(agent_id=None, since=None, until=None, limit=10)
        assert [r.query_id for r in listed] == [new, middle]
        assert service.audit.prune() == 0  # nothing more is old enough
    finally:
        service.close()


def test_without_retention_nothing_is_pruned(
    engine: Engine, service: QueryService, clock: FakeClock, claim: Claim
) -> None:
    engine.write(claim())
    service.query(PLAIN)
    clock.advance(10 * 365 * 86400)
    assert service.audit.prune() == 0
    service.audit.flush()
    assert _audit_rows(service) == (1, 1)


def test_the_audit_thread_prunes_on_its_own(engine: Engine, clock: FakeClock, claim: Claim) -> None:
    engine.write(claim())
    service = QueryService(
        engine,
        refresh_views=False,
        audit_retention_seconds=60.0,
        audit_prune_interval_seconds=0.05,
    )
    try:
        query_id = service.query(PLAIN).query_id
        clock.advance(61)
        deadline = time.monotonic() + 10
        while service.audit.pruned == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert service.audit.pruned == 1
        with pytest.raises(NotFoundError):
            service.audit_record(query_id)
    finally:
        service.close()


# -- provenance -------------------------------------------------------------------------


def test_trace_includes_source_parents_supersessions_votes_epoch_and_queries(
    engine: Engine, service: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    src = sign_source(
        keys[0], uri="fda://label", content="label", source_class="regulatory", timestamp=T0
    )
    epoch = sign_epoch(keys[0], name="2023", timestamp=T0 - 100)
    engine.write_many([src, epoch])
    root = engine.write(claim("rare", timestamp=T0 - 90)).id
    middle = engine.write(claim("uncommon", parent=root, timestamp=T0 - 80)).id
    leaf_claim = claim(
        "common",
        parent=middle,
        source_hash=src.source_hash,
        epoch=record_id(epoch),
        timestamp=T0 - 70,
    )
    leaf = engine.write(leaf_claim).id
    replacement = engine.write(claim("very_common", timestamp=T0 - 60)).id
    engine.write(cosign(keys[1], leaf, signed_at=T0))
    engine.write(sign_vote(keys[2], assertion_id=leaf, weight=0.4, timestamp=T0 - 5))
    engine.write(sign_vote(keys[2], assertion_id=leaf, weight=0.9, timestamp=T0))
    sup = engine.write(
        sign_supersession(keys[0], old=leaf, new=replacement, reason="update", timestamp=T0)
    ).id
    used = service.query(QueryParams(subject=SUBJECT, predicate=PREDICATE, include_superseded=True))

    trace = service.provenance.trace(leaf)
    assert trace.source is not None and trace.source.source_hash == src.source_hash
    assert [p.id for p in trace.parents] == [middle, root]
    assert [s.id for s in trace.supersessions] == [sup]
    assert trace.assertion.superseded_by == [replacement]
    assert [v.weight for v in trace.votes] == [0.4, 0.9]
    assert trace.assertion.votes.weight == pytest.approx(0.9)  # the latest vote counts
    assert trace.epoch is not None and trace.epoch.name == "2023"
    assert [s.agent_id for s in trace.assertion.signatures] == [keys[0].agent_id, keys[1].agent_id]
    assert trace.assertion.source_class == "regulatory"
    assert trace.queries == [used.query_id]
    assert service.provenance.trace(root).children == [middle]
    assert service.provenance.trace(replacement).assertion.supersedes == [leaf]


def test_trace_of_unknown_or_malformed_id_fails_clearly(service: QueryService) -> None:
    with pytest.raises(NotFoundError):
        service.provenance.trace("ab" * 32)
    with pytest.raises(ValidationError):
        service.provenance.trace("not-an-id")


def test_feed_returns_records_after_an_lsn_in_order_with_kinds(
    engine: Engine, service: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    a = engine.write(claim()).id
    engine.write_many(
        [
            cosign(keys[1], a, signed_at=T0),
            sign_vote(keys[2], assertion_id=a, weight=0.5, timestamp=T0),
            sign_epoch(keys[0], name="e", timestamp=T0),
            sign_source(keys[0], uri="u", content="c", timestamp=T0),
        ]
    )
    page = service.provenance.feed(after=1, limit=10)
    assert [i.lsn for i in page.items] == [2, 3, 4, 5]
    assert [i.kind for i in page.items] == ["cosignature", "vote", "epoch", "source"]
    record = page.items[0].record
    assert isinstance(record, CoSignature) and record.assertion_id == a
    assert page.next_after == 5 and page.last_lsn == 5
    first_two = service.provenance.feed(after=0, limit=2)
    assert [i.lsn for i in first_two.items] == [1, 2] and first_two.next_after == 2
    assert first_two.items[0].id == a and first_two.items[0].kind == "assertion"
    assert service.provenance.feed(after=5, limit=10).items == []
    with pytest.raises(ValidationError):
        service.provenance.feed(after=-1, limit=10)


# -- materialized views and the cache ------------------------------------------------------


@pytest.fixture
def manual_views(engine: Engine) -> Iterator[QueryService]:
    """A service whose view refresher thread is stopped: views refresh only on demand."""
    service = QueryService(engine)
    service.views.close()
    yield service
    service.audit.close()


def test_plain_query_is_served_from_a_fresh_view_equal_to_a_live_computation(
    engine: Engine, manual_views: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    engine.write_many([claim("rare"), claim("common", key=keys[1]), claim("common", key=keys[2])])
    assert manual_views.views.lookup(SUBJECT, PREDICATE, 100, None) is None  # dirty
    manual_views.views.refresh([(SUBJECT, PREDICATE)])
    assert manual_views.views.pending() == 0
    view = manual_views.views.lookup(SUBJECT, PREDICATE, 100, None)
    assert view is not None
    served = manual_views.query(PLAIN)
    assert plain_data(served) == plain_data(view)
    live_service = QueryService(engine, refresh_views=False)
    try:
        live = live_service.query(PLAIN)
    finally:
        live_service.close()
    assert plain_data(served) == plain_data(live)
    assert served.stale is False


def test_write_after_a_view_refresh_is_seen_by_the_next_query(
    engine: Engine, manual_views: QueryService, claim: Claim, keys: list[AgentKey], clock: FakeClock
) -> None:
    engine.write(claim("rare", confidence=0.3))
    manual_views.views.refresh([(SUBJECT, PREDICATE)])
    before = manual_views.query(PLAIN)
    new = engine.write(claim("common", key=keys[1], confidence=0.9)).id
    after = manual_views.query(PLAIN)
    assert after.stale is False
    assert new in {c.id for c in after.claims}
    assert after.resolution is not None and after.resolution.winner is not None
    assert after.resolution.winner.id == new
    stale = manual_views.query(msgspec.structs.replace(PLAIN, max_stale_seconds=60))
    assert stale.stale is True
    assert plain_data(stale)["claims"] == plain_data(before)["claims"]
    clock.advance(61)
    too_old = manual_views.query(msgspec.structs.replace(PLAIN, max_stale_seconds=60))
    assert too_old.stale is False and new in {c.id for c in too_old.claims}


def test_view_older_than_its_max_age_is_not_served(
    engine: Engine, manual_views: QueryService, claim: Claim, clock: FakeClock
) -> None:
    engine.write(claim())
    manual_views.views.refresh([(SUBJECT, PREDICATE)])
    assert manual_views.views.lookup(SUBJECT, PREDICATE, 100, None) is not None
    clock.advance(3601)
    assert manual_views.views.lookup(SUBJECT, PREDICATE, 100, None) is None


def test_a_key_that_is_read_is_kept_fresh(
    engine: Engine, manual_views: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    views = manual_views.views
    engine.write(claim("rare"))
    assert views.lookup(SUBJECT, PREDICATE, 100, None) is None  # no view yet: now wanted
    assert views.pending() == 1
    views.refresh([(SUBJECT, PREDICATE)])
    assert views.lookup(SUBJECT, PREDICATE, 100, None) is not None
    engine.write(claim("common", key=keys[1]))
    assert views.pending() == 1  # dirty: recomputed, not dropped
    assert views.lookup(SUBJECT, PREDICATE, 100, None) is None


def test_a_write_to_a_key_nobody_reads_leaves_its_view_alone(
    engine: Engine, manual_views: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    engine.write(claim("rare"))
    manual_views.views.refresh([(SUBJECT, PREDICATE)])
    manual_views.close()  # the view stays in the store; nobody here has read the key
    reopened = QueryService(engine)
    reopened.views.close()  # refreshes on demand only
    try:
        engine.write(claim("common", key=keys[1]))
        assert reopened.views.pending() == 0 and reopened.views.refreshed == 0
        assert reopened.views.lookup(SUBJECT, PREDICATE, 100, None) is None  # not ours
        stale = reopened.views.lookup(SUBJECT, PREDICATE, 100, 3600)
        assert stale is not None and stale.stale is True and len(stale.claims) == 1
    finally:
        reopened.audit.close()


def test_views_computed_before_the_service_opened_are_not_served(
    engine: Engine, manual_views: QueryService, claim: Claim
) -> None:
    engine.write(claim("rare"))
    manual_views.views.refresh([(SUBJECT, PREDICATE)])
    assert manual_views.views.lookup(SUBJECT, PREDICATE, 100, None) is not None
    reopened = QueryService(engine)  # its dirty marks start empty: old views may be stale
    try:
        assert reopened.views.lookup(SUBJECT, PREDICATE, 100, None) is None
    finally:
        reopened.close()


def test_background_view_refresh_converges_and_stays_equal_to_live_answers(
    engine: Engine, service: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    for i in range(5):
        engine.write(claim(f"v{i % 2}", key=keys[i], timestamp=T0 - 100 + i))
        q = service.query(PLAIN)
        assert len(q.claims) == i + 1  # never a stale view
    for _ in range(500):  # the refresher runs on its own thread: poll (real time)
        if service.views.pending() == 0 and service.store.view(SUBJECT, PREDICATE):
            break
        time.sleep(0.01)
    assert service.views.pending() == 0
    live = QueryService(engine, refresh_views=False)
    try:
        assert plain_data(service.query(PLAIN)) == plain_data(live.query(PLAIN))
    finally:
        live.close()


def test_cached_result_is_invalidated_by_a_write_to_its_key(
    engine: Engine, service: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    written = engine.write(claim("rare")).lsn
    # The PostgreSQL store's watcher invalidates the key a second time when it catches up
    # with this node's own commit (a known extra miss): wait for it before caching.
    seen_lsn = getattr(service.store, "seen_lsn", None)
    deadline = time.monotonic() + 10.0
    while seen_lsn is not None and seen_lsn() < written:
        assert time.monotonic() < deadline, "the watcher did not catch up"
        time.sleep(0.01)
    params = QueryParams(subject=SUBJECT, predicate=PREDICATE, lens="recency")
    first = service.query(params)
    hits = service.store.cache.hits
    again = service.query(params)
    assert service.store.cache.hits == hits + 1
    assert plain_data(again) == plain_data(first)
    engine.write(claim("unrelated", subject="drugs/other"))
    assert service.query(params).claims[0].id == first.claims[0].id
    newer = engine.write(claim("common", key=keys[1], timestamp=T0 - 10)).id
    after = service.query(params)
    assert after.claims[0].id == newer and len(after.claims) == 2


def test_cached_result_is_invalidated_by_a_cosignature_and_a_vote(
    engine: Engine, service: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    a = engine.write(claim("rare")).id
    params = QueryParams(subject=SUBJECT, predicate=PREDICATE, lens="votes")
    assert service.query(params).claims[0].vote_weight == 0.0
    engine.write(sign_vote(keys[1], assertion_id=a, weight=0.7, timestamp=T0))
    assert service.query(params).claims[0].vote_weight == pytest.approx(0.7)
    engine.write(cosign(keys[2], a, signed_at=T0))
    assert len(service.query(params).claims[0].signatures) == 2
