"""``/mcp``: the MCP SDK's Streamable HTTP transport, behind StemeDB's own checks.

Before the SDK sees a request:

- ``Origin`` (the MCP spec's defence against DNS rebinding): absent, or one of
  ``api.allowed_origins``; any other is refused 403 ``origin_not_allowed``.
- The API key, when ``[auth] enabled``: ``X-API-Key`` (or ``Authorization: Bearer``)
  is required and must be valid (401 otherwise), whatever ``require_for_reads`` says —
  an MCP session can write. The tools' own requests then carry the same key through
  the ``/v1`` routes (``api.mcp.sessions``), which apply roles, limits and quotas.

The SDK runs *stateless* with JSON answers: every POST is a self-contained exchange,
so any HTTP worker (``api.workers``) can answer any request of a session, and nothing
is kept between requests. Both the handshake-era protocol versions and 2026-07-28
(no handshake) are served. The SDK's own Host/Origin check is off: the Origin rule
above is this server's, answered with its error envelope.

The SDK (and pydantic under it) takes about as long to import as the rest of the
server: it is imported off the event loop once the node is up (``running``), so
start-up does not wait for it; a request to ``/mcp`` before that waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Final

from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from stemedb.api.http.routing import envelope_response
from stemedb.api.mcp.caller import CALLER_KEY, Caller
from stemedb.api.state import ApiState
from stemedb.errors import (
    AuthenticationError,
    AuthorizationError,
    StemeError,
    UnavailableError,
)

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

MCP_PATH: Final = "/mcp"
SDK_LOAD_TIMEOUT_SECONDS: Final = 60.0
_BEARER: Final = "bearer "
# The SDK logs every stateless exchange, and httpx every in-process request, at INFO.
QUIET_LOGGERS: Final = ("mcp.server.streamable_http", "httpx")


def _secret(headers: Headers) -> str | None:
    secret = headers.get("x-api-key")
    if secret is None:
        authorization = headers.get("authorization", "")
        if authorization[: len(_BEARER)].lower() == _BEARER:
            secret = authorization[len(_BEARER) :].strip() or None
    return secret


class McpEndpoint:
    """The ASGI app of ``/mcp`` (``route``); ``running`` is entered by the lifespan."""

    def __init__(self, state: ApiState) -> None:
        self.state = state
        self.allowed_origins = frozenset(state.config.api.allowed_origins)
        self._manager: StreamableHTTPSessionManager | None = None
        self._loaded = asyncio.Event()
        self._stop = asyncio.Event()

    def _load(self) -> StreamableHTTPSessionManager:
        """Blocking: import the SDK and build the session manager over the tools."""
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
        from mcp.server.transport_security import TransportSecuritySettings

        from stemedb.api.mcp.sessions import open_session
        from stemedb.mcp.server import build_server

        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        return StreamableHTTPSessionManager(
            app=build_server(partial(open_session, self.state)),
            json_response=True,
            stateless=True,
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            max_request_body_size=self.state.config.api.max_body_bytes,
        )

    async def _serve(self) -> None:
        manager = await asyncio.get_running_loop().run_in_executor(None, self._load)
        async with manager.run():
            self._manager = manager
            self._loaded.set()
            await self._stop.wait()
        self._manager = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """For the app's lifespan: the SDK's session manager runs in a task of its own."""
        task = asyncio.create_task(self._serve(), name="stemedb-mcp")
        try:
            yield
        finally:
            self._stop.set()
            await task

    async def _loaded_manager(self) -> StreamableHTTPSessionManager:
        try:
            async with asyncio.timeout(SDK_LOAD_TIMEOUT_SECONDS):
                await self._loaded.wait()
        except TimeoutError:
            raise UnavailableError("/mcp is starting; retry", code="not_ready") from None
        if self._manager is None:
            raise UnavailableError("the node is shutting down", code="not_ready")
        return self._manager

    def route(self) -> Route:
        return Route(MCP_PATH, self, name="mcp")

    def _caller(self, headers: Headers) -> Caller:
        origin = headers.get("origin")
        if origin is not None and origin not in self.allowed_origins:
            raise AuthorizationError(
                f"Origin {origin!r} may not use /mcp: add it to api.allowed_origins",
                code="origin_not_allowed",
            )
        access = self.state.access
        secret = _secret(headers)
        access.refresh()
        if access.auth_enabled:
            return Caller(secret, access.keys.authenticate(secret).id)
        if secret is None:
            return Caller(None, None)
        try:  # auth is off: a key only selects its custodial key
            return Caller(secret, access.keys.authenticate(secret).id)
        except AuthenticationError:
            return Caller(secret, None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            access = self.state.access
            if access.watch is not None:  # cluster mode: the cluster's keys, as /v1 reads them
                await access.refresh_shared()
            scope[CALLER_KEY] = self._caller(Headers(scope=scope))
            manager = await self._loaded_manager()
        except StemeError as exc:
            await envelope_response(scope, exc)(scope, receive, send)
            return
        await manager.handle_request(scope, receive, send)


__all__ = ["MCP_PATH", "McpEndpoint"]
