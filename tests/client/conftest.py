"""Fixtures of the SDK tests: one real server per session, a signing client, keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from support.client_server import ServerProcess

from stemedb.client import AgentKey, Client


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("stemedb-client")
    proc = ServerProcess(base / "data", base / "server.log")
    yield proc
    assert proc.stop() == 0, proc.log_path.read_text()[-2000:]


@pytest.fixture(scope="session")
def alice() -> AgentKey:
    return AgentKey.from_seed(b"\x41" * 32)


@pytest.fixture(scope="session")
def bob() -> AgentKey:
    return AgentKey.from_seed(b"\x42" * 32)


@pytest.fixture
def db(server: ServerProcess, alice: AgentKey) -> Iterator[Client]:
    with Client(server.url, key=alice) as client:
        yield client


@pytest.fixture
def db_bob(server: ServerProcess, bob: AgentKey) -> Iterator[Client]:
    with Client(server.url, key=bob) as client:
        yield client


@pytest.fixture
def subject() -> str:
    """A subject no other test uses."""
    return f"sdk/{uuid.uuid4().hex[:12]}"
