"""Candidates and the filters of candidate selection, run on each store: what a row
carries (signers, source class, lifecycle, epoch, validity, taint, supersession) and
what an LSN bound (``as_of``) lets count."""

from __future__ import annotations

from typing import Any

from stemedb.model.kinds import Entry
from stemedb.model.records import ObjectValue
from stemedb.query.params import QueryParams
from stemedb.query.selection import select
from stemedb.store.protocol import Store
from store_contract.history import PREDICATE, SUBJECT, T0, History, agent, source_hash_of

NOW = float(T0)


def selected(store: Store, *, as_of: float | None = None, **filters: Any) -> list[str]:
    """Ids kept by candidate selection for (SUBJECT, PREDICATE), as the service asks."""
    params = QueryParams(subject=SUBJECT, predicate=PREDICATE, as_of=as_of, **filters)
    latest = store.applied_lsn()
    bound = latest if as_of is None else min(store.lsn_at(as_of), latest)
    rows = store.candidates(SUBJECT, PREDICATE)
    selection = select(store, rows, params, lsn_bound=bound, latest_lsn=latest, now=NOW)
    return [row.id for row in selection.rows]


def ids(*entries: Entry) -> list[str]:
    return [e.record_id for e in entries]


def test_a_candidate_row_carries_what_the_assertion_says(store: Store, history: History) -> None:
    epoch = history.epoch("e")
    claim = history.assertion(
        ObjectValue("number", 2.0),
        confidence=0.7,
        timestamp=T0 - 5,
        source_class="clinical",
        epoch=epoch.record_id,
        lifecycle="approved",
        valid_from=T0 - 10,
        valid_to=T0 + 10,
    )
    store.apply([epoch, claim])
    (row,) = store.candidates(SUBJECT, PREDICATE)
    assert (row.lsn, row.id, row.subject, row.predicate) == (2, claim.record_id, SUBJECT, PREDICATE)
    assert (row.value_key, row.confidence, row.timestamp) == ("number:2.0", 0.7, T0 - 5)
    assert (row.source_class, row.source_hash, row.epoch) == ("clinical", None, epoch.record_id)
    assert (row.lifecycle, row.valid_from, row.valid_to) == ("approved", T0 - 10, T0 + 10)
    assert (row.tainted_by, row.superseded_lsn) == (None, None)
    assert (row.signers, row.vote_weight) == ((agent(0).agent_id,), 0.0)


def test_equal_values_of_one_type_share_a_value_key_and_other_types_do_not(
    store: Store, history: History
) -> None:
    store.apply(
        [
            history.assertion(ObjectValue("number", 1.0), confidence=0.1),
            history.assertion(ObjectValue("number", 1), confidence=0.2),
            history.assertion(ObjectValue("text", "1.0"), by=2),
            history.assertion(ObjectValue("boolean", True), by=3),
            history.assertion(ObjectValue("ref", "drugs/x"), by=4),
        ]
    )
    keys = [r.value_key for r in store.candidates(SUBJECT, PREDICATE)]
    assert keys == ["number:1.0", "number:1.0", "text:1.0", "boolean:true", "ref:drugs/x"]


def test_candidates_without_predicate_cover_every_predicate_of_the_subject(
    store: Store, history: History
) -> None:
    store.apply(
        [
            history.assertion(predicate="a"),
            history.assertion(predicate="b"),
            history.assertion(subject="drugs/other", predicate="a"),
        ]
    )
    assert sorted(r.predicate for r in store.candidates(SUBJECT, None)) == ["a", "b"]
    assert len(store.candidates(SUBJECT, None, limit=1)) == 1


def test_candidates_by_ids_skip_unknown_ids_and_keep_the_order_given(
    store: Store, history: History
) -> None:
    a, b = history.assertion("a"), history.assertion("b")
    store.apply([a, b])
    rows = store.candidates_by_ids([b.record_id, "00" * 32, a.record_id])
    assert [r.id for r in rows] == ids(b, a)


