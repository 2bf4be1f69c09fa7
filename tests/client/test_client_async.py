"""AsyncClient against a real server: the same calls, awaited."""

from __future__ import annotations

import asyncio

import pytest
from support.client_server import ServerProcess

from stemedb.client import AgentKey, AsyncClient, NotFoundError, QuerySpec


def test_async_client_writes_reads_and_streams(
    server: ServerProcess, alice: AgentKey, bob: AgentKey, subject: str
) -> None:
    async def scenario() -> None:
        async with AsyncClient(server.url, key=alice) as db, AsyncClient(server.url, key=bob) as b:
            head = (await db.feed(0, limit=1)).last_lsn
            first = await db.assert_(subject, "risk", "rare", 0.9, source_class="clinical")
            again = await db.assert_record(db.sign_assertion(subject, "risk", "common", 0.4))
            assert (first.status, again.status) == ("created", "created")
            assert (await b.cosign(first.id)).status == "created"
            assert (await b.vote(first.id, 1.0)).status == "created"
            batch = await db.assert_batch([db.sign_assertion(subject, "other", 1.0, 0.5)])
            assert batch.created == 1

            result = await db.query(subject, "risk", lens="votes")
            assert result.resolution is not None and result.resolution.winner is not None
            assert result.resolution.winner.id == first.id
            pages = [p async for p in db.query_all(subject, "risk", limit=1)]
            assert len(pages) == 2
            specs = [QuerySpec(subject=subject, predicate=p) for p in ("risk", "other")]
            both = await db.query_batch(specs)
            assert [len(r.claims) for r in both] == [2, 1]
            assert (await db.skeptic(subject, "risk")).candidates_count == 2
            assert (await db.trace(first.id)).votes[0].agent_id == bob.agent_id
            assert (await db.get_assertion(first.id)).votes.count == 1
            audited = await db.audit_queries(agent_id=alice.agent_id)
            assert result.query_id in {r.query_id for r in audited}
            assert (await db.audit_query(result.query_id)).lens == "votes"
            assert (await db.agent(bob.agent_id)).counts.votes >= 1
            assert (await db.health()).status == "ok"
            assert (await db.ready()).status == "ready"

            epoch = await db.epoch(f"{subject}-e")
            assert (await db.get_epoch(epoch.id)).name == f"{subject}-e"
            assert epoch.id in {e.id for e in await db.epochs()}
            await db.register_source(f"doi:{subject}", f"{subject} text")
            listed = await db.sources(limit=1000)
            source = next(s for s in listed.sources if s.uri == f"doi:{subject}")
            assert (await db.retract_source(source.source_hash, "bad")).status == "created"
            assert (await db.get_source(source.source_hash)).retracted
            newer = await db.assert_(subject, "risk", "rarer", 0.9)
            assert (await db.supersede(first.id, newer.id, "newer")).status == "created"

            stream = db.stream_feed(after=head)
            item = await anext(stream)
            assert (item.lsn, item.id) == (first.lsn, first.id)
            await stream.aclose()

            with pytest.raises(NotFoundError) as info:
                await db.trace("0" * 64)
            assert info.value.request_id and info.value.status == 404

    asyncio.run(scenario())
