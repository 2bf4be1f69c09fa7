"""Applying batches: ``applied_lsn`` moves with the rows, a failed batch leaves nothing,
repeated facts keep the first, and another store object catches up by ``absorb``."""

from __future__ import annotations

import pytest

from stemedb.errors import StorageError
from stemedb.store.protocol import Store, StoreDelta
from store_contract.conftest import StoreOpener
from store_contract.history import (
    PREDICATE,
    SUBJECT,
    T0,
    History,
    agent,
    source_hash_of,
    state_hash_of,
)


def test_applied_lsn_is_the_last_lsn_of_the_last_applied_batch(
    store: Store, history: History
) -> None:
    assert store.applied_lsn() == 0
    store.apply([history.assertion("a"), history.assertion("b")])
    assert store.applied_lsn() == 2
    store.apply([history.assertion("c", subject="drugs/other")])
    assert store.applied_lsn() == 3


def test_an_empty_batch_touches_nothing_and_keeps_applied_lsn(
    store: Store, history: History
) -> None:
    store.apply([history.assertion()])
    assert store.apply([]) == set()
    assert store.applied_lsn() == 1


def test_applied_lsn_and_rows_survive_reopening_the_store(
    open_store: StoreOpener, history: History
) -> None:
    first = open_store()
    claim = history.assertion()
    first.apply([claim, history.cosignature(claim, by=1)])
    first.close()
    reopened = open_store()
    assert reopened.applied_lsn() == 2
    assert [r.id for r in reopened.candidates(SUBJECT, PREDICATE)] == [claim.record_id]
    assert reopened.state_hash() == (2, state_hash_of(history.entries))


def test_apply_returns_every_key_the_batch_touched(store: Store, history: History) -> None:
    claim = history.assertion(subject="s/1", predicate="p")
    store.apply([claim])
    touched = store.apply(
        [
            history.assertion(subject="s/2", predicate="q"),
            history.cosignature(claim, by=1),  # touches the co-signed claim's key
            history.vote(claim, 0.5, by=2),
        ]
    )
    assert touched == {("s/1", "p"), ("s/2", "q")}


def test_a_failed_batch_changes_neither_the_tables_nor_the_memory_state(
    store: Store, history: History
) -> None:
    claim = history.assertion()
    source = history.source("paper", source_class="clinical")
    store.apply([claim, source])
    before = (store.state_hash(), store.counts(), dict(store.retracted_sources()))
    retraction = history.retraction(source)
    # The same entry again (an LSN and an id already applied) cannot be stored.
    with pytest.raises(StorageError):
        store.apply([retraction, claim])
    assert (store.state_hash(), store.counts(), dict(store.retracted_sources())) == before
    assert store.applied_lsn() == 2


def test_a_batch_that_failed_can_be_applied_again(store: Store, history: History) -> None:
    # The writer's catch-up: the WAL holds the batch, the store transaction failed.
    claim = history.assertion()
    store.apply([claim])
    later = [history.assertion("b"), history.cosignature(claim, by=1)]
    with pytest.raises(StorageError):
        store.apply([*later, claim])
    store.apply(later)
    assert store.applied_lsn() == 3
    assert store.signers_at([1], 3) == {1: (agent(0).agent_id, agent(1).agent_id)}


def test_a_second_cosignature_by_the_same_agent_adds_no_signer(
    store: Store, history: History
) -> None:
    claim = history.assertion()
    first = history.cosignature(claim, by=1)
    store.apply([claim, first])
    assert store.apply([history.cosignature(claim, by=1)]) == set()
    row = store.candidates(SUBJECT, PREDICATE)[0]
    assert row.signers == (agent(0).agent_id, agent(1).agent_id)
    assert store.cosignature_lsn(claim.record_id, agent(1).agent_id) == first.lsn
    assert store.applied_lsn() == 3  # the record is still applied (and in the feed)


def test_a_second_retraction_keeps_the_first_retractions_lsn(
    store: Store, history: History
) -> None:
    source = history.source("paper")
    first = history.retraction(source, reason="first")
    store.apply([source, first, history.retraction(source, reason="second")])
    row = store.source(source_hash_of(source))
    assert row is not None
    assert (row.retraction_lsn, row.retracted_reason) == (first.lsn, "first")
    assert store.retracted_sources() == {row.source_hash: first.lsn}


def test_a_second_supersession_of_one_claim_keeps_the_first(store: Store, history: History) -> None:
    old, new, newer = history.assertion("a"), history.assertion("b"), history.assertion("c")
    first = history.supersession(old, new)
    store.apply([old, new, newer, first, history.supersession(old, newer)])
    row = store.candidates_by_ids([old.record_id])[0]
    assert row.superseded_lsn == first.lsn
    assert [s.new for s in store.supersessions_of(old.record_id)] == [
        new.record_id,
        newer.record_id,
    ]


def test_a_store_that_only_reads_answers_like_the_writer_after_absorbing_its_delta(
    open_store: StoreOpener, history: History
) -> None:
    writer, reader = open_store(), open_store()
    deltas: list[StoreDelta] = []
    writer.delta_hook = deltas.append
    old_epoch = history.epoch("old")
    claim = history.assertion(epoch=old_epoch.record_id)
    source = history.source("paper")
    writer.apply([old_epoch, claim, source])
    key = (SUBJECT, PREDICATE)
    generation = reader.cache.generation
    reader.cache.put(("q", 1), "cached", key, generation=generation)
    writer.apply(
        [
            history.epoch("new", supersedes=(old_epoch,)),
            history.retraction(source),
            history.trust_outcome(of=0, accurate=True),
            history.cosignature(claim, by=1),
        ]
    )
    assert len(deltas) == 2
    assert deltas[-1].lsn == writer.applied_lsn() == 7
    # The tables are shared; what a store keeps in memory is not, until it absorbs.
    assert reader.retracted_sources() == {}
    for delta in deltas:
        reader.absorb(delta)
    assert reader.retracted_sources() == {source_hash_of(source): 5}
    assert reader.superseded_epochs() == {old_epoch.record_id: 4}
    assert reader.retracted_sources() == writer.retracted_sources()
    assert reader.superseded_epochs() == writer.superseded_epochs()
    assert reader.trust(agent(0).agent_id, T0 + 60.0) == writer.trust(agent(0).agent_id, T0 + 60.0)
    assert reader.trust(agent(0).agent_id, T0 + 60.0) > 0.5
    assert reader.cache.get(("q", 1)) is None


def test_apply_invalidates_the_cached_results_of_touched_keys_only(
    store: Store, history: History
) -> None:
    store.apply([history.assertion(subject="s/1"), history.assertion(subject="s/2")])
    generation = store.cache.generation
    store.cache.put("one", 1, ("s/1", PREDICATE), generation=generation)
    store.cache.put("two", 2, ("s/2", PREDICATE), generation=generation)
    store.apply([history.assertion("x", subject="s/1")])
    assert store.cache.get("one") is None
    assert store.cache.get("two") == 2
