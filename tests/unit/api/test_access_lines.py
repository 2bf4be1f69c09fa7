"""Access lines: the fast path (straight to the handler) writes exactly the line the
``logging`` path writes, and steps aside when another handler listens."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator

import msgspec
import pytest

from stemedb.api.observability import logs
from stemedb.config import LoggingConfig
from stemedb.runtime import logs as process_logs

CASES = [
    ("GET", "/v1/query", "/v1/query", 200, None, 0.1234, "a" * 32),
    ("POST", "/v1/assert", "/v1/assert", 201, "b" * 64, 12.3456789, "rid-1"),
    ("GET", '/v1/x?q="ü\\n', "<unmatched>", 404, "-", 0.0, 'r"id'),
]


@pytest.fixture
def json_logging() -> Iterator[io.StringIO]:
    """The server's JSON logging, into a buffer."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    logs.configure_logging(LoggingConfig(level="info", format="json"))
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logs.LoopBatchedHandler)
    handler.setStream(stream)
    yield stream
    root.handlers[:] = saved
    root.setLevel(level)
    logs._fast_access.handler = None


def ours_alone() -> None:
    """Set aside pytest's capture handlers (added for each test's call)."""
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if isinstance(h, logs.LoopBatchedHandler)]


def one_line(stream: io.StringIO) -> str:
    text = stream.getvalue()
    stream.seek(0)
    stream.truncate()
    assert text.count("\n") == 1, text
    return text


@pytest.mark.parametrize("case", CASES)
def test_the_fast_access_line_is_the_logging_line(
    json_logging: io.StringIO, monkeypatch: pytest.MonkeyPatch, case: tuple
) -> None:
    now = 1_796_000_000.0 + 0.0427
    monkeypatch.setattr(time, "time", lambda: now)
    ours_alone()
    assert logs._fast_access.usable() is not None
    logs.log_access(*case)
    fast = one_line(json_logging)
    handler = logs._fast_access.handler
    logs._fast_access.handler = None  # the general path: a LogRecord and the formatter
    logs.log_access(*case)
    logs._fast_access.handler = handler
    assert fast == one_line(json_logging)
    assert msgspec.json.decode(fast)["timestamp"].endswith(".042Z")


def test_another_handler_turns_the_fast_path_off(json_logging: io.StringIO) -> None:
    ours_alone()
    extra = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(extra)
    try:
        assert logs._fast_access.usable() is None
        logs.log_access(*CASES[0])
        assert "HTTP GET /v1/query 200" in extra.stream.getvalue()
    finally:
        logging.getLogger().removeHandler(extra)
    assert logs._fast_access.usable() is not None


class Writes(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, s: str) -> int:
        self.writes.append(s)
        return super().write(s)


def test_buffered_lines_go_out_whole_in_writes_no_larger_than_pipe_buf() -> None:
    """The node's processes share stdout: a write of whole lines of at most PIPE_BUF
    bytes is never interleaved with another process's."""
    stream = Writes()
    handler = process_logs.LoopBatchedHandler(stream)
    lines = [f"{i:05d} " + "x" * (50 + i % 300) + "\n" for i in range(200)] + ["y" * 9000 + "\n"]
    for line in lines:
        handler._lines.append(line)
    handler.flush()
    assert "".join(stream.writes) == "".join(lines)
    assert all(w.endswith("\n") for w in stream.writes)
    assert all(len(w) <= process_logs.ATOMIC_WRITE for w in stream.writes[:-1])
    assert stream.writes[-1] == lines[-1]  # longer than that: alone
    assert len(stream.writes) < len(lines) / 5  # still batched
