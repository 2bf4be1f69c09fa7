"""The error envelope of API.md for every non-2xx answer, and the request id.

Route handlers raise :class:`stemedb.errors.StemeError`; Starlette's own 404/405 arrive
as ``HTTPException``. Both become ``{"error": {...}, "request_id": ...}`` here. Anything
else is caught by the request middleware (``api.http.middleware``) and answered as a 500
envelope without a stack trace. The request id lives in the ASGI scope under
``REQUEST_ID_KEY`` (set by the middleware before routing).
"""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Final

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stemedb.errors import (
    InternalError,
    NotFoundError,
    StemeError,
    ValidationError,
)

REQUEST_ID_KEY: Final = "stemedb.request_id"
AGENT_KEY: Final = "stemedb.agent"
ERROR_KEY: Final = "stemedb.error"
REQUEST_ID_HEADER: Final = "x-request-id"
JSON_MEDIA_TYPE: Final = "application/json"
RETRY_AFTER_SECONDS: Final = 1
RETRY_AFTER_UNAVAILABLE_SECONDS: Final = 5

_REQUEST_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_ENCODER: Final = msgspec.json.Encoder()


# A random per-process prefix and a counter: unique across requests and restarts, and no
# os.urandom per request (it releases the GIL, which costs a thread switch under load).
_REQUEST_ID_PREFIX: Final = uuid.uuid4().hex[:16]
_REQUEST_COUNTER: Final = itertools.count(1)


def new_request_id() -> str:
    return f"{_REQUEST_ID_PREFIX}{next(_REQUEST_COUNTER):016x}"


def accept_request_id(value: str | None) -> str:
    """The client's ``X-Request-Id`` if it is a sane token, else a fresh one."""
    if value and _REQUEST_ID_PATTERN.fullmatch(value):
        return value
    return new_request_id()


def request_id_of(request: Request) -> str:
    rid = request.scope.get(REQUEST_ID_KEY)
    if rid is None:
        rid = new_request_id()
        request.scope[REQUEST_ID_KEY] = rid
    return str(rid)


def retry_after_seconds(error: StemeError) -> int | None:
    """``Retry-After`` for 429 and 503 answers (API.md), else None."""
    if error.status == 429:
        return int(error.details.get("retry_after_seconds", RETRY_AFTER_SECONDS))
    if error.status == 503:
        return int(error.details.get("retry_after_seconds", RETRY_AFTER_UNAVAILABLE_SECONDS))
    return None


def error_response(
    error: StemeError, request_id: str, headers: dict[str, str] | None = None
) -> Response:
    out = dict(headers or {})
    retry_after = retry_after_seconds(error)
    if retry_after is not None:
        out["Retry-After"] = str(retry_after)
    return Response(
        _ENCODER.encode(error.to_envelope(request_id)),
        status_code=error.status,
        headers=out,
        media_type=JSON_MEDIA_TYPE,
    )


def error_envelope_bytes(error: StemeError, request_id: str) -> bytes:
    return _ENCODER.encode(error.to_envelope(request_id))


def from_http_exception(exc: HTTPException, request: Request) -> StemeError:
    """Starlette's routing errors in our hierarchy (stable codes)."""
    method, path = request.method, request.url.path
    if exc.status_code == 404:
        return NotFoundError(f"no route for {method} {path}", code="route_not_found")
    if exc.status_code == 405:
        return ValidationError(
            "method",
            "not_allowed",
            f"method {method} is not allowed for {path}",
            code="method_not_allowed",
            status=405,
        )
    if exc.status_code >= 500:
        return InternalError("internal error")
    return ValidationError("request", "invalid", str(exc.detail), status=exc.status_code)


async def handle_steme_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StemeError)
    request.scope[ERROR_KEY] = exc
    return error_response(exc, request_id_of(request))


def allowed_methods(request: Request) -> str | None:
    """Every method some route serves at this path: one path may be split over several
    routes (``GET`` and ``POST /v1/query``), and Starlette's 405 names only the first."""
    router = request.scope.get("router")
    path = request.scope.get("path", "")
    methods: set[str] = set()
    for route in getattr(router, "routes", ()):
        if isinstance(route, Route) and route.methods and route.path_regex.match(path):
            methods |= route.methods
    return ", ".join(sorted(methods)) if methods else None


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = from_http_exception(exc, request)
    request.scope[ERROR_KEY] = error
    headers = None
    if exc.headers and "Allow" in exc.headers:
        headers = {"Allow": allowed_methods(request) or exc.headers["Allow"]}
    return error_response(error, request_id_of(request), headers)


EXCEPTION_HANDLERS: Final = {
    StemeError: handle_steme_error,
    HTTPException: handle_http_exception,
}
