"""Reset and rebuild from the WAL (``engine.replay``, what ``stemedb store rebuild`` and
recovery run): the rebuilt store answers exactly like the one that applied the writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stemedb.engine.replay import replay
from stemedb.errors import StorageError
from stemedb.store.protocol import Store
from stemedb.wal import Wal
from store_contract.conftest import StoreOpener
from store_contract.history import PREDICATE, SUBJECT, T0, History, agent, source_hash_of


def _rich_history(history: History) -> History:
    claim = history.assertion()
    source = history.source("paper", source_class="clinical")
    old_epoch = history.epoch("old")
    history.assertion("b", source_hash=source_hash_of(source), epoch=old_epoch.record_id)
    history.cosignature(claim, by=1)
    history.vote(claim, 0.7, by=2)
    history.now += 10
    history.retraction(source)
    history.epoch("new", supersedes=(old_epoch,))
    history.supersession(claim, history.assertion("c"))
    history.trust_outcome(of=1, accurate=True)
    return history


def _answers(store: Store) -> dict[str, Any]:
    """Everything a reader sees, for comparing two stores."""
    return {
        "state": store.state_hash(),
        "counts": store.counts(),
        "candidates": store.candidates(SUBJECT, PREDICATE),
        "retracted": dict(store.retracted_sources()),
        "epochs": dict(store.superseded_epochs()),
        "trust": store.trust(agent(1).agent_id, T0 + 60.0),
        "trust_row": store.trust_row(agent(1).agent_id),
        "changes": store.changes(0, 1000),
        "lsn_at": store.lsn_at(float(T0)),
    }


@pytest.fixture
def wal(tmp_path: Path) -> Any:
    log = Wal.open(tmp_path / "wal", fsync=False)
    yield log
    log.close()


def test_reset_leaves_an_empty_store_at_lsn_zero(store: Store, history: History) -> None:
    store.apply(_rich_history(history).entries)
    store.put_views([(SUBJECT, PREDICATE, 1, 1.0, b"v")])
    store.cache.put("k", 1, (SUBJECT, PREDICATE), generation=store.cache.generation)
    store.reset()
    assert store.applied_lsn() == 0
    assert set(store.counts().values()) == {0}
    assert store.changes(0, 10) == []
    assert store.view(SUBJECT, PREDICATE) is None
    assert store.cache.get("k") is None
    assert (store.retracted_sources(), store.superseded_epochs()) == ({}, {})
    assert store.trust(agent(1).agent_id, float(T0)) == 0.5


def test_a_store_rebuilt_from_the_wal_answers_like_the_one_that_applied_the_writes(
    store: Store, history: History, wal: Wal
) -> None:
    _rich_history(history).write_wal(wal)
    store.apply(history.entries[:4])
    store.apply(history.entries[4:])
    before = _answers(store)
    store.reset()
    assert replay(wal, store) == len(history.entries)
    assert _answers(store) == before


def test_replay_applies_only_what_the_store_has_not_applied(
    open_store: StoreOpener, history: History, wal: Wal
) -> None:
    _rich_history(history).write_wal(wal)
    store = open_store()
    store.apply(history.entries[:5])
    assert replay(wal, store) == len(history.entries) - 5
    assert replay(wal, store) == 0
    assert store.applied_lsn() == wal.last_lsn


def test_replay_refuses_a_wal_that_ends_before_the_store(
    store: Store, history: History, wal: Wal
) -> None:
    store.apply([history.assertion()])
    with pytest.raises(StorageError) as caught:
        replay(wal, store)
    assert caught.value.code == "wal_behind_store"
