"""The session of one ``/mcp`` tool call: the SDK, talking to this app in process.

The tool's ``AsyncClient`` sends its requests to the ASGI app that received the MCP
request (``httpx.ASGITransport``), with the caller's API key and client address, so a
tool call goes through the same routes as any ``/v1`` request: roles, rate limits,
quotas, breakers, audit, metrics and access logs, the writer process and the other
HTTP workers included. There is no second path to the store.

Writes are signed with the custodial key bound to the caller's API key
(``store.custodial_keys``), read per call: a key created or revoked by any HTTP worker
counts from the next call. No custodial key: the write tools refuse before anything is
sent. The client does not retry: a 429 or a 503 goes back to the model at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import httpx
from starlette.requests import Request

from stemedb.api.mcp.caller import CALLER_KEY, Caller
from stemedb.api.state import ApiState
from stemedb.errors import InternalError
from stemedb.mcp.tools import Session, client_session

NO_CUSTODIAL_KEY: Final = (
    "writes through /mcp are signed with the custodial key of your API key, and it has"
    ' none: an admin creates one with POST /v1/admin/custodial-keys {"api_key_id": …};'
    " or run `stemedb mcp --url …` locally, which signs with your own key file"
)


@asynccontextmanager
async def open_session(state: ApiState, request: Any) -> AsyncIterator[Session]:
    """The ``Session`` of one tool call received with ``request`` (Streamable HTTP)."""
    if not isinstance(request, Request) or not isinstance(
        caller := request.scope.get(CALLER_KEY), Caller
    ):
        raise InternalError("an MCP tool call without its HTTP request")
    signer = None
    if caller.api_key_id is not None:
        signer = await state.offload_unguarded(state.custodial.signer, caller.api_key_id)
    client_address = request.scope.get("client") or ("127.0.0.1", 0)
    transport = httpx.ASGITransport(
        app=request.scope["app"], client=(str(client_address[0]), int(client_address[1]))
    )
    host = request.headers.get("host") or "localhost"
    async with client_session(
        f"http://{host}",
        key=signer,
        api_key=caller.secret,
        custodial=signer is not None,
        no_signer_hint=NO_CUSTODIAL_KEY,
        timeout_seconds=state.config.api.request_timeout_seconds,
        transport=transport,
    ) as session:
        yield session


__all__ = ["open_session"]
