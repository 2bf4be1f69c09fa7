"""The SDK's MCP client against a served StemeDB, over Streamable HTTP (``/mcp``, with
the caller's API key) or stdio (``stemedb mcp --url …`` as a subprocess)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from mcp import Client, StdioServerParameters
from support.mcp_client import Mode, http_session, structured, tool_error
from support.server import ServerProcess

__all__ = [
    "McpServer",
    "http_session",
    "new_subject",
    "start_node",
    "stdio_session",
    "structured",
    "tool_error",
]

ROOT_KEY = "root-mcp-test-key-" + "7d2e4b" * 6
SKEPTIC_LIMIT = 3


class McpServer:
    def __init__(self, proc: ServerProcess, admin: httpx.Client) -> None:
        self.proc = proc
        self.admin = admin
        self.url = proc.url

    def stop(self) -> None:
        self.admin.close()
        assert self.proc.stop() == 0, self.proc.log_path.read_text()[-3000:]

    def api_key(self, role: str, *, custodial: bool) -> dict[str, Any]:
        made = self.admin.post(
            "/v1/admin/api-keys", json={"name": f"mcp-{role}-{uuid.uuid4().hex[:6]}", "role": role}
        )
        assert made.status_code == 201, made.text
        key = dict(made.json())
        if custodial:
            answer = self.admin.post("/v1/admin/custodial-keys", json={"api_key_id": key["id"]})
            assert answer.status_code == 201, answer.text
            key["custodial"] = answer.json()["agent_id"]
        return key


def start_node(base: Path, **env: str) -> McpServer:
    """A node with API keys on (root key ``ROOT_KEY``), two HTTP workers, its writer
    process, configured by ``env`` beyond that."""
    proc = ServerProcess(
        base / "data",
        base / "server.log",
        isolated=True,
        STEMEDB_API_WORKERS="2",
        STEMEDB_AUTH_ENABLED="true",
        STEMEDB_ROOT_API_KEY=ROOT_KEY,
        **env,
    )
    admin = httpx.Client(base_url=proc.url, headers={"x-api-key": ROOT_KEY}, timeout=30.0)
    return McpServer(proc, admin)


@asynccontextmanager
async def stdio_session(
    url: str, secret: str | None, key_file: Path | None, *, mode: Mode = "auto"
) -> AsyncIterator[Client]:
    args = ["-c", "from stemedb.cli.main import main; main()", "mcp", "--url", url]
    if key_file is not None:
        args += ["--key-file", str(key_file)]
    env = {"PATH": "/usr/bin:/bin"}
    if secret is not None:
        env["STEMEDB_API_KEY"] = secret
    params = StdioServerParameters(command=sys.executable, args=args, env=env)
    async with Client(params, mode=mode) as client:
        yield client


def new_subject() -> str:
    return f"mcp-test/{uuid.uuid4().hex[:12]}"
