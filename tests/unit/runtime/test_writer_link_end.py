"""The HTTP process's end of a writer link that ends (``runtime.writer_client``): a write
racing the writer's death is refused with a retryable 503 code, never an internal error.

The link is a real socket pair; the writer's end sends its ``ready`` and is then closed,
as the kernel does when the writer process is killed. The interleavings that CI met
under load (the link ends while a write is being sent) are forced by running
``_on_exit`` at that point."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from stemedb.errors import StorageError
from stemedb.model.signing import AgentKey, sign_assertion
from stemedb.runtime.protocol import Channel, Ready, ToWriter
from stemedb.runtime.writer_client import WriterProcess

KEY = AgentKey.generate()


@pytest.fixture
def link(tmp_path: Path) -> Iterator[tuple[WriterProcess, socket.socket]]:
    ours, theirs = socket.socketpair()
    Channel(theirs, ToWriter).send(Ready(0, 0, 0.0, 0))
    writer = WriterProcess(ours, None, tmp_path, observer=None, applied_lsn=None, spare_links=[])
    writer.awaits_handoff = True  # as a worker > 0: worker 0 respawns the writer
    yield writer, theirs
    theirs.close()
    writer.close()


def _refusal(future: object) -> StorageError:
    with pytest.raises(StorageError) as caught:
        future.result(timeout=5)  # type: ignore[attr-defined]
    return caught.value


def test_a_write_sent_as_the_link_ends_fails_retryably_once(
    link: tuple[WriterProcess, socket.socket],
) -> None:
    writer, theirs = link
    theirs.close()
    channel = writer._channel
    real_send = channel.send

    def send_after_the_link_ended(message: ToWriter) -> None:
        writer._on_exit()  # the receiver thread saw the end first and failed the waiter
        real_send(message)  # EPIPE: the peer is gone

    channel.send = send_after_the_link_ended  # type: ignore[method-assign,assignment]
    error = _refusal(_submit_one(writer))
    assert error.code == "writer_failed" and error.retryable and error.status == 503


def test_writes_after_the_link_ended_are_refused_as_restarting(
    link: tuple[WriterProcess, socket.socket],
) -> None:
    writer, _ = link
    writer._on_exit()
    error = _refusal(_submit_one(writer))
    assert error.code == "writer_restarting" and error.retryable and error.status == 503
    assert writer.wal.restarting_reason is not None


def _submit_one(writer: WriterProcess) -> object:
    record = sign_assertion(KEY, subject="s", predicate="p", object="o", confidence=0.8)
    future = writer.submit_records([record], together=False)
    assert future is not None
    return future
