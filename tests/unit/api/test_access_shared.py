"""Access control of two cluster nodes on one real PostgreSQL: a key, an override or a
breaker changed through one node holds on the other from its next guarded request
(``AccessControl.refresh_shared``, called by the route guard before anything else)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import pytest
from support.shared_schema import apply_shared_migrations

from stemedb.api.guard.access import AccessControl
from stemedb.api.observability.metrics import Metrics
from stemedb.config import Config
from stemedb.errors import AuthenticationError, AuthorizationError, StorageError
from stemedb.store.keys import RateOverride

ROOT_SECRET = "r" * 40
AGENT = "b" * 64


def _config(dsn: str, node: str, threshold: int = 2) -> Config:
    return msgspec.convert(
        {
            "storage": {"backend": "postgres", "postgres_dsn": dsn},
            "auth": {"enabled": True, "root_api_key": ROOT_SECRET},
            "rate_limit": {"enabled": True},
            "resilience": {"failure_threshold": threshold},
            "cluster": {"node_id": node},
        },
        Config,
    )


@asynccontextmanager
async def _node(dsn: str, data: Path, node: str) -> AsyncIterator[AccessControl]:
    access = AccessControl(_config(dsn, node), Metrics("test", cluster=True))
    await access.start(data)
    try:
        yield access
    finally:
        await access.stop()


Scenario = Callable[[AccessControl, AccessControl], Awaitable[None]]


def _run(dsn: str, tmp_path: Path, scenario: Scenario) -> None:
    apply_shared_migrations(dsn)

    async def main() -> None:
        async with (
            _node(dsn, tmp_path / "a", "a") as a,
            _node(dsn, tmp_path / "b", "b") as b,
        ):
            await scenario(a, b)

    asyncio.run(main())


def test_a_key_created_and_revoked_on_one_node_holds_on_the_other_at_its_next_request(
    postgres_dsn: str, tmp_path: Path
) -> None:
    async def scenario(a: AccessControl, b: AccessControl) -> None:
        made = await asyncio.to_thread(a.keys.create, "ci", "writer", None)
        await b.refresh_shared()
        assert b.keys.authenticate(made.secret).id == made.id
        await asyncio.to_thread(a.keys.disable, made.id)
        await b.refresh_shared()
        with pytest.raises(AuthenticationError, match="disabled"):
            b.keys.authenticate(made.secret)
        await asyncio.to_thread(a.keys.delete, made.id)
        await b.refresh_shared()
        with pytest.raises(AuthenticationError, match="not valid"):
            b.keys.authenticate(made.secret)

    _run(postgres_dsn, tmp_path, scenario)


def test_a_rate_limit_override_set_on_one_node_applies_on_the_other(
    postgres_dsn: str, tmp_path: Path
) -> None:
    async def scenario(a: AccessControl, b: AccessControl) -> None:
        row = RateOverride(scope="agent", target=AGENT, max_requests_per_min=3, created_at=1.0)
        await asyncio.to_thread(a.keys.store.put_override, row)
        await b.refresh_shared()
        assert b.rates.limit_of("agent", AGENT) == 3

    _run(postgres_dsn, tmp_path, scenario)


def test_an_agent_tripped_on_one_node_is_refused_on_the_other_until_reset(
    postgres_dsn: str, tmp_path: Path
) -> None:
    async def scenario(a: AccessControl, b: AccessControl) -> None:
        a.breakers.trip(AGENT, "abuse")
        await a.breakers.published()
        await b.refresh_shared()
        with pytest.raises(AuthorizationError, match="tripped by an admin"):
            b.breakers.admit(AGENT)
        view = b.breakers.view(AGENT)
        assert (view.state, view.tripped_by, view.reason) == ("open", "admin", "abuse")
        a.breakers.reset(AGENT)
        await a.breakers.published()
        await b.refresh_shared()
        assert b.breakers.admit(AGENT) is False  # closed: admitted, no trial

    _run(postgres_dsn, tmp_path, scenario)


def test_a_breaker_opened_by_failures_on_one_node_is_open_on_the_other(
    postgres_dsn: str, tmp_path: Path
) -> None:
    async def scenario(a: AccessControl, b: AccessControl) -> None:
        for _ in range(2):  # failure_threshold
            a.breakers.record(AGENT, "failure", trial=False)
        await a.breakers.published()
        await b.refresh_shared()
        with pytest.raises(AuthorizationError, match="repeated failed writes"):
            b.breakers.admit(AGENT)
        assert b.breakers.open_count() == 1

    _run(postgres_dsn, tmp_path, scenario)


def test_a_request_is_refused_when_the_generation_cannot_be_read(
    postgres_dsn: str, tmp_path: Path
) -> None:
    async def scenario(a: AccessControl, b: AccessControl) -> None:
        import psycopg

        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute("ALTER TABLE stemedb_access_generation RENAME TO moved")
            try:
                with pytest.raises(StorageError):
                    await b.refresh_shared()
            finally:
                admin.execute("ALTER TABLE moved RENAME TO stemedb_access_generation")
        errors = b.metrics.registry.get_sample_value(
            "stemedb_postgres_errors_total", {"operation": "access_generation"}
        )
        assert errors == 1.0
        await b.refresh_shared()

    _run(postgres_dsn, tmp_path, scenario)
