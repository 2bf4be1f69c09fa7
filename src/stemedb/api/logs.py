"""Logging of the server (API.md "Logs"): one JSON object per line on stdout.

Fields: ``timestamp``, ``level``, ``message``, ``logger``, ``request_id`` and any
context passed as ``extra={"ctx": {...}}``. The message itself carries the key facts
(``HTTP POST /v1/assert 201 agent_id=… duration_ms=… request_id=…``), so
``format = "text"`` prints the same message without the JSON wrapper.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any, Final

import msgspec

from stemedb.config import LoggingConfig

ACCESS_LOGGER: Final = "stemedb.access"
ERROR_LOGGER: Final = "stemedb.api"
ATOMIC_WRITE: Final = 4096  # PIPE_BUF on Linux, in bytes; JSON lines are mostly ASCII

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


class LoopBatchedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes the lines logged during one event-loop iteration with one write + flush.

    On the loop thread, a line is buffered and a flush is scheduled with ``call_soon``
    (it runs after the callbacks already queued: the access lines of every request
    answered in this iteration go out together). Under light load that is one line per
    write, as before; under load it saves a syscall, and the GIL hand-over it costs, per
    request. ERROR lines and lines from other threads are written at once, after what
    is buffered, so the order is kept.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._lines: list[str] = []
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self.add_line(line, urgent=record.levelno >= logging.ERROR)

    def add_line(self, line: str, *, urgent: bool = False) -> None:
        """Buffer a formatted line (ending in a newline) for this loop iteration."""
        self._lines.append(line)
        loop = asyncio._get_running_loop()
        if loop is None or urgent:
            self._write_out()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._scheduled = False
            self._write_out()

    def _write_out(self) -> None:
        """Write what is buffered, whole lines at a time and at most ``ATOMIC_WRITE``
        characters a write (one line longer than that goes alone): the node's processes
        (HTTP workers, the writer) share stdout, and a write of up to ``PIPE_BUF`` bytes
        to a pipe, or any write to a file opened for appending, is not interleaved."""
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        try:
            start, size = 0, 0
            for end, line in enumerate(lines):
                if size and size + len(line) > ATOMIC_WRITE:
                    self._write("".join(lines[start:end]))
                    start, size = end, 0
                size += len(line)
            self._write("".join(lines[start:]))
        except Exception:  # like StreamHandler: a broken stdout must not fail requests
            pass

    def _write(self, data: str) -> None:
        self.stream.write(data)
        self.stream.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_out()
        super().flush()


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
    handler = LoopBatchedHandler(sys.stdout)
    if config.format == "json":
        handler.setFormatter(JsonFormatter())
        _fast_access.handler = handler
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
        _fast_access.handler = None
    # Our formats use no caller, thread or process fields: skip computing them for every
    # record (the logging docs' "Optimization" section).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
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
    handler = _fast_access.usable()
    if handler is not None:
        message = "HTTP %s %s %d agent_id=%s duration_ms=%.1f request_id=%s" % (  # noqa: UP031
            method, path, status, agent or "-", duration_ms, request_id,
        )  # fmt: skip
        line = _AccessLine(
            _fast_access.timestamp(time.time()), "INFO", message, ACCESS_LOGGER, request_id,
            method, path, route, status, agent, round(duration_ms, 3),
        )  # fmt: skip
        try:
            handler.add_line(_ENCODER.encode(line).decode() + "\n")
            return
        except msgspec.EncodeError:  # not UTF-8 (a lone surrogate): the general path
            pass
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
