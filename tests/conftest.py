"""Shared fixtures: deterministic agent keys, a fake clock, a real engine and service.

Everything runs on real SQLite and a real WAL in ``tmp_path``; only the clock is fake
(it starts at ``T0`` and moves only when a test moves it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.engines import engine_for_test
from support.postgres import PostgresServer

from stemedb.engine import Engine
from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey, sign_assertion
from stemedb.query.service import QueryService
from stemedb.sys.faults import FakeClock

T0 = 1_700_000_000  # the fake clock's start (unix seconds)

EngineFactory = Callable[..., Engine]
ClaimFactory = Callable[..., Assertion]


def agent_key(index: int) -> AgentKey:
    """A fixed key per index, so agent ids are stable across runs."""
    return AgentKey.from_seed(bytes([index + 1]) * 32)


@pytest.fixture
def keys() -> list[AgentKey]:
    """Five distinct agents: keys[0] is "alice", keys[1] "bob", …"""
    return [agent_key(i) for i in range(5)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(float(T0))


@pytest.fixture
def store_backend() -> str:
    """What ``make_engine``'s engines store into: ``"sqlite"`` (embedded); the lens and
    query suites run on ``"postgres"`` too (cluster mode's ``Engine.shared``), with the
    same expected results (``tests/unit/query/conftest.py``)."""
    return "sqlite"


@pytest.fixture
def make_engine(
    tmp_path: Path, clock: FakeClock, store_backend: str, request: pytest.FixtureRequest
) -> Iterator[EngineFactory]:
    """Open engines on ``tmp_path/data`` or, with ``store_backend`` postgres, on one
    migrated database (reopenable); every one is closed at teardown."""
    opened: list[Engine] = []
    dsn = request.getfixturevalue("postgres_store_dsn") if store_backend == "postgres" else None

    def factory(**kwargs: Any) -> Engine:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("group_commit_max_delay_us", 0)
        eng = engine_for_test(tmp_path / "data", postgres_dsn=dsn, **kwargs)
        opened.append(eng)
        return eng

    yield factory
    for eng in reversed(opened):
        eng.close()


@pytest.fixture
def engine(make_engine: EngineFactory) -> Engine:
    return make_engine()


@pytest.fixture
def service(engine: Engine) -> Iterator[QueryService]:
    svc = QueryService(engine)
    yield svc
    svc.close()


@pytest.fixture
def claim(keys: list[AgentKey]) -> ClaimFactory:
    """``claim(value, key=keys[0], subject=…, predicate=…, timestamp=T0-…, **fields)``."""

    def factory(
        value: object = "rare",
        *,
        key: AgentKey | None = None,
        subject: str = "drugs/semaglutide",
        predicate: str = "gastroparesis_risk",
        confidence: float = 0.8,
        timestamp: int = T0 - 100,
        **fields: Any,
    ) -> Assertion:
        return sign_assertion(
            key or keys[0],
            subject=subject,
            predicate=predicate,
            object=value,  # type: ignore[arg-type]
            confidence=confidence,
            timestamp=timestamp,
            **fields,
        )

    return factory


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL 15 server for the session, started on first use."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database of the session's PostgreSQL for this test."""
    with postgres_server.database() as dsn:
        yield dsn


@pytest.fixture
def postgres_store_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database with the StemeDB schema (every migration applied), copied from
    a template migrated once per session (faster than migrating per test); closed after
    the test, not dropped (faster again: the server's directory goes at the end)."""
    from stemedb.store.postgres import migrate

    template = postgres_server.template("stemedb_migrated", migrate)
    with postgres_server.database(template, drop=False) as dsn:
        yield dsn
