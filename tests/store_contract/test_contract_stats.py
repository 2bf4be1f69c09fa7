"""What operators see: counts, size and the state hash ``stemedb verify`` compares."""

from __future__ import annotations

from stemedb.store.protocol import Store
from store_contract.history import History, state_hash_of


def test_counts_follow_the_rows_of_each_table(store: Store, history: History) -> None:
    assert store.counts() == {
        "assertions": 0,
        "signatures": 0,
        "votes": 0,
        "epochs": 0,
        "sources": 0,
    }
    claim = history.assertion()
    store.apply(
        [
            claim,
            history.assertion("b"),
            history.cosignature(claim, by=1),
            history.vote(claim, 1.0, by=2),
            history.epoch("e"),
            history.source("paper"),
            history.trust_outcome(of=0, accurate=True),
        ]
    )
    assert store.counts() == {
        "assertions": 2,
        "signatures": 3,
        "votes": 1,
        "epochs": 1,
        "sources": 1,
    }
    assert store.assertion_count() == 2


def test_the_state_hash_covers_every_applied_record_by_its_definition(
    store: Store, history: History
) -> None:
    assert store.state_hash() == (0, state_hash_of([]))
    claim = history.assertion()
    store.apply([claim, history.cosignature(claim, by=1), history.vote(claim, 1.0, by=1)])
    store.apply([history.trust_outcome(of=1, accurate=True)])
    assert store.state_hash() == (4, state_hash_of(history.entries))
    assert store.state_hash(from_lsn=3) == (4, state_hash_of(history.entries[2:]))
    assert store.state_hash(from_lsn=5) == (0, state_hash_of([]))


def test_the_store_names_its_backend_and_its_size(store: Store, history: History) -> None:
    store.apply([history.assertion()])
    assert store.backend
    assert store.disk_bytes() > 0