def test_the_agent_filter_counts_a_cosigner_only_from_its_cosignature(
    store: Store, history: History
) -> None:
    claim = history.assertion()
    store.apply([claim])
    history.now += 10
    store.apply([history.cosignature(claim, by=1)])
    cosigner = agent(1).agent_id
    assert selected(store, agent_id=cosigner) == ids(claim)
    assert selected(store, agent_id=cosigner, as_of=NOW) == []
    assert selected(store, agent_id=agent(0).agent_id, as_of=NOW) == ids(claim)


def test_a_registered_source_gives_its_class_to_claims_that_name_none(
    store: Store, history: History
) -> None:
    source = history.source("trial", source_class="clinical")
    before = history.assertion("a", source_hash=source_hash_of(source))
    own = history.assertion("b", source_hash=source_hash_of(source), source_class="anecdotal")
    store.apply([before, own])
    classes = {r.id: r.source_class for r in store.candidates(SUBJECT, PREDICATE)}
    assert classes == {before.record_id: "expert", own.record_id: "anecdotal"}
    after = history.assertion("c", source_hash=source_hash_of(source))
    touched = store.apply([source, after])
    assert touched == {(SUBJECT, PREDICATE)}
    classes = {r.id: r.source_class for r in store.candidates(SUBJECT, PREDICATE)}
    assert classes == {
        before.record_id: "clinical",  # registered later: takes the source's class
        own.record_id: "anecdotal",  # an explicit class is kept
        after.record_id: "clinical",  # registered earlier: taken at insert
    }
    assert selected(store, source_class=("clinical",)) == ids(before, after)


def test_default_lifecycles_hide_deprecated_and_rejected_claims(
    store: Store, history: History
) -> None:
    entries = [
        history.assertion(str(i), lifecycle=lifecycle)
        for i, lifecycle in enumerate(
            ["proposed", "under_review", "approved", "deprecated", "rejected"]
        )
    ]
    store.apply(entries)
    assert selected(store) == ids(*entries[:3])
    assert selected(store, lifecycle=("rejected",)) == ids(entries[4])


def test_a_replace_epoch_hides_the_claims_of_the_epoch_it_supersedes_from_its_lsn(
    store: Store, history: History
) -> None:
    old = history.epoch("old")
    in_old = history.assertion("a", epoch=old.record_id)
    unknown = history.assertion("b", epoch="ab" * 32)  # an unknown epoch never hides
    store.apply([old, in_old, unknown])
    history.now += 10
    store.apply([history.epoch("new", supersedes=(old,))])
    assert store.superseded_epochs() == {old.record_id: 4}
    assert selected(store) == ids(unknown)
    assert selected(store, as_of=NOW) == ids(in_old, unknown)
    assert selected(store, epoch=old.record_id) == ids(in_old)  # explicit: shown


def test_a_refine_epoch_keeps_the_claims_of_the_epoch_it_refines(
    store: Store, history: History
) -> None:
    old = history.epoch("old")
    in_old = history.assertion(epoch=old.record_id)
    store.apply([old, in_old, history.epoch("finer", supersedes=(old,), kind="refine")])
    assert store.superseded_epochs() == {}
    assert selected(store) == ids(in_old)
    (row,) = store.epochs()[:1]
    assert row.superseded_by == (history.entries[-1].record_id,)


def test_as_of_counts_neither_later_claims_nor_later_votes(store: Store, history: History) -> None:
    early = history.assertion("a")
    store.apply([early, history.vote(early, 0.4, by=1, timestamp=T0)])
    history.now += 10
    late = history.assertion("b")
    store.apply([late, history.vote(early, 0.9, by=1, timestamp=T0 + 5)])
    assert store.lsn_at(NOW) == 2
    assert store.lsn_at(NOW - 1) == 0
    assert selected(store, as_of=NOW) == ids(early)
    assert selected(store) == ids(early, late)
    assert store.vote_weights_at([1], 2) == {1: 0.4}
    assert store.vote_weights_at([1], 4) == {1: 0.9}
    assert store.candidates_by_ids([early.record_id])[0].vote_weight == 0.9


