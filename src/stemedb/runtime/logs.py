"""The log handler every process of a node installs (API.md "Logs"): one JSON object per
line on stdout, or the same message as text.

Fields: ``timestamp``, ``level``, ``message``, ``logger`` and any context passed as
``extra={"ctx": {...}}``. The HTTP processes add their access-line fast path on top
(``api.observability.logs``); the writer process (``runtime.writer_process``) uses this
alone, so its lines look like the server's.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any, Final

import msgspec

from stemedb.config import LoggingConfig

ATOMIC_WRITE: Final = 4096  # PIPE_BUF on Linux, in bytes; JSON lines are mostly ASCII
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(message)s"

_ENCODER: Final = msgspec.json.Encoder()
# Control characters (and the Unicode line separators) as escapes: a text line is one
# line whatever a logged field holds (a percent-decoded %0A in a path cannot forge one).
_ESCAPES: Final = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in (*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029)
}


class TextFormatter(logging.Formatter):
    """``format = "text"``: the message with control characters escaped (a traceback,
    multi-line by nature, follows on its own lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = record.message.translate(_ESCAPES)
        return super().formatMessage(record)


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
        except Exception:  # noqa: BLE001 - logging.Handler's contract: handleError
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
        except Exception:  # noqa: BLE001 - like StreamHandler: a broken stdout must not fail requests
            pass

    def _write(self, data: str) -> None:
        self.stream.write(data)
        self.stream.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_out()
        super().flush()


def configure_process_logging(config: LoggingConfig) -> LoopBatchedHandler:
    """Route every logger of this process to stdout in the configured format; the
    handler, the root logger's only one."""
    handler = LoopBatchedHandler(sys.stdout)
    if config.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter(TEXT_FORMAT))
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
    return handler
