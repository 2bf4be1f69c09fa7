"""``stemedb mcp``: the tools over stdio, for a local agent host.

The host starts ``stemedb mcp --url http://…`` as a subprocess and speaks MCP on its
stdin/stdout; every tool call is an SDK request to the running server at ``url``, with
the API key given (``STEMEDB_API_KEY``), and writes are signed *locally* with the
agent's own key file (``STEMEDB_KEY_FILE`` / ``--key-file``): the server never holds
that key. Without a key file the read tools work and the write tools refuse.
Logs go to stderr; stdout carries only the protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

from mcp.server.stdio import stdio_server

from stemedb.mcp.server import build_server
from stemedb.mcp.tools import Session, client_session
from stemedb.model.signing import AgentKey

NO_KEY_FILE: Final = (
    "`stemedb mcp` signs with a local key file: start it with --key-file PATH (or set"
    " STEMEDB_KEY_FILE; `stemedb keygen` writes one)"
)


async def serve_stdio(
    url: str, *, key: AgentKey | None, api_key: str | None, timeout_seconds: float = 30.0
) -> None:
    """Serve the tools on this process's stdin/stdout until the host closes them."""
    async with client_session(
        url,
        key=key,
        api_key=api_key,
        custodial=False,
        no_signer_hint=NO_KEY_FILE,
        timeout_seconds=timeout_seconds,
    ) as session:

        @asynccontextmanager
        async def open_session(_request: Any) -> AsyncIterator[Session]:
            yield session

        server = build_server(open_session)
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())


__all__ = ["serve_stdio"]
