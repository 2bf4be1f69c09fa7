"""``StemeStore``'s BaseStore operations against a served instance: get, put (and the
update of an item), delete (a tombstone), search by namespace prefix, filter and query
text, list_namespaces — sync and async — and what each leaves in StemeDB."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import pytest
from langgraph.store.base import GetOp, InvalidNamespaceError, ListNamespacesOp, PutOp, SearchOp
from support.client_server import ServerProcess

from stemedb.client import AgentKey, Client
from stemedb.langgraph import StemeStore

PREFS = {"units": "metric", "count": 3, "ratio": 2.0, "notes": ["likes green tea"], "ok": None}


def test_put_then_get_returns_the_item_as_written(store: StemeStore) -> None:
    assert store.get(("users", "u1"), "prefs") is None
    store.put(("users", "u1"), "prefs", PREFS)
    item = store.get(("users", "u1"), "prefs")
    assert item is not None
    assert (item.namespace, item.key) == (("users", "u1"), "prefs")
    assert json.dumps(item.value) == json.dumps(PREFS)  # 3 stays 3, 2.0 stays 2.0
    assert isinstance(item.created_at, datetime) and item.created_at == item.updated_at


def test_an_update_keeps_created_at_and_the_newest_value_wins(store: StemeStore) -> None:
    store.put(("users", "u1"), "prefs", {"v": 1})
    first = store.get(("users", "u1"), "prefs")
    for version in range(2, 5):  # several puts in one second: the later write still wins
        store.put(("users", "u1"), "prefs", {"v": version})
    store.put(("users", "u1"), "prefs", {"v": 1})  # back to a value written before
    last = store.get(("users", "u1"), "prefs")
    assert first is not None and last is not None
    assert last.value == {"v": 1}
    assert last.created_at == first.created_at and last.updated_at > first.updated_at


def test_delete_writes_a_tombstone_and_a_later_put_revives_the_key(
    store: StemeStore, server: ServerProcess, root: str
) -> None:
    store.put(("users", "u1"), "food", {"likes": "pasta"})
    store.put(("users", "u1"), "other", {"likes": "rice"})
    store.delete(("users", "u1"), "food")
    assert store.get(("users", "u1"), "food") is None
    assert [i.key for i in store.search(("users",))] == ["other"]
    # nothing was removed: the key's history holds the item and then the tombstone
    with Client(server.url) as db:
        page = db.query(f"{root}/users/u1/", "food", lens="recency", include_superseded=True)
    history = [c.object.value for c in sorted(page.claims, key=lambda c: c.lsn)]
    assert len(history) == 2 and isinstance(history[0], dict) and isinstance(history[1], dict)
    assert history[0]["item"] == {"likes": "pasta"} and history[1]["deleted"] is True
    store.put(("users", "u1"), "food", {"likes": "soup"})
    revived = store.get(("users", "u1"), "food")
    assert revived is not None and revived.value == {"likes": "soup"}


def test_items_are_claims_signed_by_the_stores_key(
    store: StemeStore, server: ServerProcess, agent: AgentKey, root: str
) -> None:
    store.put(("docs",), "readme", {"title": "hello"})
    with Client(server.url) as db:
        page = db.query(f"{root}/docs/", "readme", lens="recency")
    assert page.resolution is not None and page.resolution.winner is not None
    winner = page.resolution.winner
    assert [s.agent_id for s in winner.signatures] == [agent.agent_id]
    assert winner.object.type == "json" and isinstance(winner.object.value, dict)
    assert winner.object.value["item"] == {"title": "hello"}


def test_search_scopes_by_namespace_prefix_and_filters(store: StemeStore) -> None:
    store.put(("users", "u1"), "a", {"kind": "pref", "score": 5})
    store.put(("users", "u1", "deep"), "b", {"kind": "pref", "score": 2})
    store.put(("users", "u2"), "c", {"kind": "fact", "score": 9})
    store.put(("users2", "u9"), "d", {"kind": "pref", "score": 7})  # not under ("users",)
    assert {i.key for i in store.search(("users",))} == {"a", "b", "c"}
    assert {i.key for i in store.search(("users", "u1"))} == {"a", "b"}
    assert {i.key for i in store.search(())} == {"a", "b", "c", "d"}
    assert {i.key for i in store.search(("users",), filter={"kind": "pref"})} == {"a", "b"}
    high = store.search((), filter={"score": {"$gte": 5}, "kind": {"$ne": "fact"}})
    assert {i.key for i in high} == {"a", "d"}
    newest_first = [i.key for i in store.search(())]
    assert newest_first == ["d", "c", "b", "a"]
    assert [i.key for i in store.search((), limit=2, offset=1)] == ["c", "b"]


def test_search_with_query_text_ranks_matching_items(store: StemeStore) -> None:
    store.put(("memories", "u1"), "m1", {"text": "the user drinks green tea every morning"})
    store.put(("memories", "u1"), "m2", {"text": "the user owns a bicycle"})
    store.put(("memories", "u1"), "m3", {"text": "tea"}, index=False)  # not indexed
    store.put(("elsewhere",), "m4", {"text": "green tea elsewhere"})
    hits = store.search(("memories",), query="green tea")
    assert [h.key for h in hits] == ["m1"]
    assert hits[0].score is not None and hits[0].score > 0
    assert hits[0].value["text"].startswith("the user drinks")
    assert {h.key for h in store.search((), query="tea")} == {"m1", "m4"}
    assert store.search(("memories",), query="bicycle", filter={"text": "nope"}) == []


def test_list_namespaces_with_conditions_depth_and_paging(store: StemeStore) -> None:
    for namespace in [("a", "x", "1"), ("a", "y"), ("b", "x"), ("a", "we/ird")]:
        store.put(namespace, "k", {"n": 1})
    assert store.list_namespaces() == [("a", "we/ird"), ("a", "x", "1"), ("a", "y"), ("b", "x")]
    assert store.list_namespaces(prefix=("a",)) == [("a", "we/ird"), ("a", "x", "1"), ("a", "y")]
    assert store.list_namespaces(suffix=("x",)) == [("b", "x")]
    assert store.list_namespaces(prefix=("*", "x")) == [("a", "x", "1"), ("b", "x")]
    assert store.list_namespaces(max_depth=1) == [("a",), ("b",)]
    assert store.list_namespaces(limit=2, offset=1) == [("a", "x", "1"), ("a", "y")]
    assert store.search(("a", "we/ird"))[0].namespace == ("a", "we/ird")


def test_batch_answers_each_op_in_order(store: StemeStore) -> None:
    results = store.batch(
        [
            PutOp(("n",), "k1", {"v": 1}),
            GetOp(("n",), "k1"),
            GetOp(("n",), "missing"),
            SearchOp(("n",)),
            ListNamespacesOp(),
        ]
    )
    assert results[0] is None
    assert results[1] is not None and results[1].value == {"v": 1}  # type: ignore[union-attr]
    assert results[2] is None
    assert [i.key for i in results[3]] == ["k1"]  # type: ignore[union-attr]
    assert results[4] == [("n",)]


def test_bad_namespaces_are_refused(store: StemeStore) -> None:
    for namespace in [(), ("",), ("a.b",)]:
        with pytest.raises(InvalidNamespaceError):
            store.put(namespace, "k", {"v": 1})


def test_the_async_operations_do_the_same(store: StemeStore) -> None:
    async def scenario() -> None:
        await store.aput(("async", "u1"), "prefs", PREFS)
        item = await store.aget(("async", "u1"), "prefs")
        assert item is not None and json.dumps(item.value) == json.dumps(PREFS)
        await store.aput(("async", "u1"), "prefs", {"units": "imperial"})
        await store.aput(("async", "u2"), "gone", {"v": 1})
        await store.adelete(("async", "u2"), "gone")
        assert await store.aget(("async", "u2"), "gone") is None
        found = await store.asearch(("async",))
        assert [(i.key, i.value) for i in found] == [("prefs", {"units": "imperial"})]
        assert [i.key for i in await store.asearch(("async",), query="imperial")] == ["prefs"]
        assert await store.alist_namespaces(prefix=("async",)) == [("async", "u1"), ("async", "u2")]
        results = await store.abatch([GetOp(("async", "u1"), "prefs"), ListNamespacesOp()])
        assert results[0] is not None and len(results[1]) == 2  # type: ignore[arg-type]

    asyncio.run(scenario())
    # another event loop (each batch opens its own async client)
    assert asyncio.run(store.aget(("async", "u1"), "prefs")) is not None
