"""Logging of the server (API.md "Logs"): one JSON object per line on stdout.

Fields: ``timestamp``, ``level``, ``message``, ``logger``, ``request_id`` and any
context passed as ``extra={"ctx": {...}}``. The message itself carries the key facts
(``HTTP POST /v1/assert 201 agent_id=… duration_ms=… request_id=…``), so
``format = "text"`` prints the same message without the JSON wrapper.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Final

import msgspec

from stemedb.config import LoggingConfig

ACCESS_LOGGER: Final = "stemedb.access"
ERROR_LOGGER: Final = "stemedb.api"

_ENCODER: Final = msgspec.json.Encoder()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        ctx = getattr(record, "ctx", None)
        if isinstance(ctx, dict):
            out.update(ctx)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        try:
            return _ENCODER.encode(out).decode()
        except (TypeError, msgspec.EncodeError):
            return _ENCODER.encode({k: str(v) for k, v in out.items()}).decode()


TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(message)s"


def configure_logging(config: LoggingConfig) -> None:
    """Route every logger (ours and uvicorn's) to stdout in the configured format."""
    handler = logging.StreamHandler(sys.stdout)
    if config.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(config.level.upper())
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
    access_log.info(
        "HTTP %s %s %d agent_id=%s duration_ms=%.1f request_id=%s",
        method, path, status, agent or "-", duration_ms, request_id,
        extra={"ctx": {
            "request_id": request_id, "method": method, "path": path, "route": route,
            "status": status,
            "agent_id": agent, "duration_ms": round(duration_ms, 3),
        }},
    )  # fmt: skip


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
        error_type, message, agent or "-", request_id,
        exc_info=exc_info,
        extra={"ctx": {
            "request_id": request_id, "error_type": error_type, "code": code,
            "status": status, "agent_id": agent,
        }},
    )  # fmt: skip
