"""Search and discovery through the SDK (sync and async) against a real server."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from support.client_server import ServerProcess

from stemedb.client import (
    AgentKey,
    AsyncClient,
    Client,
    PredicateList,
    SearchResponse,
    Suggestion,
    ValidationError,
)


def test_search_lists_and_suggests_through_the_client(db: Client) -> None:
    token = "k" + uuid.uuid4().hex[:10]
    subject = f"sdk/{token}/semaglutide"
    db.assert_(subject, "gastroparesis_risk", "rare", 0.8)
    db.assert_(subject, "weight_loss", f"{token} fifteen percent", 0.7)

    found = db.search(f"{token} gastroparesis")
    assert isinstance(found, SearchResponse)
    assert [(h.subject, h.predicate, h.matched_field, h.claims) for h in found.hits] == [
        (subject, "gastroparesis_risk", "subject", 1)
    ]
    assert [h.matched_field for h in db.search(f"{token} fifteen").hits] == ["object"]
    assert db.search(f"{token}*", mode="fts", limit=1).next_cursor is not None

    listed = db.subjects(f"sdk/{token}/")
    assert [(s.subject, s.predicates, s.claims) for s in listed.subjects] == [(subject, 2, 2)]
    predicates = db.predicates(subject, limit=1)
    assert isinstance(predicates, PredicateList)
    assert [p.predicate for p in predicates.predicates] == ["gastroparesis_risk"]
    rest = db.predicates(subject, cursor=predicates.next_cursor)
    assert [p.predicate for p in rest.predicates] == ["weight_loss"]

    missed = db.query(f"sdk/{token}/semaglutid", "gastroparesis_risk")
    assert missed.suggestions == [
        Suggestion(subject=subject, predicate="gastroparesis_risk", claims=1)
    ]
    with pytest.raises(ValidationError):
        db.search(f"{token} AND", mode="fts")


def test_the_async_client_searches_and_lists_alike(server: ServerProcess, alice: AgentKey) -> None:
    token = "a" + uuid.uuid4().hex[:10]
    subject = f"sdk/{token}/tirzepatide"

    async def scenario() -> None:
        async with AsyncClient(server.url, key=alice) as db:
            await db.assert_(subject, "dose", 5.0, 0.8)
            hits = (await db.search(token)).hits
            assert [(h.subject, h.matched_field) for h in hits] == [(subject, "subject")]
            listed = await db.subjects(f"sdk/{token}")
            assert [s.subject for s in listed.subjects] == [subject]
            predicates = await db.predicates(subject)
            assert [(p.predicate, p.claims) for p in predicates.predicates] == [("dose", 1)]
            with pytest.raises(ValidationError):
                await db.search(" ")

    asyncio.run(scenario())
