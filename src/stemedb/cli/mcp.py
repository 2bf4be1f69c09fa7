"""``stemedb mcp``: the MCP tools over stdio, for a local agent host (``stemedb.mcp.stdio``).

The host runs it as a subprocess; it talks to the server at ``--url`` (else
``$STEMEDB_URL``, else the configuration's ``api.bind``) with the SDK, sends
``--api-key`` (else ``$STEMEDB_API_KEY``) and signs writes with ``--key-file`` (else
``$STEMEDB_PRIVATE_KEY`` / ``$STEMEDB_KEY_FILE``). Nothing but the protocol is written
to stdout.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from stemedb.cli.remote_commands import (
    USAGE_EXIT_CODE,
    ApiKeyOption,
    ConfigOption,
    UrlOption,
    fail,
    server_url,
)
from stemedb.errors import StemeError

KeyFileOption = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="The agent key that signs writes (else $STEMEDB_PRIVATE_KEY / $STEMEDB_KEY_FILE)",
    ),
]


def mcp_command(
    url: UrlOption = None,
    key_file: KeyFileOption = None,
    api_key: ApiKeyOption = None,
    config: ConfigOption = None,
) -> None:
    """Serve the MCP tools on stdin/stdout (for an agent host), over a running server."""
    from stemedb.client import key_from_env, load_key_file
    from stemedb.mcp.stdio import serve_stdio

    target = server_url(url, config)
    try:
        key = load_key_file(key_file) if key_file is not None else key_from_env()
    except StemeError as exc:
        raise fail(exc, USAGE_EXIT_CODE) from None
    secret = api_key or os.environ.get("STEMEDB_API_KEY", "").strip() or None
    asyncio.run(serve_stdio(target, key=key, api_key=secret))


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp_command)


__all__ = ["register"]
