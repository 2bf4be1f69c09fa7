"""Fixtures of the LangGraph store tests: one real server per session (a process on
loopback, as for the SDK tests) and a ``StemeStore`` on a root no other test uses."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from support.client_server import ServerProcess

from stemedb.client import AgentKey
from stemedb.langgraph import StemeStore


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("stemedb-langgraph")
    proc = ServerProcess(base / "data", base / "server.log")
    yield proc
    assert proc.stop() == 0, proc.log_path.read_text()[-2000:]


@pytest.fixture(scope="session")
def agent() -> AgentKey:
    return AgentKey.from_seed(b"\x4c" * 32)


@pytest.fixture
def root() -> str:
    return f"lg{uuid.uuid4().hex[:10]}"


@pytest.fixture
def store(server: ServerProcess, agent: AgentKey, root: str) -> Iterator[StemeStore]:
    with StemeStore(server.url, key=agent, root=root) as memory:
        yield memory
