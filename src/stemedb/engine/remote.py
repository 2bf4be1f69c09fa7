"""The writer process: the WAL, group commit and store writes in a process of their own.

The server's event loop, its verify threads and the group-commit writer used to share
one GIL; a commit's Python work and every re-acquisition of the GIL after an fsync or
SQLite call waited behind request handling (docs/design/adr-0002-writer-process.md).
With ``[wal] writer_process = true`` (the server's default) the engine starts
``python -m stemedb.engine.writer_main``, which holds the data directory's lock, opens and
replays the WAL and the store, and runs the same ``GroupCommitWriter``. The server
process keeps everything else: HTTP, verification, reads (SQLite readers of the same
files) and its own store object, whose in-memory state it brings up to each applied
batch from the ``StoreDelta`` the writer process sends *before* the batch's outcomes.
So the rules do not change: an acknowledged write is durable, applied and visible to
the next read, and the commit listeners (view invalidation, feed) run before it.

Protocol: a socket pair, frames of a 4-byte big-endian length and a msgpack array whose
first item names the message. Server → writer: ``submit`` (a token and
``[kind, id, msgpack record]`` items), ``remove_before`` (archived WAL segments),
``close``. Writer → server: ``ready`` / ``failed`` once, then ``applied`` (a batch's
delta), ``done`` (a submission's outcomes), ``wal`` (observer events), ``read_only``,
``removed``. EOF on either side ends the other: the writer finishes what is queued and
exits; the server fails what is pending and turns read-only.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

import msgspec

from stemedb.engine.replay import open_and_replay
from stemedb.engine.submission import Prepared, WriteResult
from stemedb.engine.verify import Verifier, settle
from stemedb.engine.writer import BatchStats, CommitNotices, GroupCommitWriter, GroupOutcome
from stemedb.errors import ReadOnlyError, StemeError, StorageError, ValidationError
from stemedb.model.kinds import KIND_OF_TYPE, TYPE_OF_KIND, AnyRecord, RecordKind
from stemedb.store.apply import StoreDelta
from stemedb.store.sqlite import SqliteStore
from stemedb.sys.clock import SystemClock
from stemedb.wal import Wal, WalObserver
from stemedb.wal.format import parse_segment_name
from stemedb.wal.log import SegmentInfo

log = logging.getLogger("stemedb.engine")

_HEADER: Final = struct.Struct(">I")
_ENCODER: Final = msgspec.msgpack.Encoder()
_RECORD_DECODERS: Final[dict[int, msgspec.msgpack.Decoder[Any]]] = {
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


# -- frames ---------------------------------------------------------------------------


class _Channel:
    """Length-prefixed msgpack frames over a stream socket; ``send`` from any thread."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._reader: BinaryIO = sock.makefile("rb")
        self._send_lock = threading.Lock()

    def send(self, message: Sequence[Any]) -> None:
        payload = _ENCODER.encode(message)
        with self._send_lock:
            self._sock.sendall(_HEADER.pack(len(payload)) + payload)

    def receive(self) -> list[Any] | None:
        """The next message, or None at end of stream."""
        header = self._reader.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack(header)
        payload = self._reader.read(size)
        if len(payload) < size:
            return None
        message: list[Any] = msgspec.msgpack.decode(payload)
        return message

    def close(self) -> None:
        self._reader.close()
        self._sock.close()


# -- errors across the process boundary -------------------------------------------------


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


def _outcome_to_wire(outcome: GroupOutcome) -> list[Any]:
    if isinstance(outcome, WriteResult):
        return ["ok", outcome.id, outcome.lsn, outcome.status]
    return ["err", error_to_wire(outcome)]


def _outcome_from_wire(wire: list[Any]) -> GroupOutcome:
    if wire[0] == "ok":
        return WriteResult(wire[1], wire[2], wire[3])
    return error_from_wire(wire[1])


# -- the server side ------------------------------------------------------------------


class RemoteWal:
    """What the server process may ask of the WAL the writer process owns: its state
    (from the writer's messages) and its files (read from the directory)."""

    def __init__(self, process: WriterProcess, directory: Path, last_lsn: int) -> None:
        self._process = process
        self._directory = directory
        self.last_lsn = last_lsn
        self.read_only_reason: str | None = None

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def segments(self) -> list[SegmentInfo]:
        """The segment files in LSN order (the last one is the open one)."""
        found = sorted(
            (first, self._directory / name)
            for name in os.listdir(self._directory)
            if (first := parse_segment_name(name)) is not None
        )
        out: list[SegmentInfo] = []
        for index, (first, path) in enumerate(found):
            sealed = index + 1 < len(found)
            last = found[index + 1][0] - 1 if sealed else self.last_lsn
            try:
                size = path.stat().st_size
            except FileNotFoundError:  # removed after archiving while we listed
                continue
            out.append(SegmentInfo(first, last, path, size, sealed))
        return out

    def disk_usage_bytes(self) -> int:
        return sum(s.size_bytes for s in self.segments())

    def remove_segments_before(self, lsn: int) -> list[Path]:
        return self._process.remove_segments_before(lsn)


