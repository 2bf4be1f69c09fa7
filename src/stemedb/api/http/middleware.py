"""The one request middleware, pure ASGI: request id, 500 safety net, metrics, logs.

- ``X-Request-Id``: the client's (if sane) or a fresh one, on every response.
- Anything a handler raises that is not a StemeError/HTTPException (those become
  envelopes in ``api.http.errors``) is answered here as a 500 envelope, logged with its
  traceback and request id; the client never sees a stack trace.
- ``stemedb_http_requests_total`` / ``..._duration_seconds`` by route template
  (``scope["route"].path``; unmatched paths count as ``"<unmatched>"``).
- One access line per request, one ``Error: <Type>: …`` line per error answer.
"""

from __future__ import annotations

import time
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stemedb.api.http.errors import (
    AGENT_KEY,
    ERROR_KEY,
    JSON_MEDIA_TYPE,
    REQUEST_ID_KEY,
    accept_request_id,
    error_envelope_bytes,
)
from stemedb.api.observability.logs import log_access, log_error
from stemedb.api.observability.metrics import Metrics
from stemedb.errors import InternalError, StemeError

UNMATCHED_PATH: Final = "<unmatched>"
_REQUEST_ID_HEADER: Final = b"x-request-id"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = accept_request_id(_header(scope, _REQUEST_ID_HEADER))
        scope[REQUEST_ID_KEY] = request_id
        rid_header = (_REQUEST_ID_HEADER, request_id.encode("latin-1"))
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001 - the API's one 500 safety net
            error = InternalError("internal error; see the server log for this request id")
            scope[ERROR_KEY] = error
            log_error(
                error.type_name,
                f"{type(exc).__name__}: {exc}",
                scope.get(AGENT_KEY),
                request_id,
                status=500,
                code=error.code,
                exc_info=exc,
            )
            if status == 0:
                status = 500
                body = error_envelope_bytes(error, request_id)
                await send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", JSON_MEDIA_TYPE.encode()),
                            (b"content-length", str(len(body)).encode()),
                            rid_header,
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
            self.metrics.observe_error(error.type_name)
            self._finish(scope, status, started, request_id)
            return
        handled = scope.get(ERROR_KEY)
        if isinstance(handled, StemeError):
            self.metrics.observe_error(handled.type_name)
            log_error(
                handled.type_name,
                handled.message,
                scope.get(AGENT_KEY),
                request_id,
                status=handled.status,
                code=handled.code,
            )
        self._finish(scope, status, started, request_id)

    def _finish(self, scope: Scope, status: int, started: float, request_id: str) -> None:
        seconds = time.perf_counter() - started
        route = scope.get("route")
        path = getattr(route, "path", None) or UNMATCHED_PATH
        method = scope["method"]
        agent = scope.get(AGENT_KEY)
        self.metrics.observe_request(method, path, status, agent, seconds)
        log_access(method, scope["path"], path, status, agent, seconds * 1000.0, request_id)
