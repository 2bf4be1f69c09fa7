"""The link between the server's HTTP processes and the writer process (ADR 0002, 0003):
the messages both sides send, and their framing.

With ``[wal] writer_process = true`` (the server's default) the engine starts
``python -m stemedb.runtime.writer_process``, which holds the data directory's lock, opens and
replays the WAL and the store, and runs the ``GroupCommitWriter``. The HTTP processes
(``api.workers``; ADR 0003) keep everything else: HTTP, verification of batches, reads
(SQLite readers of the same files) and their own store objects, whose in-memory state
each brings up to every applied batch from the ``StoreDelta`` the writer sends to every
link *before* the batch's outcomes. So the rules do not change: an acknowledged write is
durable, applied and visible to the next read, and the commit listeners (view
invalidation, feed) run before it.

Protocol: one socket pair per HTTP process, frames of a 4-byte big-endian length and a
msgpack array whose first item names the message. Server → writer: ``records`` (a token,
``together`` and ``[kind, msgpack record]`` items to verify and commit), ``submit`` (a
token and ``[kind, id, msgpack record]`` items already verified), ``remove_before``
(archived WAL segments; the first link only), ``close``. Writer → server: ``ready`` /
``failed`` once, then ``applied`` (a batch's delta, to every link), ``done`` (a
submission's outcomes, to its link), ``wal`` (observer events, the first link only: its
process owns the WAL metrics), ``read_only`` (every link), ``removed``. EOF on the first
link, or ``close`` on it, ends the writer: it finishes what is queued and exits; EOF or
``close`` on another link ends only that link. EOF at the server fails what is pending
and turns the node read-only.

With several HTTP processes a read served by one of them must see a write another one
acknowledged. The writer stores each applied LSN in an 8-byte file shared by mmap
(``sys.shared.SharedInt``) after sending the batch's delta and before any of its outcomes; a
process that sees a larger LSN there than it has absorbed waits for that delta
(``CommitNotices.wait_for``) before it reads.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

import msgspec

from stemedb.engine.submission import WriteResult
from stemedb.engine.writer import GroupOutcome
from stemedb.errors import StemeError, StorageError, ValidationError
from stemedb.model.kinds import TYPE_OF_KIND

HEADER: Final = struct.Struct(">I")
ENCODER: Final = msgspec.msgpack.Encoder()
RECORD_DECODERS: Final[dict[int, msgspec.msgpack.Decoder[Any]]] = {
    int(kind): msgspec.msgpack.Decoder(cls) for kind, cls in TYPE_OF_KIND.items()
}
STARTUP_TIMEOUT_SECONDS: Final = 600.0  # replaying a large WAL takes a while
CLOSE_TIMEOUT_SECONDS: Final = 60.0


@dataclass(frozen=True)
class WriterSettings:
    data_dir: str
    wal_dir: str
    segment_size_bytes: int
    group_commit_max_batch: int
    group_commit_max_delay_us: int
    fsync: bool
    cache_bytes: int
    busy_timeout_ms: int
    max_skew_seconds: int = 300
    verify_threads: int = 2
    log_level: str = "info"
    log_format: str = "json"
    applied_lsn_file: str = ""  # several HTTP processes: a ``SharedInt``


# -- frames ---------------------------------------------------------------------------


class Channel:
    """Length-prefixed msgpack frames over a stream socket; ``send`` from any thread."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._reader: BinaryIO = sock.makefile("rb")
        self._send_lock = threading.Lock()

    def send(self, message: Sequence[Any]) -> None:
        payload = ENCODER.encode(message)
        with self._send_lock:
            self._sock.sendall(HEADER.pack(len(payload)) + payload)

    def receive(self) -> list[Any] | None:
        """The next message, or None at end of stream."""
        header = self._reader.read(HEADER.size)
        if len(header) < HEADER.size:
            return None
        (size,) = HEADER.unpack(header)
        payload = self._reader.read(size)
        if len(payload) < size:
            return None
        message: list[Any] = msgspec.msgpack.decode(payload)
        return message

    def shutdown(self) -> None:
        """End the stream both ways; the socket stays open (no file number reused)."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._reader.close()
        self._sock.close()


# -- errors and outcomes across the process boundary -----------------------------------


def _error_classes() -> dict[str, type[StemeError]]:
    found: dict[str, type[StemeError]] = {}
    pending: list[type[StemeError]] = [StemeError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


_ERROR_CLASSES: Final = _error_classes()


def error_to_wire(exc: BaseException) -> dict[str, Any]:
    if not isinstance(exc, StemeError):
        exc = StorageError(f"{type(exc).__name__}: {exc}", code="writer_failed")
    wire: dict[str, Any] = {
        "class": type(exc).__name__, "message": exc.message, "code": exc.code,
        "status": exc.status, "details": exc.details, "retryable": exc.retryable,
    }  # fmt: skip
    if isinstance(exc, ValidationError):
        wire["field"], wire["rule"] = exc.field, exc.rule
    return wire


def error_from_wire(wire: dict[str, Any]) -> StemeError:
    cls = _ERROR_CLASSES.get(str(wire.get("class")), StorageError)
    error = cls.__new__(cls)
    StemeError.__init__(
        error, str(wire["message"]), code=wire["code"], status=wire["status"],
        details=dict(wire["details"]), retryable=wire["retryable"],
    )  # fmt: skip
    if isinstance(error, ValidationError):
        error.field, error.rule = wire.get("field", ""), wire.get("rule", "")
    return error


def outcome_to_wire(outcome: GroupOutcome) -> list[Any]:
    if isinstance(outcome, WriteResult):
        return ["ok", outcome.id, outcome.lsn, outcome.status]
    return ["err", error_to_wire(outcome)]


def outcome_from_wire(wire: list[Any]) -> GroupOutcome:
    if wire[0] == "ok":
        return WriteResult(wire[1], wire[2], wire[3])
    return error_from_wire(wire[1])
