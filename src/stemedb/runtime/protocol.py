"""The link between the server's HTTP processes and the writer process (ADR 0002, 0003):
the messages both sides send, and their framing.

With ``[wal] writer_process = true`` (the server's default) the server starts
``python -m stemedb.runtime.writer_process``, which holds the data directory's lock,
opens and replays the WAL and the store, and runs the ``GroupCommitWriter``. The HTTP
processes (``api.workers``; ADR 0003) keep everything else: HTTP, verification of
batches, reads (SQLite readers of the same files) and their own store objects, whose
in-memory state each brings up to every applied batch from the ``StoreDelta`` the writer
sends to every link *before* the batch's outcomes. So the rules do not change: an
acknowledged write is durable, applied and visible to the next read, and the commit
listeners (view invalidation, feed) run before it.

Protocol: one socket pair per HTTP process, frames of a 4-byte big-endian length and a
msgpack array: one of the tagged structs below (``array_like``: the tag, then the fields
in order). Both ends always run the same version of this module (the server starts the
writer), so it is not a persistent format. Server → writer (``ToWriter``): ``Records``
(to verify and commit), ``Submit`` (already verified), ``RemoveBefore`` (archived WAL
segments; the first link only), ``Close``. Writer → server (``FromWriter``): ``Ready``
or ``Failed`` once, then ``Applied`` (a batch's delta, to every link), ``Done`` (a
submission's outcomes, to its link), the WAL observer's events (``WalFsync``,
``WalAppend``, ``WalRotation``, ``WalFsyncError``; the first link only: its process owns
the WAL metrics), ``ReadOnly`` (every link), ``Removed``. EOF on the first link, or
``Close`` on it, ends the writer: it finishes what is queued and exits; EOF or ``Close``
on another link ends only that link. EOF at the server fails what is pending and turns
the node read-only.

With several HTTP processes a read served by one of them must see a write another one
acknowledged. The writer stores each applied LSN in an 8-byte file shared by mmap
(``sys.shared.SharedInt``) after sending the batch's delta and before any of its
outcomes; a process that sees a larger LSN there than it has absorbed waits for that
delta (``WriterProcess.catch_up``) before it reads.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from pathlib import Path
from typing import Any, BinaryIO, Final, Generic, Literal, TypeVar

import msgspec

from stemedb.engine.settings import EngineSettings
from stemedb.engine.submission import WriteResult
from stemedb.engine.writer import GroupOutcome
from stemedb.errors import StemeError, StorageError, ValidationError
from stemedb.model.kinds import TYPE_OF_KIND
from stemedb.store.protocol import StoreDelta

HEADER: Final = struct.Struct(">I")
ENCODER: Final = msgspec.msgpack.Encoder()
RECORD_DECODERS: Final[dict[int, msgspec.msgpack.Decoder[Any]]] = {
    int(kind): msgspec.msgpack.Decoder(cls) for kind, cls in TYPE_OF_KIND.items()
}
STARTUP_TIMEOUT_SECONDS: Final = 600.0  # replaying a large WAL takes a while
CLOSE_TIMEOUT_SECONDS: Final = 60.0


class WriterSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The writer process's command line (JSON): the engine's settings and its own."""

    data_dir: str
    engine: EngineSettings
    log_level: str = "info"
    log_format: str = "json"
    applied_lsn_file: str = ""  # several HTTP processes: a ``SharedInt``

    @property
    def wal_dir(self) -> Path:
        return self.engine.wal_path(Path(self.data_dir))


class Message(msgspec.Struct, array_like=True, tag=True):
    """A frame's content: ``[tag, field, …]`` (the tag is the class name, snake_case)."""


# -- server → writer -----------------------------------------------------------------


class Records(Message, tag="records"):
    """Verify these records in the writer process, then commit them."""

    token: int
    together: bool
    items: list[tuple[int, bytes]]  # (record kind, msgpack record)


class Submit(Message, tag="submit"):
    """Commit these records, already verified by the server."""

    token: int
    items: list[tuple[int, str, bytes]]  # (record kind, content id, msgpack record)


class RemoveBefore(Message, tag="remove_before"):
    """Remove the WAL segments (archived) whose records all precede ``lsn``."""

    token: int
    lsn: int


class Close(Message, tag="close"):
    """Finish what is queued, then end this link (the first link: the writer)."""


ToWriter = Records | Submit | RemoveBefore | Close


# -- writer → server -----------------------------------------------------------------


