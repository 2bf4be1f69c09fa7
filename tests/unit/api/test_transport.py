"""CoalescingTransport: the writes of one loop iteration leave in one underlying write."""

from __future__ import annotations

import asyncio
from typing import Any

from stemedb.api.transport import CoalescingTransport


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.eof = False

    def write(self, data: Any) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def write_eof(self) -> None:
        self.eof = True

    def abort(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


async def _next_iteration() -> None:
    await asyncio.sleep(0)


def test_writes_of_one_iteration_are_sent_together_in_order() -> None:
    async def main() -> RecordingTransport:
        inner = RecordingTransport()
        outer = CoalescingTransport(inner, asyncio.get_running_loop())
        outer.write(b"HTTP/1.1 200 OK\r\n\r\n")
        outer.write(b"")
        outer.writelines([b"{", memoryview(b'"a":1}')])
        assert inner.writes == [] and outer.get_write_buffer_size() > 0
        await _next_iteration()
        outer.write(b"next")
        await _next_iteration()
        return inner

    inner = asyncio.run(main())
    assert inner.writes == [b'HTTP/1.1 200 OK\r\n\r\n{"a":1}', b"next"]


def test_close_and_write_eof_send_what_is_buffered_first() -> None:
    async def main() -> tuple[RecordingTransport, RecordingTransport]:
        loop = asyncio.get_running_loop()
        closed, eof = RecordingTransport(), RecordingTransport()
        first = CoalescingTransport(closed, loop)
        first.write(b"last words")
        first.close()
        second = CoalescingTransport(eof, loop)
        second.write(b"body")
        second.write_eof()
        await _next_iteration()
        return closed, eof

    closed, eof = asyncio.run(main())
    assert closed.writes == [b"last words"] and closed.closed
    assert eof.writes == [b"body"] and eof.eof


def test_abort_drops_what_is_buffered() -> None:
    async def main() -> RecordingTransport:
        inner = RecordingTransport()
        outer = CoalescingTransport(inner, asyncio.get_running_loop())
        outer.write(b"never sent")
        outer.abort()
        await _next_iteration()
        return inner

    inner = asyncio.run(main())
    assert inner.writes == [] and inner.closed
