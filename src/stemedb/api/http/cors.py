"""CORS, pure ASGI: closed unless ``api.allowed_origins`` (``STEMEDB_ALLOWED_ORIGINS``).

With no allowed origin the middleware is not installed at all: no response carries an
``Access-Control-Allow-Origin`` header, so browsers refuse cross-origin reads. With
allowed origins:

- a request whose ``Origin`` is allowed gets ``Access-Control-Allow-Origin: <origin>``
  (``*`` when the list holds ``"*"``), ``Vary: Origin`` and
  ``Access-Control-Expose-Headers`` (request id, retry and rate-limit/quota headers);
- a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed
  origin is answered 204 here with the allowed methods and headers and
  ``Access-Control-Max-Age``; from any other origin it goes on to the app (405, no
  CORS headers). No credentials mode: API keys travel in ``X-API-Key``, not cookies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOW_METHODS: Final = "GET, POST, DELETE, OPTIONS"
ALLOW_HEADERS: Final = (
    "content-type",
    "x-api-key",
    "x-agent-id",
    "x-request-id",
    "last-event-id",
)
EXPOSE_HEADERS: Final = (
    "X-Request-Id, Retry-After, RateLimit, RateLimit-Policy, X-RateLimit-Limit,"
    " X-RateLimit-Remaining, X-RateLimit-Reset, X-Quota-Limit, X-Quota-Remaining,"
    " X-Quota-Reset"
)
PREFLIGHT_MAX_AGE_SECONDS: Final = 600
ANY_ORIGIN: Final = "*"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class CorsMiddleware:
    def __init__(self, app: ASGIApp, allowed_origins: Sequence[str]) -> None:
        self.app = app
        origins = [o.strip().rstrip("/") for o in allowed_origins if o.strip()]
        self.any_origin = ANY_ORIGIN in origins
        self.origins = frozenset(o for o in origins if o != ANY_ORIGIN)

    def allow(self, origin: str) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin``, or None."""
        if self.any_origin:
            return ANY_ORIGIN
        return origin if origin in self.origins else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        allowed = self.allow(origin) if origin else None
        if allowed is None:
            await self.app(scope, receive, send)
            return
        cors = [
            (b"access-control-allow-origin", allowed.encode("latin-1")),
            (b"vary", b"Origin"),
        ]
        requested = _header(scope, b"access-control-request-method")
        if scope["method"] == "OPTIONS" and requested is not None:
            await self._preflight(scope, send, cors)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", ()),
                    *cors,
                    (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, scope: Scope, send: Send, cors: list[tuple[bytes, bytes]]) -> None:
        asked = _header(scope, b"access-control-request-headers") or ""
        wanted = [h.strip().lower() for h in asked.split(",") if h.strip()]
        headers = ", ".join(h for h in wanted if h in ALLOW_HEADERS) or ", ".join(ALLOW_HEADERS)
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    *cors,
                    (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                    (b"access-control-allow-headers", headers.encode("latin-1")),
                    (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_SECONDS).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})
