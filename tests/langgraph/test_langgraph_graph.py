"""A real LangGraph ``StateGraph`` (no LLM) whose nodes read and write long-term memory
through ``StemeStore`` on a served instance: what one run remembers, the next run recalls,
sync (``invoke``) and async (``ainvoke``, the store's ``abatch``), and the memories are
signed claims another client can read."""

from __future__ import annotations

import asyncio
from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from support.client_server import ServerProcess

from stemedb.client import Client
from stemedb.langgraph import StemeStore


class Turn(TypedDict, total=False):
    user: str
    message: str
    recalled: list[str]
    turns: int
    reply: str


def recall(state: Turn, runtime: Runtime[None]) -> Turn:
    """Read the user's memories (search by namespace and by words) and profile."""
    store = runtime.store
    assert store is not None
    namespace = ("memories", state["user"])
    words = state["message"].split()[-1]
    found = store.search(namespace, query=words) or store.search(namespace)
    profile = store.get(("profiles",), state["user"])
    turns = 0 if profile is None else int(profile.value["turns"])
    return {"recalled": sorted(item.value["text"] for item in found), "turns": turns}


def remember(state: Turn, runtime: Runtime[None]) -> Turn:
    """Write the message as a memory (or forget one) and count the turn."""
    store = runtime.store
    assert store is not None
    namespace = ("memories", state["user"])
    message = state["message"]
    if message.startswith("forget "):
        store.delete(namespace, message.removeprefix("forget "))
    else:
        store.put(namespace, message.split()[0], {"text": message, "source": "chat"})
    store.put(("profiles",), state["user"], {"turns": state["turns"] + 1})
    return {"reply": f"turn {state['turns'] + 1}; I recall {len(state['recalled'])}"}


async def arecall(state: Turn, runtime: Runtime[None]) -> Turn:
    store = runtime.store
    assert store is not None
    found = await store.asearch(("memories", state["user"]))
    return {"recalled": sorted(item.value["text"] for item in found), "turns": 0}


def build(store: StemeStore, first: object = recall) -> object:
    graph = StateGraph(Turn)
    graph.add_node("recall", first)  # type: ignore[call-overload]
    graph.add_node("remember", remember)
    graph.add_edge(START, "recall")
    graph.add_edge("recall", "remember")
    graph.add_edge("remember", END)
    return graph.compile(store=store)


def test_a_graph_remembers_across_runs_through_the_store(
    store: StemeStore, server: ServerProcess, root: str
) -> None:
    app = build(store)
    first = app.invoke({"user": "u7", "message": "tea is my favourite drink"})  # type: ignore[attr-defined]
    assert first["recalled"] == [] and first["reply"] == "turn 1; I recall 0"
    second = app.invoke({"user": "u7", "message": "coffee too, sometimes with tea"})  # type: ignore[attr-defined]
    assert second["recalled"] == ["tea is my favourite drink"]
    assert second["reply"] == "turn 2; I recall 1"
    third = app.invoke({"user": "u7", "message": "forget tea"})  # type: ignore[attr-defined]
    assert third["recalled"] == ["coffee too, sometimes with tea", "tea is my favourite drink"]
    fourth = app.invoke({"user": "u7", "message": "what do you know"})  # type: ignore[attr-defined]
    assert fourth["recalled"] == ["coffee too, sometimes with tea"]
    assert fourth["turns"] == 3 and fourth["reply"] == "turn 4; I recall 1"
    assert store.list_namespaces() == [("memories", "u7"), ("profiles",)]

    # another agent reads the graph's memories as signed claims, with the SDK alone
    with Client(server.url) as db:
        page = db.query(f"{root}/memories/u7/", "coffee", lens="recency")
        assert page.resolution is not None and page.resolution.winner is not None
        assert page.resolution.winner.signatures[0].agent_id == store.agent_id


def test_an_async_graph_uses_the_async_operations(store: StemeStore) -> None:
    store.put(("memories", "u8"), "walks", {"text": "walks the dog at six"})
    app = build(store, first=arecall)

    async def run() -> dict[str, object]:
        result = await app.ainvoke({"user": "u8", "message": "cats are fine"})  # type: ignore[attr-defined]
        return dict(result)

    result = asyncio.run(run())
    assert result["recalled"] == ["walks the dog at six"]
    assert store.get(("memories", "u8"), "cats") is not None
