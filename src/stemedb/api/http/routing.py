"""Routes that describe themselves (for the generated OpenAPI) and JSON answers.

``api_route`` wraps a handler with the request timeout (``api.request_timeout_seconds``
→ 504) unless the route streams or long-polls, and records what the handler reads and
answers in an ``EndpointDoc`` that ``api.http.openapi`` turns into the OpenAPI document.

The route's ASGI app is a ``RouteApp``: Starlette's ``request_response`` without its
per-request exception wrapper (a StemeError becomes the envelope right here; anything
else reaches ``RequestMiddleware``, the 500 safety net), with the route's access guard
in it. ``ExactRoutes`` sends requests for API routes without path parameters straight
to that app, past the router's regex scan and the exception middleware: ~20 % of the
event loop's time per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Protocol

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from stemedb.api.http.errors import ERROR_KEY, JSON_MEDIA_TYPE, error_response, request_id_of
from stemedb.errors import RequestTimeoutError, StemeError

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
    route.app = RouteApp(endpoint)
    route.doc = doc
    return route


class Guard(Protocol):
    """What ``api.guard.gate`` puts in front of a handler (``RouteApp.guard``)."""

    async def respond(
        self, scope: Scope, receive: Receive, send: Send, endpoint: Handler
    ) -> Response:
        """The handler's answer, or the guard's refusal, with the guard's headers; a
        StemeError is answered with the envelope."""
        ...


class RouteApp:
    """The ASGI app of one handler: a StemeError is answered with the envelope. The
    route's ``guard`` (a ``RouteGuard`` set by ``api.guard.access``), if any, admits the
    request and adds its headers to the answer: no ASGI layer or ``send`` wrapper of its
    own."""

    __slots__ = ("endpoint", "guard")

    def __init__(self, endpoint: Handler) -> None:
        self.endpoint = endpoint
        self.guard: Guard | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.guard is not None:
            response = await self.guard.respond(scope, receive, send, self.endpoint)
        else:
            response = await handle(self.endpoint, scope, receive, send)
        await response(scope, receive, send)


async def handle(endpoint: Handler, scope: Scope, receive: Receive, send: Send) -> Response:
    """``endpoint``'s answer; a StemeError it raises is answered with the envelope."""
    try:
        return await endpoint(Request(scope, receive, send))
    except StemeError as exc:
        return envelope_response(scope, exc)


def envelope_response(scope: Scope, exc: StemeError) -> Response:
    """The envelope answer of ``exc``, noted in the scope for ``RequestMiddleware``'s
    error line and metrics."""
    scope[ERROR_KEY] = exc
    return error_response(exc, request_id_of(Request(scope)))


class ExactRoutes:
    """Dispatches ``(method, path)`` of an ``ApiRoute`` without path parameters directly
    to the route's app (``RouteApp``); everything else goes to ``app``
    (the exception middleware and the router)."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router
        self._exact: dict[tuple[str, str], Route] | None = None

    def _table(self) -> dict[tuple[str, str], Route]:
        table: dict[tuple[str, str], Route] = {}
        for route in self.router.routes:
            if isinstance(route, ApiRoute) and not route.param_convertors:
                for method in route.methods or ():
                    table.setdefault((method, route.path), route)
        return table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            exact = self._exact
            if exact is None:  # built at the first request: routes are final by then
                exact = self._exact = self._table()
            route = exact.get((scope["method"], scope["path"]))
            if route is not None:
                scope["router"] = self.router
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = {}
                await route.app(scope, receive, send)
                return
        await self.app(scope, receive, send)