def test_the_latest_vote_of_each_agent_counts_by_timestamp_not_by_arrival(
    store: Store, history: History
) -> None:
    claim = history.assertion()
    store.apply(
        [
            claim,
            history.vote(claim, 0.9, by=1, timestamp=T0 + 5),
            history.vote(claim, 0.1, by=1, timestamp=T0),  # older, arrives later
            history.vote(claim, 0.5, by=2, timestamp=T0),
        ]
    )
    assert store.vote_weights_at([1], 4) == {1: 1.4}
    assert store.candidates_by_ids([claim.record_id])[0].vote_weight == 1.4


def test_valid_at_keeps_claims_whose_validity_contains_it(store: Store, history: History) -> None:
    always = history.assertion("a")
    bounded = history.assertion("b", valid_from=T0 - 10, valid_to=T0 + 10)
    later = history.assertion("c", valid_from=T0 + 100)
    store.apply([always, bounded, later])
    assert selected(store, valid_at=float(T0)) == ids(always, bounded)
    assert selected(store, valid_at=float(T0 + 10)) == ids(always, bounded)
    assert selected(store, valid_at=float(T0 + 100)) == ids(always, later)


def test_a_retraction_taints_citing_claims_and_their_descendants_old_and_new(
    store: Store, history: History
) -> None:
    source = history.source("paper")
    source_hash = source_hash_of(source)
    citing = history.assertion("a", source_hash=source_hash)
    child = history.assertion("b", parent=citing.record_id)
    clean = history.assertion("c")
    store.apply([source, citing, child, clean])
    history.now += 10
    store.apply([history.retraction(source)])
    late_child = history.assertion("d", parent=child.record_id)
    store.apply([late_child])
    tainted = {r.id: r.tainted_by for r in store.candidates(SUBJECT, PREDICATE)}
    assert tainted == {
        citing.record_id: source_hash,
        child.record_id: source_hash,
        clean.record_id: None,
        late_child.record_id: source_hash,
    }
    assert store.retracted_sources() == {source_hash: 5}
    assert selected(store) == ids(clean)
    assert selected(store, include_retracted=True) == ids(citing, child, clean, late_child)
    assert selected(store, as_of=NOW) == ids(citing, child, clean)


def test_a_supersession_hides_the_old_claim_from_its_lsn(store: Store, history: History) -> None:
    old, new = history.assertion("a"), history.assertion("b")
    store.apply([old, new])
    history.now += 10
    store.apply([history.supersession(old, new)])
    assert selected(store) == ids(new)
    assert selected(store, include_superseded=True) == ids(old, new)
    assert selected(store, as_of=NOW) == ids(old, new)


def test_signers_at_count_only_signatures_within_the_bound(store: Store, history: History) -> None:
    claim = history.assertion()
    store.apply([claim, history.cosignature(claim, by=1), history.cosignature(claim, by=2)])
    a, b, c = (agent(i).agent_id for i in range(3))
    assert store.signers_at([1], 1) == {1: (a,)}
    assert store.signers_at([1], 3) == {1: (a, b, c)}
    assert store.candidates(SUBJECT, PREDICATE)[0].signers == (a, b, c)


def test_trust_relaxes_toward_the_initial_score_and_is_the_initial_score_without_outcomes(
    store: Store, history: History
) -> None:
    store.apply([history.trust_outcome(of=1, accurate=False, timestamp=T0)])
    bob = agent(1).agent_id
    assert store.trust(agent(0).agent_id, NOW) == 0.5
    assert store.trust(bob, NOW) == 0.4
    month_later = store.trust(bob, NOW + 30 * 86400)
    assert abs(month_later - 0.45) < 1e-9
