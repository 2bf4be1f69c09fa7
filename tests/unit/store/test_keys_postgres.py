"""The cluster's key store on a real PostgreSQL: what one node changes, another sees.

Two ``PostgresKeyStore`` instances on one database stand for two nodes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest
from support.shared_schema import apply_shared_migrations

from stemedb.api.guard.keys import KeyRing
from stemedb.errors import AuthenticationError, StorageError
from stemedb.store.keys import (
    RateOverride,
    SharedBreaker,
    StoredKey,
    open_generation,
    open_shared_access,
)
from stemedb.store.keys.postgres import PostgresKeyStore

ROOT_SECRET = "r" * 40


@pytest.fixture
def shared_dsn(postgres_dsn: str) -> str:
    assert "0010_access.sql" in apply_shared_migrations(postgres_dsn)
    return postgres_dsn


@pytest.fixture
def two_nodes(shared_dsn: str) -> Iterator[tuple[PostgresKeyStore, PostgresKeyStore]]:
    one = PostgresKeyStore(shared_dsn)
    two = PostgresKeyStore(shared_dsn)
    yield one, two
    one.close()
    two.close()


def _key(key_id: str, secret_hash: str = "h" * 64) -> StoredKey:
    return StoredKey(
        id=key_id,
        name="ci",
        role="writer",
        enabled=True,
        created_at=1.0,
        expires_at=None,
        last_used_at=None,
        secret_hash=secret_hash,
    )


def test_a_key_put_through_one_node_is_read_by_the_other(
    two_nodes: tuple[PostgresKeyStore, PostgresKeyStore],
) -> None:
    one, two = two_nodes
    one.put(_key("k1"))
    assert [k.id for k in two.all_keys()] == ["k1"]
    one.set_enabled("k1", False)
    assert two.all_keys()[0].enabled is False
    one.delete("k1")
    assert two.all_keys() == []


def test_every_change_bumps_the_generation_but_last_used_does_not(
    two_nodes: tuple[PostgresKeyStore, PostgresKeyStore],
) -> None:
    one, two = two_nodes
    seen = [two.generation()]

    def moved() -> bool:
        seen.append(two.generation())
        return seen[-1] == seen[-2] + 1

    one.put(_key("k1"))
    assert moved()
    one.set_enabled("k1", False)
    assert moved()
    one.put_override(RateOverride(scope="key", target="k1", max_requests_per_min=7, created_at=1))
    assert moved()
    assert [(o.target, o.max_requests_per_min) for o in two.overrides()] == [("k1", 7)]
    one.delete_override("key", "k1")
    assert moved()
    breaker = SharedBreaker(
        agent_id="a" * 64, forced=True, failures=0, opened_at=5.0, reason="r", node_id="n1"
    )
    assert one.put_breaker(breaker) == seen[-1] + 1
    assert moved()
    assert two.breakers() == [breaker]
    assert one.delete_breaker("a" * 64) == seen[-1] + 1
    assert moved()
    one.touch([("k1", 9.0)])
    assert two.generation() == seen[-1]
    assert two.all_keys()[0].last_used_at == 9.0


def test_a_database_without_the_schema_is_refused_naming_db_migrate(postgres_dsn: str) -> None:
    with pytest.raises(StorageError, match="stemedb db migrate") as info:
        open_shared_access(postgres_dsn)
    assert info.value.code == "schema_behind"


def test_an_unreachable_database_is_a_retryable_storage_error() -> None:
    with pytest.raises(StorageError) as info:
        open_shared_access("host=127.0.0.1 port=1 user=postgres dbname=x connect_timeout=1")
    assert info.value.retryable and info.value.code == "store_unavailable"


def test_a_key_revoked_through_one_node_is_refused_by_the_other_after_its_next_read(
    shared_dsn: str,
) -> None:
    one, two = KeyRing(), KeyRing()
    one.open(open_shared_access(shared_dsn), ROOT_SECRET)
    two.open(open_shared_access(shared_dsn), ROOT_SECRET)
    try:
        made = one.create("ci", "writer", None)
        before = asyncio.run(_fresh(shared_dsn))
        two.reload()
        assert two.authenticate(made.secret).id == made.id
        one.disable(made.id)
        assert asyncio.run(_fresh(shared_dsn)) == before + 1
        two.reload()
        with pytest.raises(AuthenticationError, match="disabled"):
            two.authenticate(made.secret)
    finally:
        one.close()
        two.close()


async def _fresh(dsn: str) -> int:
    watch = open_generation(dsn)
    try:
        return await watch.fresh()
    finally:
        await watch.close()


def test_concurrent_generation_reads_share_queries_and_see_a_committed_change(
    shared_dsn: str,
) -> None:
    store = PostgresKeyStore(shared_dsn)

    async def scenario() -> tuple[list[int], int]:
        watch = open_generation(shared_dsn)
        try:
            first = await asyncio.gather(*(watch.fresh() for _ in range(50)))
            await asyncio.to_thread(store.put, _key("k1"))
            after = await watch.fresh()  # started after the commit: sees it
            return list(first), after
        finally:
            await watch.close()

    try:
        first, after = asyncio.run(scenario())
    finally:
        store.close()
    assert set(first) == {0}
    assert after == 1


def test_a_generation_read_fails_while_postgresql_is_gone_and_works_again_after(
    shared_dsn: str,
) -> None:
    async def scenario() -> tuple[int, int]:
        watch = open_generation(shared_dsn)
        try:
            before = await watch.fresh()
            with psycopg.connect(shared_dsn, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            with pytest.raises(StorageError) as info:
                await watch.fresh()
            assert info.value.retryable
            return before, await watch.fresh()  # a new connection
        finally:
            await watch.close()

    assert asyncio.run(scenario()) == (0, 0)