class WriterProcess(CommitNotices):
    """The server side of the writer process; stands in for ``GroupCommitWriter``."""

    def __init__(self, settings: WriterSettings, *, observer: WalObserver | None = None) -> None:
        ours, theirs = socket.socketpair()
        self._observer = observer
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "stemedb.engine.writer_main", str(theirs.fileno()),
             msgspec.json.encode(settings).decode()],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
        )  # fmt: skip
        theirs.close()
        ours.settimeout(STARTUP_TIMEOUT_SECONDS)  # for the "ready" message only
        self._channel = _Channel(ours)
        self._pending: dict[int, Future[Any]] = {}  # a token's ``done`` answer
        self._removals: dict[int, Future[list[Path]]] = {}
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()
        self._store: SqliteStore | None = None
        self._running = True
        self._closed = False
        self.stats = BatchStats()
        try:
            ready = self._channel.receive()
        except OSError:  # no answer in STARTUP_TIMEOUT_SECONDS
            ready = None
        if ready is None or ready[0] != "ready":
            self._reap()
            if ready is not None and ready[0] == "failed":
                raise error_from_wire(ready[1])
            raise StorageError(
                f"the writer process did not start (exit code {self._proc.returncode})",
                code="writer_failed",
                retryable=False,
            )
        ours.settimeout(None)
        super().__init__(int(ready[1]))
        self.replayed: int = int(ready[2])
        self.open_seconds: float = float(ready[3])
        self.wal = RemoteWal(self, Path(settings.wal_dir), int(ready[4]))
        self._thread = threading.Thread(
            target=self._receive, name="stemedb-writer-link", daemon=True
        )

    @property
    def pid(self) -> int:
        return self._proc.pid

    def attach(self, store: SqliteStore) -> None:
        """Start relaying the writer's batches into ``store`` (this process's reader)."""
        self._store = store
        self._thread.start()

    # -- GroupCommitWriter's interface ---------------------------------------------

    def submit_group(self, items: Sequence[Prepared]) -> Future[list[GroupOutcome]]:
        """Commit records the server already verified (``Engine.submit``)."""
        future: Future[list[GroupOutcome]] = Future()
        if not items:
            future.set_result([])
            return future
        wire = [[int(p.kind), p.record_id, _ENCODER.encode(p.record)] for p in items]
        self._send_tracked(future, ["submit", wire])
        return future

    def submit_records(
        self, records: Sequence[AnyRecord], *, together: bool
    ) -> Future[list[WriteResult | StemeError]] | None:
        """Verify in the writer process, then commit (``Verifier.submit``'s contract:
        one outcome per record, in order). None when msgpack cannot carry a record
        (JSON allows integers past 64 bits, which validation refuses anyway): the caller
        verifies those in the server."""
        try:
            wire = [[int(KIND_OF_TYPE[type(r)]), _ENCODER.encode(r)] for r in records]
        except (OverflowError, msgspec.EncodeError):
            return None
        future: Future[list[WriteResult | StemeError]] = Future()
        if not records:
            future.set_result([])
            return future
        self._send_tracked(future, ["records", together, wire])
        return future

    def _send_tracked(self, future: Future[Any], message: list[Any]) -> None:
        """Send ``message`` with a fresh token; ``future`` gets the ``done`` answer."""
        token = next(self._tokens)
        with self._lock:
            if not self._running:
                future.set_exception(self._refusal())
                return
            self._pending[token] = future
        try:
            self._channel.send([message[0], token, *message[1:]])
        except OSError as exc:
            with self._lock:
                self._pending.pop(token, None)
            future.set_exception(
                StorageError(f"the writer process is gone: {exc}", code="writer_failed")
            )

    def _refusal(self) -> StorageError:
        reason = self.wal.read_only_reason
        if reason is None:
            return StorageError("the engine is closed", code="closed")
        return ReadOnlyError(f"the node is read-only: {reason}; restart it", retryable=False)

    def remove_segments_before(self, lsn: int) -> list[Path]:
        token = next(self._tokens)
        future: Future[list[Path]] = Future()
        with self._lock:
            self._removals[token] = future
        self._channel.send(["remove_before", token, lsn])
        return future.result(CLOSE_TIMEOUT_SECONDS)

    def close(self) -> None:
        """Let the writer finish what is queued, then stop it (also after it died)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            running, self._running = self._running, False
        if running:
            with contextlib.suppress(OSError):
                self._channel.send(["close"])
        if self._thread.is_alive():
            self._thread.join(CLOSE_TIMEOUT_SECONDS)
        self._reap()

    def _reap(self) -> None:
        """Wait for the writer process to exit (kill it if it does not), close the link."""
        try:
            self._proc.wait(CLOSE_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._channel.close()

    # -- messages from the writer ----------------------------------------------------

    def _receive(self) -> None:
        handlers: dict[str, Callable[[list[Any]], None]] = {
            "applied": self._on_applied, "done": self._on_done, "wal": self._on_wal,
            "read_only": self._on_read_only, "removed": self._on_removed,
        }  # fmt: skip
        try:
            while (message := self._channel.receive()) is not None:
                handlers[message[0]](message)
        except Exception as exc:  # a broken frame: treat like a dead writer
            log.exception("Error: StorageError: bad message from the writer process: %s", exc)
        self._on_exit()

    def _on_applied(self, message: list[Any]) -> None:
        _, lsn, touched, trust, retracted, epochs, size, wal_last_lsn = message
        keys = {(s, p) for s, p in touched}
        delta = StoreDelta(
            lsn, keys, {a: (v[0], v[1]) for a, v in trust.items()}, retracted, epochs
        )
        assert self._store is not None
        self._store.absorb(delta)
        self.wal.last_lsn = wal_last_lsn
        if size:
            self.stats.add(size)
        self._advance(lsn)
        self._notify(lsn, keys)  # before anyone is acknowledged, as in-process

    def _on_done(self, message: list[Any]) -> None:
        _, token, outcomes = message
        with self._lock:
            future = self._pending.pop(token, None)
        if future is not None:
            settle(future, lambda: [_outcome_from_wire(o) for o in outcomes])

    def _on_wal(self, message: list[Any]) -> None:
        observer, event = self._observer, message[1]
        if observer is None:
            return
        if event == "fsync":
            observer.on_fsync(message[2])
        elif event == "append":
            observer.on_append(message[2], message[3])
        elif event == "rotation":
            observer.on_rotation()
        elif event == "fsync_error":
            observer.on_fsync_error()

    def _on_read_only(self, message: list[Any]) -> None:
        self.wal.read_only_reason = message[1]

    def _on_removed(self, message: list[Any]) -> None:
        _, token, paths = message
        with self._lock:
            future = self._removals.pop(token, None)
        if future is not None:
            settle(future, lambda: [Path(p) for p in paths])

    def _on_exit(self) -> None:
        """The writer process is gone: fail what waits; no more writes."""
        code = self._proc.poll()
        with self._lock:
            expected = not self._running
            self._running = False
            pending, self._pending = self._pending, {}
            removals, self._removals = self._removals, {}
        if not expected:
            reason = f"the writer process exited unexpectedly (exit code {code})"
            log.error("Error: StorageError: %s; the node is read-only", reason)
            self.wal.read_only_reason = reason
        error = StorageError("the writer process exited", code="writer_failed")
        for waiter in [*pending.values(), *removals.values()]:
            with contextlib.suppress(InvalidStateError):
                waiter.set_exception(error)


# -- the writer process ---------------------------------------------------------------


class _ForwardingObserver:
    """The writer process's ``WalObserver``: events go to the server process."""

    def __init__(self) -> None:
        self.channel: _Channel | None = None

    def _send(self, message: list[Any]) -> None:
        if self.channel is not None:
            self.channel.send(message)

    def on_fsync(self, duration_seconds: float) -> None:
        self._send(["wal", "fsync", duration_seconds])

    def on_append(self, records: int, bytes: int) -> None:
        self._send(["wal", "append", records, bytes])

    def on_rotation(self) -> None:
        self._send(["wal", "rotation"])

    def on_fsync_error(self) -> None:
        self._send(["wal", "fsync_error"])


