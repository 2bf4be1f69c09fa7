"""The SDK's MCP client over Streamable HTTP against a served StemeDB (``/mcp``, with
the caller's API key), and how to read its tool answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

Mode = Literal["auto", "legacy"]


@asynccontextmanager
async def http_session(
    url: str,
    secret: str | None,
    *,
    origin: str | None = None,
    mode: Mode = "auto",
) -> AsyncIterator[Client]:
    headers = {}
    if secret is not None:
        headers["x-api-key"] = secret
    if origin is not None:
        headers["origin"] = origin
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30.0) as http,
        Client(streamable_http_client(url + "/mcp", http_client=http), mode=mode) as client,
    ):
        yield client


def structured(result: CallToolResult) -> dict[str, Any]:
    """A tool's structured answer; fails with the tool's error text if it refused."""
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    text = result.content[0]
    assert json.loads(getattr(text, "text", "")) == result.structured_content
    return result.structured_content


def tool_error(result: CallToolResult) -> dict[str, Any]:
    """The ``{"type", "code", "message", …}`` of a tool call that was refused."""
    assert result.is_error, result.structured_content
    error: dict[str, Any] = json.loads(getattr(result.content[0], "text", ""))["error"]
    return error
