"""A real server with API keys on (two HTTP workers, the writer process), and the keys
the MCP tests use: a writer and a reader, each with a custodial key, and a writer
without one. The MCP clients are the SDK's own (``mcp_harness``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp_harness import SKEPTIC_LIMIT, McpServer, start_node


@pytest.fixture(scope="session")
def mcp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpServer]:
    server = start_node(
        tmp_path_factory.mktemp("stemedb-mcp"),
        STEMEDB_ALLOWED_ORIGINS='["https://agents.example"]',
        STEMEDB_RATE_LIMIT_ENABLED="true",
        STEMEDB_RATE_LIMIT_WINDOW_SECONDS="60",
        STEMEDB_RATE_LIMIT_ENDPOINTS=f'{{"/v1/skeptic": {SKEPTIC_LIMIT}}}',
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def writer(mcp_server: McpServer) -> dict[str, Any]:
    """A writer API key with a custodial key (``custodial``: its agent)."""
    return mcp_server.api_key("writer", custodial=True)


@pytest.fixture(scope="session")
def reader(mcp_server: McpServer) -> dict[str, Any]:
    return mcp_server.api_key("reader", custodial=True)


@pytest.fixture
def log_path(mcp_server: McpServer) -> Path:
    return mcp_server.proc.log_path
