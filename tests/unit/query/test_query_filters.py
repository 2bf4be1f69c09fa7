"""Candidate selection filters (ARCHITECTURE §7): prefix, predicate, agent, source
class, lifecycle, epochs, transaction time (as_of), valid time, since, retracted and
superseded claims."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stemedb.engine import Engine
from stemedb.model.ids import record_id
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
from stemedb.sys.faults import FakeClock
from stemedb.wire import QueryResult

T0 = 1_700_000_000
SUBJECT, PREDICATE = "drugs/semaglutide", "gastroparesis_risk"

Claim = Callable[..., Assertion]


def ids_of(q: QueryResult) -> set[str]:
    return {c.id for c in q.claims}


def winner_value(q: QueryResult) -> Any:
    assert q.resolution is not None and q.resolution.winner is not None
    return q.resolution.winner.object.value


def query(service: QueryService, **kw: Any) -> QueryResult:
    kw.setdefault("subject", SUBJECT)
    kw.setdefault("predicate", PREDICATE)
    if "subject_prefix" in kw:
        kw.pop("subject")
    return service.query(QueryParams(**kw))


# -- subject prefix and predicate ------------------------------------------------------


def test_subject_prefix_is_an_exact_byte_prefix(
    engine: Engine, service: QueryService, claim: Claim
) -> None:
    subjects = ["drugs/x/", "drugs/x/a", "drugs/x/b/c", "drugs/x/é", "drugs/x", "drugs/xa"]
    subjects += ["drugs/x0", "drugs/w/a", "drugs/y/a", "Drugs/x/a"]
    engine.write_many([claim("v", subject=s) for s in subjects])
    q = service.query(QueryParams(subject_prefix="drugs/x/", predicate=PREDICATE))
    assert q.results is not None
    assert [g.subject for g in q.results] == ["drugs/x/", "drugs/x/a", "drugs/x/b/c", "drugs/x/é"]
    everything = service.query(QueryParams(subject_prefix="", predicate=PREDICATE))
    assert everything.results is not None and len(everything.results) == len(subjects)


def test_subject_prefix_matches_subjects_with_the_highest_code_point_after_it(
    engine: Engine, service: QueryService, claim: Claim
) -> None:
    # Regression: the range's upper bound was prefix + U+10FFFF, so a subject that
    # continues with U+10FFFF and more characters fell outside the byte range.
    subjects = ["drugs/x/\U0010ffff", "drugs/x/\U0010ffffz", "drugs/x/\U0010ffff\U0010ffff"]
    engine.write_many([claim("v", subject=s) for s in [*subjects, "drugs/y"]])
    q = service.query(QueryParams(subject_prefix="drugs/x/", predicate=PREDICATE))
    assert q.results is not None
    assert [g.subject for g in q.results] == subjects


def test_prefix_query_with_predicate_filter_returns_only_that_predicate(
    engine: Engine, service: QueryService, claim: Claim
) -> None:
    engine.write_many(
        [
            claim("rare", subject="drugs/a"),
            claim(1.0, subject="drugs/a", predicate="dose_mg"),
            claim("common", subject="drugs/b"),
        ]
    )
    q = service.query(QueryParams(subject_prefix="drugs/", predicate=PREDICATE))
    assert q.results is not None
    assert {(g.subject, g.predicate) for g in q.results} == {
        ("drugs/a", PREDICATE),
        ("drugs/b", PREDICATE),
    }
    both = service.query(QueryParams(subject_prefix="drugs/"))
    assert both.results is not None and len(both.results) == 3
    one = service.query(QueryParams(subject="drugs/a"))  # subject without predicate
    assert one.results is not None
    assert sorted(g.predicate for g in one.results) == ["dose_mg", PREDICATE]


# -- agent, source class, lifecycle ------------------------------------------------------


def test_agent_filter_keeps_claims_the_agent_signed_or_cosigned(
    engine: Engine, service: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    a = engine.write(claim("rare", key=keys[0])).id
    b = engine.write(claim("common", key=keys[1])).id
    engine.write(claim("uncommon", key=keys[2]))
    engine.write(cosign(keys[1], a, signed_at=T0))
    assert ids_of(query(service, agent_id=keys[1].agent_id)) == {a, b}
    assert ids_of(query(service, agent_id=keys[0].agent_id)) == {a}
    assert ids_of(query(service, agent_id=keys[4].agent_id)) == set()


def test_source_class_filter_uses_the_effective_class(
    engine: Engine, service: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    src = sign_source(
        keys[0], uri="fda://label", content="label", source_class="regulatory", timestamp=T0
    )
    engine.write(src)
    from_source = engine.write(claim("rare", source_hash=src.source_hash)).id
    explicit = engine.write(claim("common", key=keys[1], source_class="clinical")).id
    default = engine.write(claim("uncommon", key=keys[2])).id  # expert by default
    assert ids_of(query(service, source_class=("regulatory",))) == {from_source}
    assert ids_of(query(service, source_class=("clinical", "expert"))) == {explicit, default}
    q = query(service)
    assert {c.id: c.source_class for c in q.claims}[from_source] == "regulatory"


def test_source_registered_after_the_claim_gives_it_its_class(
    engine: Engine, service: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    src = sign_source(
        keys[0], uri="fda://label", content="late", source_class="regulatory", timestamp=T0
    )
    cited = engine.write(claim("rare", source_hash=src.source_hash)).id
    assert ids_of(query(service, source_class=("expert",))) == {cited}
    engine.write(src)
    assert ids_of(query(service, source_class=("regulatory",))) == {cited}


def test_default_lifecycle_excludes_deprecated_and_rejected(
    engine: Engine, service: QueryService, claim: Claim
) -> None:
    by_state = {
        state: engine.write(claim(state, lifecycle=state)).id
        for state in ("proposed", "under_review", "approved", "deprecated", "rejected")
    }
    assert ids_of(query(service)) == {
        by_state["proposed"],
        by_state["under_review"],
        by_state["approved"],
    }
    assert ids_of(query(service, lifecycle=("deprecated",))) == {by_state["deprecated"]}
    rejected_or_approved = query(service, lifecycle=("rejected", "approved"))
    assert ids_of(rejected_or_approved) == {by_state["rejected"], by_state["approved"]}


# -- epochs -----------------------------------------------------------------------------


@pytest.fixture
def epochs(engine: Engine, keys: list[AgentKey]) -> dict[str, str]:
    old = sign_epoch(keys[0], name="pre-2023", timestamp=T0 - 100)
    refined = sign_epoch(keys[0], name="refined-base", timestamp=T0 - 100)
    engine.write_many([old, refined])
    return {"old": record_id(old), "refined": record_id(refined)}


def test_replace_epoch_hides_claims_of_the_epoch_it_supersedes_by_default(
    engine: Engine,
    service: QueryService,
    claim: Claim,
    keys: list[AgentKey],
    epochs: dict[str, str],
) -> None:
    old_claim = engine.write(claim("rare", epoch=epochs["old"])).id
    plain = engine.write(claim("common", key=keys[1])).id
    assert ids_of(query(service)) == {old_claim, plain}
    new = engine.write(
        sign_epoch(keys[0], name="2023", supersedes=(epochs["old"],), kind="replace", timestamp=T0)
    ).id
    new_claim = engine.write(claim("uncommon", key=keys[2], epoch=new)).id
    assert ids_of(query(service)) == {plain, new_claim}
    assert ids_of(query(service, epoch=epochs["old"])) == {old_claim}
    assert ids_of(query(service, epoch=new)) == {new_claim}


def test_refine_epoch_does_not_hide_the_epoch_it_supersedes(
    engine: Engine,
    service: QueryService,
    claim: Claim,
    keys: list[AgentKey],
    epochs: dict[str, str],
) -> None:
    base = engine.write(claim("rare", epoch=epochs["refined"])).id
    engine.write(
        sign_epoch(
            keys[0], name="refinement", supersedes=(epochs["refined"],), kind="refine", timestamp=T0
        )
    )
    assert ids_of(query(service)) == {base}


def test_claim_in_an_unknown_epoch_is_never_hidden(
    engine: Engine, service: QueryService, claim: Claim
) -> None:
    stray = engine.write(claim("rare", epoch="cd" * 32)).id
    assert ids_of(query(service)) == {stray}
    assert ids_of(query(service, epoch="cd" * 32)) == {stray}


# -- transaction time --------------------------------------------------------------------


def test_as_of_hides_claims_written_later(
    engine: Engine, service: QueryService, claim: Claim, clock: FakeClock, keys: list[AgentKey]
) -> None:
    early = engine.write(claim("rare")).id
    clock.advance(60)
    engine.write(claim("common", key=keys[1], timestamp=T0 - 50))
    past = query(service, as_of=T0 + 30, lens="recency")
    assert ids_of(past) == {early}
    assert winner_value(past) == "rare"
    assert past.as_of_lsn == 1
    assert len(query(service, as_of=T0 + 60).claims) == 2
    assert query(service, as_of=T0 - 1).claims == []


def test_as_of_before_a_retraction_does_not_apply_it(
    engine: Engine, service: QueryService, claim: Claim, clock: FakeClock, keys: list[AgentKey]
) -> None:
    src = sign_source(keys[0], uri="doi:10/x", content="paper", timestamp=T0 - 100)
    engine.write(src)
    cited = engine.write(claim("rare", source_hash=src.source_hash)).id
    clock.advance(60)
    engine.write(
        sign_retraction(keys[0], source_hash=src.source_hash, reason="fraud", timestamp=T0)
    )
    now = query(service)
    assert cited not in ids_of(now) and [w.assertion_id for w in now.source_warnings] == [cited]
    past = query(service, as_of=T0 + 30)
    assert ids_of(past) == {cited}
    assert past.source_warnings == []


def test_as_of_ignores_later_cosignatures_and_votes(
    engine: Engine, service: QueryService, claim: Claim, clock: FakeClock, keys: list[AgentKey]
) -> None:
    rare = engine.write(claim("rare", key=keys[0], confidence=0.8)).id
    common = engine.write(claim("common", key=keys[1], confidence=0.6)).id
    clock.advance(60)
    engine.write(cosign(keys[2], common, signed_at=T0))
    engine.write(sign_vote(keys[3], assertion_id=common, weight=1.0, timestamp=T0))
    assert winner_value(query(service)) == "common"  # two signers outweigh one
    past = query(service, as_of=T0 + 30)
    assert winner_value(past) == "rare"
    assert {c.id: c.weight for c in past.claims}[rare] > {c.id: c.weight for c in past.claims}[
        common
    ]
    assert ids_of(query(service, as_of=T0 + 30, agent_id=keys[2].agent_id)) == set()
    assert ids_of(query(service, agent_id=keys[2].agent_id)) == {common}
    assert winner_value(query(service, lens="votes")) == "common"
    past_votes = query(service, as_of=T0 + 30, lens="votes")
    assert all(c.weight == 0.0 for c in past_votes.claims)


def test_as_of_before_a_supersession_still_shows_the_old_claim(
    engine: Engine, service: QueryService, claim: Claim, clock: FakeClock, keys: list[AgentKey]
) -> None:
    old = engine.write(claim("rare")).id
    new = engine.write(claim("common", timestamp=T0 - 50)).id
    clock.advance(60)
    engine.write(sign_supersession(keys[0], old=old, new=new, reason="fixed", timestamp=T0))
    assert ids_of(query(service)) == {new}
    assert ids_of(query(service, as_of=T0 + 30)) == {old, new}


# -- valid time, since, retracted, superseded -------------------------------------------------


def test_valid_at_keeps_claims_whose_validity_covers_the_instant(
    engine: Engine, service: QueryService, claim: Claim
) -> None:
    always = engine.write(claim("a")).id
    past = engine.write(claim("b", valid_from=100, valid_to=200)).id
    future = engine.write(claim("c", valid_from=300)).id
    assert ids_of(query(service, valid_at=150)) == {always, past}
    assert ids_of(query(service, valid_at=200)) == {always, past}  # inclusive bounds
    assert ids_of(query(service, valid_at=250)) == {always}
    assert ids_of(query(service, valid_at=300)) == {always, future}


def test_since_keeps_claims_asserted_at_or_after_it(
    engine: Engine, service: QueryService, claim: Claim
) -> None:
    engine.write(claim("old", timestamp=T0 - 1000))
    recent = engine.write(claim("new", timestamp=T0 - 10)).id
    edge = engine.write(claim("edge", timestamp=T0 - 500)).id
    assert ids_of(query(service, since=T0 - 500)) == {recent, edge}


def test_superseded_claims_are_hidden_unless_asked_for(
    engine: Engine, service: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    old = engine.write(claim("rare")).id
    new = engine.write(claim("common", timestamp=T0 - 50)).id
    engine.write(sign_supersession(keys[0], old=old, new=new, reason="fixed", timestamp=T0))
    assert ids_of(query(service)) == {new}
    shown = query(service, include_superseded=True)
    assert ids_of(shown) == {old, new}
    assert {c.id: c.superseded for c in shown.claims} == {old: True, new: False}


def test_include_retracted_brings_back_flagged_claims(
    engine: Engine, service: QueryService, claim: Claim, keys: list[AgentKey]
) -> None:
    src = sign_source(keys[0], uri="doi:10/x", content="paper", timestamp=T0 - 100)
    engine.write(src)
    cited = engine.write(claim("rare", source_hash=src.source_hash)).id
    clean = engine.write(claim("common", key=keys[1])).id
    engine.write(
        sign_retraction(keys[0], source_hash=src.source_hash, reason="fraud", timestamp=T0)
    )
    assert ids_of(query(service)) == {clean}
    shown = query(service, include_retracted=True)
    assert ids_of(shown) == {cited, clean}
    assert {c.id: c.retracted_source for c in shown.claims} == {cited: True, clean: False}
    assert [w.kind for w in shown.source_warnings] == ["retracted_source"]


def test_as_of_claim_views_show_no_later_cosignature_vote_supersession_or_retraction(
    engine: Engine, service: QueryService, claim: Claim, clock: FakeClock, keys: list[AgentKey]
) -> None:
    # Regression: the weights were computed as of the bound, but the returned claims
    # showed co-signatures, vote weight, supersession and retraction flags of today.
    src = sign_source(keys[0], uri="doi:10/x", content="paper", timestamp=T0 - 100)
    engine.write(src)
    a = engine.write(claim("rare", source_hash=src.source_hash)).id
    b = engine.write(claim("common", key=keys[1], timestamp=T0 - 50)).id
    clock.advance(60)
    engine.write(cosign(keys[2], a, signed_at=T0))
    engine.write(sign_vote(keys[3], assertion_id=a, weight=1.0, timestamp=T0))
    engine.write(sign_supersession(keys[1], old=b, new=a, reason="merged", timestamp=T0))
    engine.write(sign_retraction(keys[0], source_hash=src.source_hash, reason="x", timestamp=T0))
    past = query(service, as_of=T0 + 30)
    views = {c.id: c for c in past.claims}
    assert set(views) == {a, b}
    assert [s.agent_id for s in views[a].signatures] == [keys[0].agent_id]
    assert views[a].vote_weight == 0.0
    assert views[a].retracted_source is False and views[b].superseded is False
    now = query(service, include_retracted=True, include_superseded=True)
    current = {c.id: c for c in now.claims}
    assert len(current[a].signatures) == 2 and current[a].vote_weight == 1.0
    assert current[a].retracted_source is True and current[b].superseded is True
