"""The HTTP process's side of the writer process (``runtime.protocol`` describes the
protocol; ``runtime.writer_process`` is the other side).

``WriterProcess.spawn`` starts ``python -m stemedb.runtime.writer_process`` with one link
per HTTP process and keeps the first; ``WriterProcess.join`` takes another HTTP
process's link (``api.workers``, ADR 0003). Either stands in for ``GroupCommitWriter``
in an engine opened with ``Engine.attach``: ``start_writer_process`` and
``join_writer_process`` open such an engine. What such a process sees of the WAL is
``runtime.remote_wal``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import Any, Final

import msgspec

from stemedb.engine.engine import Engine
from stemedb.engine.settings import EngineSettings
from stemedb.engine.submission import Prepared, WriteResult
from stemedb.engine.verify import settle
from stemedb.engine.writer import BatchStats, CommitNotices, GroupOutcome
from stemedb.errors import ReadOnlyError, StemeError, StorageError
from stemedb.model.kinds import KIND_OF_TYPE, AnyRecord
from stemedb.runtime.protocol import (
    CLOSE_TIMEOUT_SECONDS,
    ENCODER,
    STARTUP_TIMEOUT_SECONDS,
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
    WriterSettings,
    error_from_wire,
    outcome_from_wire,
)
from stemedb.runtime.remote_wal import RemoteWal, wal_event_handlers
from stemedb.store.protocol import StoreWriter
from stemedb.sys.shared import SharedInt
from stemedb.wal import WalObserver

log = logging.getLogger("stemedb.engine")

ABSORB_DELAY_FAILPOINT: Final = "STEMEDB_FAILPOINT_ABSORB_DELAY_SECONDS"
APPLIED_LSN_FILE: Final = "writer.lsn"


def applied_lsn_path(data_dir: Path) -> Path:
    """Where the writer process shares its applied LSN with several HTTP processes."""
    return data_dir / APPLIED_LSN_FILE


def spawn_writer(
    data_dir: Path,
    settings: EngineSettings,
    *,
    observer: WalObserver | None = None,
    http_processes: int = 1,
) -> WriterProcess:
    """Start the writer process for ``data_dir`` with a link per HTTP process; this
    process keeps the first (``observer``: the WAL's events, for its metrics)."""
    return WriterProcess.spawn(
        WriterSettings(
            data_dir=str(data_dir),
            engine=msgspec.structs.replace(settings, wal_dir=str(settings.wal_path(data_dir))),
            log_level=logging.getLevelName(logging.getLogger().level).lower(),
            applied_lsn_file=str(applied_lsn_path(data_dir)) if http_processes > 1 else "",
        ),
        observer=observer,
        links=http_processes,
    )


def start_writer_process(
    data_dir: Path,
    settings: EngineSettings,
    *,
    observer: WalObserver | None = None,
    http_processes: int = 1,
) -> Engine:
    """An engine whose WAL, replay and group commit run in a writer process of their
    own (ADR 0002). With ``http_processes`` > 1 the other links wait in
    ``engine.writer.spare_links`` for ``join_writer_process`` in the other processes."""
    writer = spawn_writer(data_dir, settings, observer=observer, http_processes=http_processes)
    return Engine.attach(writer, data_dir, settings, verify_in_writer=http_processes == 1)


def join_writer_process(link: socket.socket, data_dir: Path, settings: EngineSettings) -> Engine:
    """An engine of another HTTP process, on a link of a writer process already running."""
    writer = WriterProcess.join(link, settings.wal_path(data_dir), applied_lsn_path(data_dir))
    return Engine.attach(writer, data_dir, settings, verify_in_writer=False)


class WriterProcess(CommitNotices):
    """The server side of the writer process; stands in for ``GroupCommitWriter``."""

    def __init__(
        self,
        link: socket.socket,
        proc: subprocess.Popen[bytes] | None,
        wal_dir: Path,
        *,
        observer: WalObserver | None,
        applied_lsn: SharedInt | None,
        spare_links: list[socket.socket],
    ) -> None:
        """Use ``spawn`` or ``join``: this waits for the writer's ``ready`` on ``link``."""
        self._proc = proc
        self._observer = observer
        self._applied_lsn = applied_lsn
        self.spare_links = spare_links  # for the other HTTP processes (``api.workers``)
        link.settimeout(STARTUP_TIMEOUT_SECONDS)  # for the "ready" message only
        self._channel: Channel[FromWriter] = Channel(link, FromWriter)
        self._pending: dict[int, Future[Any]] = {}  # a token's ``done`` answer
        self._removals: dict[int, Future[list[Path]]] = {}
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()
        self._store: StoreWriter | None = None
        self._running = True
        self._closed = False
        self.stats = BatchStats()
        self._absorb_delay_seconds = 0.0
        try:
            ready = self._channel.receive()
        except OSError:  # no answer in STARTUP_TIMEOUT_SECONDS
            ready = None
        if not isinstance(ready, Ready):
            self._reap()
            if isinstance(ready, Failed):
                raise error_from_wire(ready.error)
            code = "unknown" if proc is None else proc.returncode
            raise StorageError(
                f"the writer process did not start (exit code {code})",
                code="writer_failed",
                retryable=False,
            )
        link.settimeout(None)
        super().__init__(ready.applied_lsn)
        # ``applied_lsn`` advances before the commit listeners run (the feed reads it);
        # ``absorbed_lsn`` after them: a read that waited for it sees fresh views.
        self.absorbed_lsn = self.applied_lsn
        self._absorbed = threading.Condition()
        self.replayed: int = ready.replayed
        self.open_seconds: float = ready.open_seconds
        self.wal = RemoteWal(self.remove_segments_before, wal_dir, ready.wal_last_lsn)
        self._thread = threading.Thread(
            target=self._receive, name="stemedb-writer-link", daemon=True
        )

    @classmethod
    def spawn(
        cls, settings: WriterSettings, *, observer: WalObserver | None = None, links: int = 1
    ) -> WriterProcess:
        """Start the writer process with ``links`` links and keep the first; the others
        wait in ``spare_links`` for the HTTP processes ``join`` will serve."""
        pairs = [socket.socketpair() for _ in range(links)]
        fds = [theirs.fileno() for _, theirs in pairs]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stemedb.runtime.writer_process",
                ",".join(map(str, fds)),
                msgspec.json.encode(settings).decode(),
            ],
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
        )
        for _, theirs in pairs:
            theirs.close()
        applied_lsn = None
        try:
            writer = cls(
                pairs[0][0],
                proc,
                settings.wal_dir,
                observer=observer,
                applied_lsn=None,
                spare_links=[ours for ours, _ in pairs[1:]],
            )
            if settings.applied_lsn_file:  # the writer made it before "ready"
                applied_lsn = SharedInt(Path(settings.applied_lsn_file))
        except BaseException:
            for ours, _ in pairs[1:]:
                ours.close()
            raise
        writer._applied_lsn = applied_lsn
        return writer

    @classmethod
    def join(cls, link: socket.socket, wal_dir: Path, applied_lsn_file: Path) -> WriterProcess:
        """Serve another HTTP process over a link of a writer process already running."""
        writer = cls(
            link,
            None,
            wal_dir,
            observer=None,
            applied_lsn=SharedInt(applied_lsn_file),
            spare_links=[],
        )
        # A failpoint for the tests of ``catch_up``: absorb each batch this much later.
        writer._absorb_delay_seconds = float(os.environ.get(ABSORB_DELAY_FAILPOINT, "0"))
        return writer

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def catch_up(self, timeout_seconds: float) -> bool:
        """Wait until this process has absorbed every batch the writer applied so far
        (several HTTP processes: another one may have acknowledged it). False when that
        took longer than ``timeout_seconds``."""
        if self._applied_lsn is None:
            return True
        target = self._applied_lsn.get()
        if target <= self.absorbed_lsn:
            return True
        with self._absorbed:
            return self._absorbed.wait_for(
                lambda: self.absorbed_lsn >= target, timeout=timeout_seconds
            )

    def attach(self, store: StoreWriter) -> None:
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
        wire = [(int(p.kind), p.record_id, ENCODER.encode(p.record)) for p in items]
        token = next(self._tokens)
        self._send_tracked(token, future, Submit(token, wire))
        return future

    def submit_records(
        self, records: Sequence[AnyRecord], *, together: bool
    ) -> Future[list[WriteResult | StemeError]] | None:
        """Verify in the writer process, then commit (``Verifier.submit``'s contract:
        one outcome per record, in order). None when msgpack cannot carry a record
        (JSON allows integers past 64 bits, which validation refuses anyway): the caller
        verifies those in the server."""
        try:
            wire = [(int(KIND_OF_TYPE[type(r)]), ENCODER.encode(r)) for r in records]
        except (OverflowError, msgspec.EncodeError):
            return None
        future: Future[list[WriteResult | StemeError]] = Future()
        if not records:
            future.set_result([])
            return future
        token = next(self._tokens)
        self._send_tracked(token, future, Records(token, together, wire))
        return future

    def _send_tracked(self, token: int, future: Future[Any], message: ToWriter) -> None:
        """Send ``message``, which carries ``token``; ``future`` gets the ``Done`` answer."""
        with self._lock:
            if not self._running:
                future.set_exception(self._refusal())
                return
            self._pending[token] = future
        try:
            self._channel.send(message)
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
        self._channel.send(RemoveBefore(token, lsn))
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
                self._channel.send(Close())
        if self._thread.is_alive():
            self._thread.join(CLOSE_TIMEOUT_SECONDS)
        self._reap()

    def _reap(self) -> None:
        """Wait for the writer process to exit (kill it if it does not), close the link."""
        if self._proc is not None:
            try:
                self._proc.wait(CLOSE_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._channel.close()
        if self._applied_lsn is not None:
            self._applied_lsn.close()
            self._applied_lsn = None

    # -- messages from the writer ----------------------------------------------------

    def _receive(self) -> None:
        handlers: dict[type[FromWriter], Callable[[Any], None]] = {
            Applied: self._on_applied,
            Done: self._on_done,
            ReadOnly: self._on_read_only,
            Removed: self._on_removed,
            **wal_event_handlers(self._observer),
        }
        try:
            while (message := self._channel.receive()) is not None:
                handlers[type(message)](message)
        except Exception as exc:  # a broken frame: treat like a dead writer
            log.exception("Error: StorageError: bad message from the writer process: %s", exc)
        self._on_exit()

    def _on_applied(self, message: Applied) -> None:
        delta, lsn = message.delta, message.delta.lsn
        if self._absorb_delay_seconds:
            time.sleep(self._absorb_delay_seconds)
        assert self._store is not None
        self._store.absorb(delta)
        self.wal.last_lsn = message.wal_last_lsn
        if message.size:
            self.stats.add(message.size)
        self._advance(lsn)
        self._notify(lsn, delta.touched)  # before anyone is acknowledged, as in-process
        with self._absorbed:
            self.absorbed_lsn = lsn
            self._absorbed.notify_all()

    def _on_done(self, message: Done) -> None:
        with self._lock:
            future = self._pending.pop(message.token, None)
        if future is not None:
            settle(future, lambda: [outcome_from_wire(o) for o in message.outcomes])

    def _on_read_only(self, message: ReadOnly) -> None:
        self.wal.read_only_reason = message.reason

    def _on_removed(self, message: Removed) -> None:
        with self._lock:
            future = self._removals.pop(message.token, None)
        if future is not None:
            settle(future, lambda: [Path(p) for p in message.paths])

    def _on_exit(self) -> None:
        """The writer process is gone: fail what waits; no more writes."""
        code = "unknown" if self._proc is None else self._proc.poll()
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