class WireError(msgspec.Struct, omit_defaults=True):
    """A ``StemeError`` across the process boundary (``error_from_wire`` rebuilds it)."""

    cls: str
    message: str
    code: str
    status: int
    details: dict[str, Any]
    retryable: bool
    field: str | None = None  # ``ValidationError`` only
    rule: str | None = None


class Ready(Message, tag="ready"):
    applied_lsn: int
    replayed: int
    open_seconds: float
    wal_last_lsn: int


class Failed(Message, tag="failed"):
    """The writer process could not open the data directory; it exits."""

    error: WireError


class Applied(Message, tag="applied"):
    """A batch was applied: to every link, before the batch's outcomes."""

    delta: StoreDelta
    size: int  # records in the batch (for the batch-size statistics)
    wal_last_lsn: int


class Ok(Message, tag="ok"):
    id: str
    lsn: int
    status: Literal["created", "exists"]


class Err(Message, tag="err"):
    error: WireError


class Done(Message, tag="done"):
    """A submission's outcomes, one per record in order."""

    token: int
    outcomes: list[Ok | Err]


class WalFsync(Message, tag="wal_fsync"):
    duration_seconds: float


class WalAppend(Message, tag="wal_append"):
    records: int
    bytes: int


class WalRotation(Message, tag="wal_rotation"):
    pass


class WalFsyncError(Message, tag="wal_fsync_error"):
    pass


class ReadOnly(Message, tag="read_only"):
    reason: str


class Removed(Message, tag="removed"):
    token: int
    paths: list[str]


FromWriter = (
    Ready
    | Failed
    | Applied
    | Done
    | WalFsync
    | WalAppend
    | WalRotation
    | WalFsyncError
    | ReadOnly
    | Removed
)

# -- frames ---------------------------------------------------------------------------

In = TypeVar("In")


class Channel(Generic[In]):
    """Length-prefixed msgpack frames over a stream socket: ``send`` one message (from
    any thread), ``receive`` the next one of the type ``Channel`` was made for."""

    def __init__(self, sock: socket.socket, receives: Any) -> None:  # ``type[In]``, a union
        self._sock = sock
        self._reader: BinaryIO = sock.makefile("rb")
        self._send_lock = threading.Lock()
        self._decoder: msgspec.msgpack.Decoder[In] = msgspec.msgpack.Decoder(receives)
        self.open = True  # until ``shutdown``

    def send(self, message: Message) -> None:
        payload = ENCODER.encode(message)
        with self._send_lock:
            self._sock.sendall(HEADER.pack(len(payload)) + payload)

    def receive(self) -> In | None:
        """The next message, or None at end of stream (a frame that does not decode
        raises ``msgspec.DecodeError``)."""
        header = self._reader.read(HEADER.size)
        if len(header) < HEADER.size:
            return None
        (size,) = HEADER.unpack(header)
        payload = self._reader.read(size)
        if len(payload) < size:
            return None
        return self._decoder.decode(payload)

    def shutdown(self) -> None:
        """End the stream both ways; the socket stays open (no file number reused)."""
        self.open = False
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


def error_to_wire(exc: BaseException) -> WireError:
    if not isinstance(exc, StemeError):
        exc = StorageError(f"{type(exc).__name__}: {exc}", code="writer_failed")
    wire = WireError(
        type(exc).__name__, exc.message, exc.code, exc.status, exc.details, exc.retryable
    )
    if isinstance(exc, ValidationError):
        wire.field, wire.rule = exc.field, exc.rule
    return wire


def error_from_wire(wire: WireError) -> StemeError:
    cls = _ERROR_CLASSES.get(wire.cls, StorageError)
    error = cls.__new__(cls)
    StemeError.__init__(
        error,
        wire.message,
        code=wire.code,
        status=wire.status,
        details=dict(wire.details),
        retryable=wire.retryable,
    )
    if isinstance(error, ValidationError):
        error.field, error.rule = wire.field or "", wire.rule or ""
    return error


def outcome_to_wire(outcome: GroupOutcome) -> Ok | Err:
    if isinstance(outcome, WriteResult):
        return Ok(outcome.id, outcome.lsn, outcome.status)
    return Err(error_to_wire(outcome))


def outcome_from_wire(wire: Ok | Err) -> GroupOutcome:
    if isinstance(wire, Ok):
        return WriteResult(wire.id, wire.lsn, wire.status)
    return error_from_wire(wire.error)
