"""The writer link's messages (``runtime.protocol``): every message decodes to what was
sent, as a frame of ``[tag, field, …]``, and one that names no message is refused."""

from __future__ import annotations

import socket
from typing import Any

import msgspec
import pytest

from stemedb.engine.submission import WriteResult
from stemedb.errors import ReadOnlyError, StorageError, ValidationError
from stemedb.runtime import protocol
from stemedb.store.protocol import StoreDelta

TO_WRITER: list[Any] = [
    protocol.Records(1, False, [(1, b"\x81\xa1a\x01")]),
    protocol.Submit(2, [(1, "ab" * 32, b"\x90")]),
    protocol.RemoveBefore(3, 42),
    protocol.Close(),
]
FROM_WRITER: list[Any] = [
    protocol.Ready(7, 3, 0.25, 9),
    protocol.Failed(protocol.error_to_wire(ReadOnlyError("the node is read-only"))),
    protocol.Applied(StoreDelta(8, {("s", "p")}, {"k": (0.5, 1.0)}, {"r": 8}, {"e": 8}), 2, 8),
    protocol.Done(1, [protocol.outcome_to_wire(WriteResult("ab" * 32, 8, "created"))]),
    protocol.WalFsync(0.001),
    protocol.WalAppend(2, 300),
    protocol.WalRotation(),
    protocol.WalFsyncError(),
    protocol.ReadOnly("fsync failed"),
    protocol.Removed(3, ["/tmp/wal/0000000000000001.wal"]),
]


@pytest.mark.parametrize("message", TO_WRITER + FROM_WRITER, ids=lambda m: type(m).__name__)
def test_a_message_is_its_tag_then_its_fields_and_decodes_to_itself(
    message: Any,
) -> None:
    raw = protocol.ENCODER.encode(message)
    assert msgspec.msgpack.decode(raw)[0] == message.__struct_config__.tag
    union = (
        protocol.ToWriter if type(message) in {type(m) for m in TO_WRITER} else protocol.FromWriter
    )
    assert msgspec.msgpack.Decoder(union).decode(raw) == message


def test_frames_cross_a_socket_pair_in_order_and_end_with_none() -> None:
    ours, theirs = socket.socketpair()
    sender: protocol.Channel[protocol.FromWriter] = protocol.Channel(ours, protocol.FromWriter)
    receiver: protocol.Channel[protocol.FromWriter] = protocol.Channel(theirs, protocol.FromWriter)
    for message in FROM_WRITER:
        sender.send(message)
    sender.shutdown()
    assert [receiver.receive() for _ in FROM_WRITER] == FROM_WRITER
    assert receiver.receive() is None
    sender.close()
    receiver.close()


def test_a_frame_that_names_no_message_is_refused() -> None:
    ours, theirs = socket.socketpair()
    receiver: protocol.Channel[protocol.ToWriter] = protocol.Channel(theirs, protocol.ToWriter)
    payload = protocol.ENCODER.encode(["applied", 1])  # a message of the other direction
    ours.sendall(len(payload).to_bytes(4, "big") + payload)
    with pytest.raises(msgspec.ValidationError):
        receiver.receive()
    ours.close()
    receiver.close()


def test_errors_and_outcomes_cross_with_their_class_and_fields() -> None:
    error = ValidationError("confidence", "range", "confidence must be within 0..1")
    back = protocol.outcome_from_wire(protocol.outcome_to_wire(error))
    assert isinstance(back, ValidationError)
    assert (back.field, back.rule, back.message, back.code, back.status, back.details) == (
        error.field,
        error.rule,
        error.message,
        error.code,
        error.status,
        error.details,
    )
    unexpected = protocol.error_from_wire(protocol.error_to_wire(KeyError("x")))
    assert isinstance(unexpected, StorageError) and unexpected.code == "writer_failed"
    result = WriteResult("cd" * 32, 5, "exists")
    assert protocol.outcome_from_wire(protocol.outcome_to_wire(result)) == result
