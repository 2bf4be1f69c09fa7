"""Logging of the server (API.md "Logs"): one JSON object per line on stdout
(the handler and the formats: ``runtime.logs``, shared with the writer process).

Fields: ``timestamp``, ``level``, ``message``, ``logger``, ``request_id`` and any
context passed as ``extra={"ctx": {...}}``. The message itself carries the key facts
(``HTTP POST /v1/assert 201 agent_id=… duration_ms=… request_id=…``), so
``format = "text"`` prints the same message without the JSON wrapper.
"""

from __future__ import annotations

import logging
import time
from typing import Final

import msgspec

from stemedb.config import LoggingConfig
from stemedb.runtime.logs import LoopBatchedHandler, configure_process_logging

ACCESS_LOGGER: Final = "stemedb.access"
ERROR_LOGGER: Final = "stemedb.api"

_ENCODER: Final = msgspec.json.Encoder()


class _AccessLine(msgspec.Struct):
    """An access line as ``JsonFormatter`` writes it (the same keys in the same order)."""

    timestamp: str
    level: str
    message: str
    logger: str
    request_id: str
    method: str
    path: str
    route: str
    status: int
    agent_id: str | None
    duration_ms: float


class _FastAccess:
    """Access lines written straight to the handler ``configure_logging`` installed for
    the JSON format, past ``logging``'s records, handlers and formatter (about 8 % of an
    HTTP worker's CPU under load): the same line, as long as that handler is the only
    one (a test's log capture, say, turns this off)."""

    def __init__(self) -> None:
        self.handler: LoopBatchedHandler | None = None
        self._second = -1
        self._prefix = ""

    def timestamp(self, now: float) -> str:
        """``JsonFormatter``'s timestamp of a record created at ``now``."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        return f"{self._prefix}.{int((now - second) * 1000):03d}Z"

    def usable(self) -> LoopBatchedHandler | None:
        handler = self.handler
        if handler is None:
            return None
        handlers = logging.root.handlers
        if len(handlers) != 1 or handlers[0] is not handler or handler.filters:
            return None
        if access_log.handlers or access_log.filters or not access_log.propagate:
            return None
        return handler


_fast_access = _FastAccess()


def configure_logging(config: LoggingConfig) -> None:
    """Route every logger (ours and uvicorn's) to stdout in the configured format."""
    handler = configure_process_logging(config)
    _fast_access.handler = handler if config.format == "json" else None
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True


access_log = logging.getLogger(ACCESS_LOGGER)
error_log = logging.getLogger(ERROR_LOGGER)


def log_access(
    method: str,
    path: str,
    route: str,
    status: int,
    agent: str | None,
    duration_ms: float,
    request_id: str,
) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    handler = _fast_access.usable()
    if handler is not None:
        message = "HTTP %s %s %d agent_id=%s duration_ms=%.1f request_id=%s" % (  # noqa: UP031
            method,
            path,
            status,
            agent or "-",
            duration_ms,
            request_id,
        )
        line = _AccessLine(
            _fast_access.timestamp(time.time()),
            "INFO",
            message,
            ACCESS_LOGGER,
            request_id,
            method,
            path,
            route,
            status,
            agent,
            round(duration_ms, 3),
        )
        try:
            handler.add_line(_ENCODER.encode(line).decode() + "\n")
            return
        except msgspec.EncodeError:  # not UTF-8 (a lone surrogate): the general path
            pass
    access_log.info(
        "HTTP %s %s %d agent_id=%s duration_ms=%.1f request_id=%s",
        method,
        path,
        status,
        agent or "-",
        duration_ms,
        request_id,
        extra={
            "ctx": {
                "request_id": request_id,
                "method": method,
                "path": path,
                "route": route,
                "status": status,
                "agent_id": agent,
                "duration_ms": round(duration_ms, 3),
            }
        },
    )


def log_error(
    error_type: str,
    message: str,
    agent: str | None,
    request_id: str,
    *,
    status: int,
    code: str,
    exc_info: BaseException | None = None,
) -> None:
    level = logging.ERROR if status >= 500 else logging.WARNING
    if not error_log.isEnabledFor(level):
        return
    error_log.log(
        level,
        "Error: %s: %s agent_id=%s request_id=%s",
        error_type,
        message,
        agent or "-",
        request_id,
        exc_info=exc_info,
        extra={
            "ctx": {
                "request_id": request_id,
                "error_type": error_type,
                "code": code,
                "status": status,
                "agent_id": agent,
            }
        },
    )