def run_writer(channel: _Channel, settings: WriterSettings) -> int:
    """The writer process's life: open, replay, serve submissions until EOF or close."""
    started = time.monotonic()
    observer = _ForwardingObserver()
    clock = SystemClock()
    try:
        lock, wal, store, replayed = open_and_replay(
            Path(settings.data_dir), Path(settings.wal_dir), fs=None, clock=clock,
            segment_size_bytes=settings.segment_size_bytes, fsync=settings.fsync,
            observer=observer, cache_bytes=settings.cache_bytes,
            busy_timeout_ms=settings.busy_timeout_ms,
        )  # fmt: skip
    except StemeError as exc:
        channel.send(["failed", error_to_wire(exc)])
        return 3
    writer = GroupCommitWriter(
        wal, store, clock, max_batch=settings.group_commit_max_batch,
        max_delay_us=settings.group_commit_max_delay_us,
    )  # fmt: skip
    observer.channel = channel
    reports = _Reports(channel, wal, writer.stats)
    store.delta_hook = reports.applied
    channel.send(["ready", writer.applied_lsn, replayed, time.monotonic() - started, wal.last_lsn])
    verifier = Verifier(
        writer.submit_group, time.time, max_skew_seconds=settings.max_skew_seconds,
        threads=settings.verify_threads,
    )  # fmt: skip
    try:
        _serve(channel, writer, verifier, wal, reports)
    finally:
        verifier.close()  # what is being verified still reaches the writer
        writer.close()
        wal.close()
        store.close()
        lock.release()
    return 0


