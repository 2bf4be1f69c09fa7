"""Materialized views: stored per key, replaced, dropped for touched keys on replay."""

from __future__ import annotations

from collections.abc import Callable

from stemedb.store.protocol import Store
from store_contract.history import History


def test_a_view_reads_back_as_put_and_a_later_put_replaces_it(store: Store) -> None:
    assert store.view("s", "p") is None
    store.put_views([("s", "p", 1, 10.0, b"first"), ("s", "q", 1, 10.0, b"other")])
    assert store.view("s", "p") == (1, 10.0, b"first")
    store.put_views([("s", "p", 2, 20.0, b"second")])
    assert store.view("s", "p") == (2, 20.0, b"second")
    assert store.view("s", "q") == (1, 10.0, b"other")


def test_a_view_of_an_earlier_lsn_never_replaces_a_later_one(
    open_store: Callable[[], Store],
) -> None:
    """Two processes' refreshers share the views: the one that computed the older
    snapshot may finish last (a stale view then served as fresh after a 201)."""
    first, second = open_store(), open_store()
    first.put_views([("s", "p", 5, 50.0, b"newer")])
    second.put_views([("s", "p", 4, 60.0, b"older"), ("s", "q", 4, 60.0, b"other")])
    assert first.view("s", "p") == second.view("s", "p") == (5, 50.0, b"newer")
    assert second.view("s", "q") == (4, 60.0, b"other")
    second.put_views([("s", "p", 5, 70.0, b"same snapshot, later decay")])
    assert first.view("s", "p") == (5, 70.0, b"same snapshot, later decay")


def test_replay_drops_the_views_of_touched_keys_and_keeps_the_others(
    store: Store, history: History
) -> None:
    store.put_views([("s/1", "p", 0, 1.0, b"old"), ("s/2", "p", 0, 1.0, b"kept")])
    store.apply([history.assertion(subject="s/1", predicate="p")], drop_views=True)
    assert store.view("s/1", "p") is None
    assert store.view("s/2", "p") == (0, 1.0, b"kept")


def test_a_plain_apply_leaves_views_for_the_refresher(store: Store, history: History) -> None:
    store.put_views([("s/1", "p", 0, 1.0, b"old")])
    store.apply([history.assertion(subject="s/1", predicate="p")])
    assert store.view("s/1", "p") == (0, 1.0, b"old")
