"""CoalescingTransport: the writes of one loop iteration leave in one underlying write."""

from __future__ import annotations

import asyncio
from typing import Any

from stemedb.api.http.transport import CoalescingTransport


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


# -- LeanCycle: the same response heads as uvicorn's cycle --------------------------------


def _cycle(cls: type[Any], method: str = "GET", keep_alive: bool = True) -> tuple[Any, Any]:
    import logging

    from uvicorn.protocols.http.flow_control import FlowControl

    transport = RecordingTransport()
    cycle = cls(
        scope={"method": method, "type": "http"},
        transport=transport,
        flow=FlowControl(transport),
        logger=logging.getLogger("test"),
        access_logger=logging.getLogger("test.access"),
        access_log=False,
        default_headers=[(b"server", b"uvicorn")],
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=keep_alive,
        on_response=lambda: None,
    )
    return cycle, transport


HEADS: list[tuple[str, bool, int, list[tuple[bytes, bytes]]]] = [
    ("GET", True, 200, [(b"content-length", b"2"), (b"content-type", b"application/json")]),
    ("GET", True, 201, [(b"Content-Length", b"2"), (b"X-Quota-Remaining", b"5")]),
    ("GET", True, 200, []),  # no length: chunked
    ("HEAD", True, 200, []),
    ("GET", True, 204, []),
    ("GET", False, 200, [(b"content-length", b"0")]),  # connection: close added
    ("GET", True, 200, [(b"connection", b"Keep-Alive, Close"), (b"content-length", b"0")]),
    ("GET", True, 200, [(b"transfer-encoding", b"Chunked")]),
]


def test_lean_cycle_writes_the_same_heads_as_uvicorn() -> None:
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

    from stemedb.api.http.uvicorn_patch import LeanCycle

    async def head(
        cls: type[Any],
        method: str,
        keep_alive: bool,
        status: int,
        headers: list[tuple[bytes, bytes]],
    ) -> tuple[list[bytes], Any]:
        cycle, transport = _cycle(cls, method, keep_alive)
        await cycle.send({"type": "http.response.start", "status": status, "headers": headers})
        state = (cycle.keep_alive, cycle.chunked_encoding, cycle.expected_content_length)
        return transport.writes, state

    for case in HEADS:
        assert asyncio.run(head(LeanCycle, *case)) == asyncio.run(
            head(RequestResponseCycle, *case)
        ), case


def test_lean_cycle_refuses_what_uvicorn_refuses() -> None:
    from stemedb.api.http.uvicorn_patch import LeanCycle

    async def start(headers: list[tuple[bytes, bytes]]) -> None:
        cycle, _ = _cycle(LeanCycle)
        await cycle.send({"type": "http.response.start", "status": 200, "headers": headers})

    good = (b"content-length", b"0")
    for bad, message in [
        ((b"x-bad name", b"v"), "name"),
        ((b"x-ok", b"split\r\nx-injected: 1"), "value"),
        ((b"x-ok", b"nul\x00"), "value"),
    ]:
        try:
            asyncio.run(start([good, bad]))
        except RuntimeError as exc:
            assert message in str(exc)
        else:
            raise AssertionError(f"{bad!r} was accepted")