class _Reports:
    """What the writer process tells the server: each applied batch (from the store's
    ``delta_hook``, in the writer thread, before the batch's outcomes), each
    submission's outcomes, and once that the WAL turned read-only."""

    def __init__(self, channel: _Channel, wal: Wal, stats: BatchStats) -> None:
        self._channel = channel
        self._wal = wal
        self._stats = stats
        self._records_seen = 0
        self._told_read_only = False

    def applied(self, delta: StoreDelta) -> None:
        records = self._stats.records  # counted before the batch was applied
        size, self._records_seen = records - self._records_seen, records
        self.send([
            "applied", delta.lsn, [list(k) for k in delta.touched], delta.trust,
            delta.retracted, delta.epochs, size, self._wal.last_lsn,
        ])  # fmt: skip

    def done(self, token: int) -> Callable[[Future[Any]], None]:
        def reply(group: Future[Any]) -> None:
            self.send(["done", token, [_outcome_to_wire(o) for o in group.result()]])

        return reply

    def send(self, message: list[Any]) -> None:
        """Send, telling first (once) that the WAL turned read-only; a server that is
        gone is not an error here: the writes stay durable, and EOF ends this process."""
        with contextlib.suppress(OSError):
            reason = self._wal.read_only_reason
            if reason is not None and not self._told_read_only:
                self._told_read_only = True
                self._channel.send(["read_only", reason])
            self._channel.send(message)


def _serve(
    channel: _Channel, writer: GroupCommitWriter, verifier: Verifier, wal: Wal, reports: _Reports
) -> None:
    while (message := channel.receive()) is not None:
        kind = message[0]
        if kind == "records":
            _, token, together, wire = message
            try:
                records = [_RECORD_DECODERS[k].decode(raw) for k, raw in wire]
            except (KeyError, msgspec.DecodeError) as exc:  # a server bug: say so, go on
                error = StorageError(f"the writer process cannot decode a record: {exc}")
                reports.send(["done", token, [_outcome_to_wire(error)] * len(wire)])
                continue
            verifier.submit(records, together=together).add_done_callback(reports.done(token))
        elif kind == "submit":
            _, token, wire = message
            items = [
                Prepared(RecordKind(k), rid, _RECORD_DECODERS[k].decode(raw))
                for k, rid, raw in wire
            ]
            writer.submit_group(items).add_done_callback(reports.done(token))
        elif kind == "remove_before":
            _, token, lsn = message
            removed = wal.remove_segments_before(lsn)
            channel.send(["removed", token, [str(p) for p in removed]])
        elif kind == "close":
            return


def main(argv: Sequence[str]) -> int:
    """The writer process's entry (``stemedb.engine.writer_main``)."""
    # The server decides when this process ends (``close`` or EOF): a Ctrl-C or a
    # SIGTERM sent to the whole group must not cut a group commit short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fd, raw_settings = int(argv[0]), argv[1]
    settings = msgspec.json.decode(raw_settings, type=WriterSettings)
    from stemedb.api.logs import configure_logging  # the server's log format, here too
    from stemedb.config import LoggingConfig

    configure_logging(
        msgspec.convert({"level": settings.log_level, "format": settings.log_format}, LoggingConfig)
    )
    return run_writer(_Channel(socket.socket(fileno=fd)), settings)
