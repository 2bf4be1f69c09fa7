"""The dashboard's calls to the ``/v1`` API, in process (``httpx.ASGITransport``).

What a page changes (keys, limits, breakers, retractions) and what only the API layer
knows (an agent's quota and breaker, the admin lists) goes through the same ``/v1``
routes as any client's request, with the viewer's API key: roles, rate limits, audit,
metrics and access logs apply unchanged. There is no second path to the store — the
same design as the MCP tools' sessions (``api.mcp.sessions``).
"""

from __future__ import annotations

from typing import Any, Final

import httpx
from starlette.requests import Request

from stemedb.errors import StemeError

TIMEOUT_SECONDS: Final = 30.0


def refused(status: int, envelope: object) -> StemeError:
    """The error of a ``/v1`` answer with an error envelope (shown on the page as is)."""
    error = envelope.get("error") if isinstance(envelope, dict) else None
    if not isinstance(error, dict):
        error = {}
    return StemeError(
        str(error.get("message", f"the API answered {status}")),
        code=str(error.get("code", "api_error")),
        status=status,
        details={"type": str(error.get("type", "InternalError"))},
    )


async def call_api(
    request: Request,
    method: str,
    path: str,
    *,
    secret: str | None,
    body: object = None,
    params: dict[str, str] | None = None,
) -> Any:
    """The decoded JSON answer of ``method path`` sent to this app; a ``StemeError``
    with the answer's status, code and message on an error status."""
    client = request.scope.get("client") or ("127.0.0.1", 0)
    transport = httpx.ASGITransport(
        app=request.scope["app"], client=(str(client[0]), int(client[1]))
    )
    host = request.headers.get("host") or "localhost"
    headers = {"X-API-Key": secret} if secret else {}
    async with httpx.AsyncClient(
        transport=transport, base_url=f"http://{host}", timeout=TIMEOUT_SECONDS
    ) as http:
        answer = await http.request(method, path, json=body, params=params, headers=headers)
    try:
        decoded = answer.json()
    except ValueError:
        decoded = {}
    if answer.status_code >= 400:
        raise refused(answer.status_code, decoded)
    return decoded


__all__ = ["call_api", "refused"]
