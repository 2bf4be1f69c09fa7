"""The invalidation cascade of a retracted source, cursor pagination, and parameter
validation of the query service."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

from stemedb.config import DefenceConfig
from stemedb.engine import Engine, WriteResult
from stemedb.errors import ValidationError
from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey, sign_retraction, sign_source
from stemedb.query.params import QueryParams
from stemedb.query.service import QueryService
from stemedb.sys.faults import FakeClock
from stemedb.wire import QueryResult

T0 = 1_700_000_000
SUBJECT, PREDICATE = "drugs/semaglutide", "gastroparesis_risk"

Claim = Callable[..., Assertion]


def ids_of(q: QueryResult) -> set[str]:
    return {c.id for c in q.claims}


# -- the invalidation cascade ---------------------------------------------------------


def test_retracting_a_source_excludes_citing_claims_and_their_descendants_with_warnings(
    engine: Engine, service: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    src = sign_source(keys[0], uri="doi:10/fraud", content="paper", timestamp=T0 - 200)
    engine.write(src)
    cites = engine.write(claim("rare", source_hash=src.source_hash, timestamp=T0 - 100)).id
    child = engine.write(claim("uncommon", key=keys[1], parent=cites, timestamp=T0 - 90)).id
    other = QueryParams(subject="drugs/other", predicate="risk")
    grandchild = engine.write(
        claim("x", key=keys[2], parent=child, subject="drugs/other", predicate="risk")
    ).id
    clean = engine.write(claim("common", key=keys[3], timestamp=T0 - 80)).id
    clean_child = engine.write(claim("common", key=keys[4], parent=clean, timestamp=T0 - 70)).id
    before_other = service.query(other)  # cached before the retraction
    assert ids_of(before_other) == {grandchild}

    engine.write(
        sign_retraction(keys[0], source_hash=src.source_hash, reason="fraud", timestamp=T0)
    )

    q = service.query(QueryParams(subject=SUBJECT, predicate=PREDICATE))
    assert ids_of(q) == {clean, clean_child}
    warnings = {w.assertion_id: (w.kind, w.source_hash, w.reason) for w in q.source_warnings}
    assert warnings == {
        cites: ("retracted_source", src.source_hash, "fraud"),
        child: ("retracted_ancestor", src.source_hash, "fraud"),
    }
    after_other = service.query(other)
    assert after_other.claims == []
    assert [(w.assertion_id, w.kind) for w in after_other.source_warnings] == [
        (grandchild, "retracted_ancestor")
    ]
    detail = service.provenance.assertion(grandchild)
    assert detail.source_warnings[0].kind == "retracted_ancestor"


def test_claims_written_after_the_retraction_are_tainted_too(
    engine: Engine, service: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    src = sign_source(keys[0], uri="doi:10/fraud", content="paper", timestamp=T0 - 200)
    engine.write(src)
    cites = engine.write(claim("rare", source_hash=src.source_hash, timestamp=T0 - 100)).id
    engine.write(sign_retraction(keys[0], source_hash=src.source_hash, reason="x", timestamp=T0))
    late_cite = engine.write(claim("r2", key=keys[1], source_hash=src.source_hash)).id
    late_child = engine.write(claim("r3", key=keys[2], parent=cites)).id
    q = service.query(QueryParams(subject=SUBJECT, predicate=PREDICATE))
    assert q.claims == []
    assert {w.assertion_id: w.kind for w in q.source_warnings} == {
        cites: "retracted_source",
        late_cite: "retracted_source",
        late_child: "retracted_ancestor",
    }
    skeptic = service.skeptic(SUBJECT, PREDICATE)
    assert skeptic.candidates_count == 0 and len(skeptic.source_warnings) == 3


def test_prefix_query_reports_warnings_of_a_key_whose_claims_are_all_retracted(
    engine: Engine, service: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    src = sign_source(keys[0], uri="doi:10/fraud", content="paper", timestamp=T0 - 200)
    engine.write(src)
    tainted = engine.write(claim("rare", subject="drugs/a", source_hash=src.source_hash)).id
    engine.write(claim("ok", subject="drugs/b"))
    engine.write(sign_retraction(keys[0], source_hash=src.source_hash, reason="x", timestamp=T0))
    q = service.query(QueryParams(subject_prefix="drugs/", predicate=PREDICATE))
    assert q.results is not None
    by_subject = {g.subject: g.resolution for g in q.results}
    assert by_subject["drugs/a"].winner is None
    assert by_subject["drugs/b"].winner is not None
    assert [w.assertion_id for w in q.source_warnings] == [tainted]


# -- pagination -----------------------------------------------------------------------


def page_through(
    service: QueryService, params: QueryParams, between: Callable[[], None]
) -> list[QueryResult]:
    pages = [service.query(params)]
    while pages[-1].next_cursor:
        between()
        cursor = pages[-1].next_cursor
        pages.append(service.query(msgspec.structs.replace(params, cursor=cursor)))
        assert len(pages) < 50
    return pages


def test_cursor_pages_return_every_claim_once_in_stable_order_despite_writes(
    make_engine: Callable[..., Engine], claim: Claim, keys: list[AgentKey], clock: FakeClock
) -> None:
    # the same values again and again from five agents: screening would hold the repeats
    engine = make_engine(defence=DefenceConfig(quarantine=False))
    service = QueryService(engine)
    written = engine.write_many(
        [
            claim(f"v{i % 4}", key=keys[i % 5], confidence=0.5 + i / 100, timestamp=T0 - 1000 + i)
            for i in range(25)
        ]
    )
    all_ids = {r.id for r in written if isinstance(r, WriteResult)}
    params = QueryParams(subject=SUBJECT, predicate=PREDICATE, lens="confidence", limit=10)
    expected = [c.id for c in service.query(msgspec.structs.replace(params, limit=100)).claims]
    extra = iter(range(100))

    def write_more() -> None:
        clock.advance(1)
        engine.write(claim("v9", confidence=1.0, timestamp=T0 - 10 + next(extra)))

    pages = page_through(service, params, write_more)
    assert [len(p.claims) for p in pages] == [10, 10, 5]
    seen = [c.id for p in pages for c in p.claims]
    assert seen == expected
    assert set(seen) == all_ids and len(seen) == len(set(seen))
    assert {p.as_of_lsn for p in pages} == {25}
    assert len(service.query(params).claims) == 10  # a fresh query sees the new writes
    fresh = service.query(msgspec.structs.replace(params, limit=100)).resolution
    assert fresh is not None and fresh.candidates_count == 27
    service.close()


def test_prefix_cursor_pages_return_every_key_once_despite_new_subjects(
    engine: Engine, service: QueryService, claim: Claim
) -> None:
    subjects = [f"drugs/d{i:03d}" for i in range(0, 240, 2)]
    engine.write_many([claim("v", subject=s) for s in subjects])
    params = QueryParams(subject_prefix="drugs/", predicate=PREDICATE, limit=50)
    new = iter(f"drugs/d{i:03d}" for i in range(1, 240, 40))

    def write_subject() -> None:
        engine.write(claim("n", subject=next(new)))

    pages = page_through(service, params, write_subject)
    seen = [g.subject for p in pages for g in p.results or []]
    assert seen == subjects
    assert [len(p.results or []) for p in pages] == [50, 50, 20]


def test_garbage_cursor_is_a_validation_error_on_field_cursor(
    engine: Engine, service: QueryService, claim: Claim
) -> None:
    engine.write(claim())
    for cursor in ("garbage!", "", "AAAA", "x" * 40):
        with pytest.raises(ValidationError) as info:
            service.query(QueryParams(subject=SUBJECT, predicate=PREDICATE, cursor=cursor or "=="))
        assert info.value.field == "cursor"


def test_cursor_of_another_query_is_refused(
    engine: Engine, service: QueryService, claim: Claim
) -> None:
    engine.write_many([claim(f"v{i}", timestamp=T0 - 100 + i) for i in range(5)])
    first = service.query(QueryParams(subject=SUBJECT, predicate=PREDICATE, limit=2))
    assert first.next_cursor
    foreign = [
        QueryParams(subject="drugs/other", predicate=PREDICATE, limit=2, cursor=first.next_cursor),
        QueryParams(
            subject=SUBJECT, predicate=PREDICATE, lens="recency", limit=2, cursor=first.next_cursor
        ),
        QueryParams(subject_prefix="drugs/", limit=2, cursor=first.next_cursor),
    ]
    for params in foreign:
        with pytest.raises(ValidationError) as info:
            service.query(params)
        assert info.value.field == "cursor"
    same = QueryParams(subject=SUBJECT, predicate=PREDICATE, limit=3, cursor=first.next_cursor)
    assert len(service.query(same).claims) == 3  # the limit may change between pages


# -- parameter validation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (QueryParams(subject=SUBJECT, predicate=PREDICATE, limit=0), "limit"),
        (QueryParams(subject=SUBJECT, predicate=PREDICATE, limit=1001), "limit"),
        (QueryParams(subject=SUBJECT, predicate=PREDICATE, lens="popularity"), "lens"),
        (QueryParams(predicate=PREDICATE), "subject"),
        (QueryParams(subject=SUBJECT, subject_prefix="drugs/"), "subject"),
        (QueryParams(subject=SUBJECT, lifecycle=("archived",)), "lifecycle"),
        (QueryParams(subject=SUBJECT, source_class=("blog",)), "source_class"),
        (QueryParams(subject=SUBJECT, epoch="xyz"), "epoch"),
        (QueryParams(subject=SUBJECT, agent_id="AB" * 32), "agent_id"),
        (QueryParams(subject=SUBJECT, as_of=float("nan")), "as_of"),
        (QueryParams(subject=SUBJECT, valid_at=-1.0), "valid_at"),
        (QueryParams(subject="a\x00b"), "subject"),
    ],
)
def test_bad_parameter_is_a_validation_error_naming_the_field(
    service: QueryService, params: QueryParams, field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        service.query(params)
    assert info.value.field == field


def test_limit_bounds_are_inclusive(engine: Engine, service: QueryService, claim: Claim) -> None:
    engine.write(claim())
    for limit in (1, 1000):
        assert (
            len(
                service.query(QueryParams(subject=SUBJECT, predicate=PREDICATE, limit=limit)).claims
            )
            == 1
        )
