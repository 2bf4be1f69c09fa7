"""Routes that describe themselves (for the generated OpenAPI) and JSON answers.

``api_route`` wraps a handler with the request timeout (``api.request_timeout_seconds``
→ 504) unless the route streams or long-polls, and records what the handler reads and
answers in an ``EndpointDoc`` that ``api.openapi`` turns into the OpenAPI document.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stemedb.api.errors import JSON_MEDIA_TYPE
from stemedb.errors import RequestTimeoutError

Handler = Callable[[Request], Awaitable[Response]]

_ENCODER: Final = msgspec.json.Encoder()


class Param(msgspec.Struct, frozen=True):
    """A documented query parameter."""

    name: str
    type: Any
    description: str = ""
    required: bool = False


class EndpointDoc(msgspec.Struct, frozen=True, kw_only=True):
    summary: str
    tag: str
    body: Any = None
    responses: dict[int, Any] = {}
    params: tuple[Param, ...] = ()
    media_type: str = JSON_MEDIA_TYPE


class ApiRoute(Route):
    doc: EndpointDoc


def json_response(
    value: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        _ENCODER.encode(value), status_code=status, headers=headers, media_type=JSON_MEDIA_TYPE
    )


def api_route(
    path: str,
    handler: Handler,
    methods: Sequence[str],
    doc: EndpointDoc,
    *,
    timeout_seconds: float | None,
) -> ApiRoute:
    endpoint = handler
    if timeout_seconds is not None and timeout_seconds > 0:
        limit = timeout_seconds

        async def endpoint(request: Request) -> Response:
            try:
                async with asyncio.timeout(limit):
                    return await handler(request)
            except TimeoutError:
                raise RequestTimeoutError(
                    f"the request took longer than api.request_timeout_seconds ({limit:g}s)"
                ) from None

        endpoint.__name__ = handler.__name__
    route = ApiRoute(path, endpoint, methods=list(methods), name=handler.__name__)
    route.doc = doc
    return route
