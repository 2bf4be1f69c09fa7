"""A real StemeDB server (``python -m stemedb.api``) on a free loopback port.

One server per test session (tmp data dir, small limits so the limit tests are cheap);
tests use unique subjects so they do not see each other's claims. ``ServerProcess``
can also start extra servers (shutdown and restart tests).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_server import ServerProcess
from support.redis import redis_server

from stemedb.model.signing import AgentKey


@pytest.fixture(scope="session", params=[1, 2], ids=["workers1", "workers2"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """Every test of the shared server runs against one HTTP process and against two
    (``api.workers``, ADR 0003)."""
    base = tmp_path_factory.mktemp("stemedb-api")
    proc = ServerProcess(base / "data", base / "server.log", STEMEDB_API_WORKERS=str(request.param))
    yield proc
    assert proc.stop() == 0, proc.log_path.read_text()[-2000:]


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        yield http


@pytest.fixture(scope="session")
def alice() -> AgentKey:
    return AgentKey.from_seed(b"\x11" * 32)


@pytest.fixture(scope="session")
def bob() -> AgentKey:
    return AgentKey.from_seed(b"\x22" * 32)


@pytest.fixture(scope="session")
def carol() -> AgentKey:
    return AgentKey.from_seed(b"\x33" * 32)


@pytest.fixture
def subject() -> str:
    """A subject no other test uses."""
    return f"test/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A Redis server of its own on a free loopback port (rate-limit storage)."""
    with redis_server(tmp_path) as url:
        yield url
