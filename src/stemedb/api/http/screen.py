"""The request screen, pure ASGI, inside ``RequestMiddleware`` (so refusals carry the
envelope, the request id, a log line and a metric): what every request must pass
before routing (docs/operations/security.md).

1. ``Host`` names this node (``api.guard.protected.Names``; DNS rebinding) → else
   ``421 misdirected_host``. ``/health``, ``/v1/health``, ``/ready`` and ``/metrics``
   are exempt: load-balancer checks and scrapers name nodes their own way.
2. Protected mode (keys off, no opt-out): the client is loopback → else
   ``403 protected_mode``.
3. A state-changing request (``POST``, ``PUT``, ``PATCH``, ``DELETE``) that carries an
   ``Origin`` comes from this origin or one of ``api.allowed_origins`` → else
   ``403 origin_not_allowed`` (a browser always sends ``Origin`` on such requests:
   cross-site pages cannot drive the API, MCP's advice for local servers).
4. A JSON route (``/v1/…``) given a body (``POST``, ``PUT``, ``PATCH``) declares
   ``Content-Type: application/json`` → else ``415 unsupported_media_type``: no CORS
   "simple request" (``text/plain``, a form) reaches a handler. A body-less ``POST``
   without a ``Content-Type`` (``curl -X POST``) is let through. ``/mcp`` has its own
   content negotiation; ``/ui`` posts forms with a CSRF token.
5. The query string is at most ``MAX_QUERY_STRING_BYTES``, and the request target was
   not cut by ``api.http.connections`` (over its ``MAX_TARGET_BYTES``, which the
   server's URL parser cannot split) → else ``414 uri_too_long``.
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from stemedb.api.guard.protected import Names, misdirected, refused_client
from stemedb.api.http.errors import ERROR_KEY, REQUEST_ID_KEY, error_response
from stemedb.config import Config
from stemedb.errors import AuthorizationError, StemeError, ValidationError

MAX_QUERY_STRING_BYTES: Final = 16 * 1024
TARGET_TOO_LONG_KEY: Final = "stemedb.target_bytes"  # set by api.http.connections
HOST_EXEMPT_PATHS: Final = frozenset({"/health", "/v1/health", "/ready", "/metrics"})
JSON_PREFIX: Final = "/v1/"
BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_MEDIA: Final = b"application/json"


def _media_type(value: bytes) -> bytes:
    return value.split(b";", 1)[0].strip().lower()


def _origin_authority(origin: bytes) -> bytes:
    """``scheme://host[:port]`` → ``host[:port]`` (lower case)."""
    return origin.partition(b"://")[2].rstrip(b"/").lower()


def _not_json(content_type: bytes | None, has_body: bool) -> StemeError | None:
    """415 unless the request declares JSON (or carries neither a body nor a type)."""
    if content_type is None and not has_body:
        return None
    if content_type is not None and _media_type(content_type) == JSON_MEDIA:
        return None
    shown = "none" if content_type is None else content_type.decode("latin-1")[:100]
    return ValidationError(
        "content-type",
        "application/json",
        f"this route takes JSON: send Content-Type: application/json (got {shown})",
        code="unsupported_media_type",
        status=415,
    )


def _headers(scope: Scope) -> tuple[bytes | None, bytes | None, bytes | None, bool]:
    """``Host``, ``Origin``, ``Content-Type`` and whether a body is announced."""
    host = origin = content_type = None
    has_body = False
    for name, value in scope["headers"]:
        if name == b"host":
            host = value
        elif name == b"origin":
            origin = value
        elif name == b"content-type":
            content_type = value
        elif name == b"content-length":
            has_body = value.strip() not in (b"0", b"")
        elif name == b"transfer-encoding":
            has_body = True
    return host, origin, content_type, has_body


def _too_long(scope: Scope) -> StemeError | None:
    """414 for a query string over ``MAX_QUERY_STRING_BYTES`` or a cut request target."""
    target = scope.get(TARGET_TOO_LONG_KEY)
    if target is not None:
        message = f"the request target is {target} bytes; the query string may hold at most"
    elif len(scope.get("query_string", b"")) > MAX_QUERY_STRING_BYTES:
        message = "the query string exceeds"
    else:
        return None
    return ValidationError(
        "query_string",
        "too_long",
        f"{message} {MAX_QUERY_STRING_BYTES} bytes",
        code="uri_too_long",
        status=414,
    )


class RequestScreen:
    def __init__(self, app: ASGIApp, config: Config) -> None:
        self.app = app
        self.names = Names(config)
        self.origins = frozenset(o.encode("latin-1") for o in config.api.allowed_origins)
        self.any_origin = "*" in config.api.allowed_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            error = self.check(scope)
            if error is not None:
                scope[ERROR_KEY] = error
                request_id = str(scope.get(REQUEST_ID_KEY, ""))
                await error_response(error, request_id)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def check(self, scope: Scope) -> StemeError | None:
        """The refusal of this request, or None to let it through."""
        host, origin, content_type, has_body = _headers(scope)
        path: str = scope["path"]
        if host is not None and path not in HOST_EXEMPT_PATHS and not self.names.host_allowed(host):
            return misdirected(host)
        if self.names.protected:
            client = scope.get("client")
            address = str(client[0]) if client else ""
            if address and not self.names.client_allowed(address):
                return refused_client(address)
        method: str = scope["method"]
        if origin is not None and method in UNSAFE_METHODS and not self._origin_ok(origin, host):
            return AuthorizationError(
                f"cross-origin {method} from {origin.decode('latin-1')[:200]!r} refused: only"
                " this node's own origin and [api] allowed_origins may change state",
                code="origin_not_allowed",
            )
        if method in BODY_METHODS and path.startswith(JSON_PREFIX):
            refused = _not_json(content_type, has_body)
            if refused is not None:
                return refused
        return _too_long(scope)

    def _origin_ok(self, origin: bytes, host: bytes | None) -> bool:
        if self.any_origin or origin in self.origins:
            return True
        return host is not None and _origin_authority(origin) == host.strip().lower()


__all__ = ["MAX_QUERY_STRING_BYTES", "TARGET_TOO_LONG_KEY", "RequestScreen"]
