"""The writer link's messages (``runtime.protocol``): every message decodes to what was
sent, as a frame of ``[tag, field, …]``, and one that names no message is refused."""

from __future__ import annotations

import socket
from typing import Any

import msgspec
import pytest

from stemedb.engine.submission import WriteResult
from stemedb.errors import ReadOnlyError, StorageError, ValidationError
from stemedb.runtime.protocol import (
    ENCODER,
    Applied,
    Channel,
    Close,
    Done,
    Failed,
    FromWriter,
    ReadOnly,
    Ready,
    Records,
    RemoveBefore,
    Removed,
    Submit,
    ToWriter,
    WalAppend,
    WalFsync,
    WalFsyncError,
    WalRotation,
    error_from_wire,
    error_to_wire,
    outcome_from_wire,
    outcome_to_wire,
)
from stemedb.store.apply import StoreDelta

TO_WRITER: list[Any] = [
    Records(1, False, [(1, b"\x81\xa1a\x01")]),
    Submit(2, [(1, "ab" * 32, b"\x90")]),
    RemoveBefore(3, 42),
    Close(),
]
FROM_WRITER: list[Any] = [
    Ready(7, 3, 0.25, 9),
    Failed(error_to_wire(ReadOnlyError("the node is read-only"))),
    Applied(StoreDelta(8, {("s", "p")}, {"k": (0.5, 1.0)}, {"r": 8}, {"e": 8}), 2, 8),
    Done(1, [outcome_to_wire(WriteResult("ab" * 32, 8, "created"))]),
    WalFsync(0.001),
    WalAppend(2, 300),
    WalRotation(),
    WalFsyncError(),
    ReadOnly("fsync failed"),
    Removed(3, ["/tmp/wal/0000000000000001.wal"]),
]


@pytest.mark.parametrize("message", TO_WRITER + FROM_WRITER, ids=lambda m: type(m).__name__)
def test_a_message_is_its_tag_then_its_fields_and_decodes_to_itself(message: Any) -> None:
    raw = ENCODER.encode(message)
    assert msgspec.msgpack.decode(raw)[0] == message.__struct_config__.tag
    union = ToWriter if type(message) in {type(m) for m in TO_WRITER} else FromWriter
    assert msgspec.msgpack.Decoder(union).decode(raw) == message


def test_frames_cross_a_socket_pair_in_order_and_end_with_none() -> None:
    ours, theirs = socket.socketpair()
    sender: Channel[FromWriter] = Channel(ours, FromWriter)
    receiver: Channel[FromWriter] = Channel(theirs, FromWriter)
    for message in FROM_WRITER:
        sender.send(message)
    sender.shutdown()
    assert [receiver.receive() for _ in FROM_WRITER] == FROM_WRITER
    assert receiver.receive() is None
    sender.close()
    receiver.close()


def test_a_frame_that_names_no_message_is_refused() -> None:
    ours, theirs = socket.socketpair()
    receiver: Channel[ToWriter] = Channel(theirs, ToWriter)
    payload = ENCODER.encode(["applied", 1])  # a message of the other direction
    ours.sendall(len(payload).to_bytes(4, "big") + payload)
    with pytest.raises(msgspec.ValidationError):
        receiver.receive()
    ours.close()
    receiver.close()


def test_errors_and_outcomes_cross_with_their_class_and_fields() -> None:
    error = ValidationError("confidence", "range", "confidence must be within 0..1")
    back = outcome_from_wire(outcome_to_wire(error))
    assert isinstance(back, ValidationError)
    assert (back.field, back.rule, back.message, back.code, back.status, back.details) == (
        error.field, error.rule, error.message, error.code, error.status, error.details,
    )  # fmt: skip
    unexpected = error_from_wire(error_to_wire(KeyError("x")))
    assert isinstance(unexpected, StorageError) and unexpected.code == "writer_failed"
    result = WriteResult("cd" * 32, 5, "exists")
    assert outcome_from_wire(outcome_to_wire(result)) == result
