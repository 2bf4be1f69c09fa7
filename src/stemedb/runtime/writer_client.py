"""The HTTP process's side of the writer process (``runtime.protocol`` describes the
protocol; ``runtime.writer_process`` is the other side).

``WriterProcess.spawn`` starts ``python -m stemedb.runtime.writer_process`` with one link
per HTTP process and keeps the first; ``WriterProcess.join`` takes another HTTP
process's link (``api.workers``, ADR 0003). Either stands in for ``GroupCommitWriter``
in an engine opened with ``Engine.attach`` (``runtime.writer_start``). What such a
process sees of the WAL is ``runtime.remote_wal``. After a crash of the writer process
``resume`` goes on with a new one (``runtime.writer_respawn``, ``runtime.healing``).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import Any, Final

import msgspec

from stemedb.engine.submission import Prepared, WriteResult
from stemedb.engine.verify import settle
from stemedb.engine.writer import BatchStats, CommitNotices, GroupOutcome
from stemedb.errors import ReadOnlyError, StemeError, StorageError
from stemedb.model.kinds import KIND_OF_TYPE, AnyRecord
from stemedb.runtime.protocol import (
    CLOSE_TIMEOUT_SECONDS,
    ENCODER,
    Applied,
    Close,
    Done,
    FromWriter,
    ReadOnly,
    Records,
    RemoveBefore,
    Removed,
    Submit,
    ToWriter,
    WriterSettings,
    outcome_from_wire,
)
from stemedb.runtime.remote_wal import RemoteWal, wal_event_handlers
from stemedb.runtime.writer_launch import Launched, await_ready, launch_writer, reap
from stemedb.store.protocol import StoreWriter
from stemedb.sys.shared import SharedInt
from stemedb.wal import WalObserver

log = logging.getLogger("stemedb.engine")

ABSORB_DELAY_FAILPOINT: Final = "STEMEDB_FAILPOINT_ABSORB_DELAY_SECONDS"
APPLIED_LSN_FILE: Final = "writer.lsn"


def applied_lsn_path(data_dir: Path) -> Path:
    """Where the writer process shares its applied LSN with several HTTP processes."""
    return data_dir / APPLIED_LSN_FILE


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
        self._observer = observer
        self._applied_lsn = applied_lsn
        self.spare_links = spare_links  # for the other HTTP processes (``api.workers``)
        self._channel, ready = await_ready(link, proc)
        self._proc = proc
        self._broker: socket.socket | None = None  # worker 0: new links for new workers
        self._pending: dict[int, Future[Any]] = {}  # a token's ``done`` answer
        self._removals: dict[int, Future[list[Path]]] = {}
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()
        self._store: StoreWriter | None = None
        self._running = True
        self._closed = False
        self.stats = BatchStats()
        self._absorb_delay_seconds = 0.0
        self.settings: WriterSettings | None = None  # worker 0: what it was started with
        self.respawn: Any = None  # worker 0: a ``WriterRespawn`` (``healing``), or None
        self.awaits_handoff = False  # workers > 0: worker 0 respawns the writer
        super().__init__(ready.applied_lsn)
        # ``applied_lsn`` advances before the commit listeners run (the feed reads it);
        # ``absorbed_lsn`` after them: a read that waited for it sees fresh views.
        self.absorbed_lsn = self.applied_lsn
        self._absorbed = threading.Condition()
        self.replayed: int = ready.replayed
        self.open_seconds: float = ready.open_seconds
        self.wal = RemoteWal(self.remove_segments_before, wal_dir, ready.wal_last_lsn)
        self._thread = self._receiver()

    def _receiver(self) -> threading.Thread:
        return threading.Thread(target=self._receive, name="stemedb-writer-link", daemon=True)

    @classmethod
    def spawn(
        cls, settings: WriterSettings, *, observer: WalObserver | None = None, links: int = 1
    ) -> WriterProcess:
        """Start the writer process with ``links`` links and keep the first; the others
        wait in ``spare_links`` for the HTTP processes ``join`` will serve."""
        launched = launch_writer(settings, links)
        try:
            writer = cls(
                launched.links[0],
                launched.proc,
                settings.wal_dir,
                observer=observer,
                applied_lsn=None,
                spare_links=launched.links[1:],
            )
        except BaseException:
            for link in [*launched.links[1:], *([launched.broker] if launched.broker else [])]:
                link.close()
            raise
        writer.settings = settings
        writer._broker = launched.broker
        if settings.applied_lsn_file:  # the writer made it before "ready"
            writer._applied_lsn = SharedInt(Path(settings.applied_lsn_file))
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

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The writer process, when this process started it (worker 0)."""
        return self._proc

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
                ours = self._pending.pop(token, None) is not None
            if ours:  # else ``_on_exit`` (the link ended meanwhile) already failed it
                future.set_exception(
                    StorageError(f"the writer process is gone: {exc}", code="writer_failed")
                )

    def _refusal(self) -> StorageError:
        restarting = self.wal.restarting_reason
        if restarting is not None:
            return StorageError(
                f"writes are refused for now: {restarting}", code="writer_restarting"
            )
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

    def new_link(self) -> socket.socket:
        """Worker 0: a new link to the running writer process, for a replaced HTTP
        worker (sent over the broker: one ``SCM_RIGHTS`` message)."""
        with self._lock:
            broker = self._broker if self._running else None
            if broker is None:
                raise StorageError("the writer process is not running", code="writer_restarting")
            ours, theirs = socket.socketpair()
            try:
                socket.send_fds(broker, [b"L"], [theirs.fileno()])
            except OSError:
                ours.close()
                raise
            finally:
                theirs.close()
        return ours

    # -- a respawned writer process (``runtime.healing``) ---------------------------

    def resume(self, launched: Launched) -> None:
        """Go on with a new writer process after a crash: wait for its ``ready`` on
        the first of ``launched.links``, bring this process's store up to what it
        recovered from the WAL, take writes again."""
        self._thread.join()  # every message of the dead one is handled
        channel, ready = await_ready(launched.links[0], launched.proc)
        reload = getattr(self._store, "reload", None)  # ``SqliteStore.reload``
        if reload is not None:
            reload()  # its in-memory state from the tables; the result cache emptied
        with self._lock:
            closed = self._closed
            if not closed:
                self._channel, self._proc, self._broker = channel, launched.proc, launched.broker
        if closed:  # the node is shutting down: stop the new one as well
            with contextlib.suppress(OSError):
                channel.send(Close())
            reap(launched.proc)
            channel.close()
            raise StorageError("the engine is closed", code="closed")
        self.wal.last_lsn = ready.wal_last_lsn
        if ready.applied_lsn > self.applied_lsn:  # replayed what the dead one had not sent
            self._advance(ready.applied_lsn)
            self._notify(ready.applied_lsn, set())
        with self._absorbed:
            self.absorbed_lsn = max(self.absorbed_lsn, ready.applied_lsn)
            self._absorbed.notify_all()
        self.replayed = ready.replayed
        self._thread = self._receiver()
        self._thread.start()
        with self._lock:
            self._running = not self._closed
        self.wal.restarting_reason = None

    def give_up(self, reason: str) -> None:
        """No more respawns: read-only with ``reason`` until the node stops."""
        self.wal.read_only_reason = reason
        self.wal.restarting_reason = None

    @property
    def closed(self) -> bool:
        return self._closed

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
        reap(self._proc)
        self._channel.close()
        if self._broker is not None:
            self._broker.close()
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
        except OSError:  # the writer process was killed: its link was reset
            pass
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
        """The writer process is gone: fail what waits; no more writes, until a new
        one is ready (worker 0 respawns it, ``respawn``) or for good."""
        code = "unknown" if self._proc is None else self._proc.poll()
        restarts = self.respawn is not None or self.awaits_handoff
        with self._lock:
            expected = not self._running
            if restarts and not expected:  # before a write can see ``_running`` False
                self.wal.restarting_reason = "the writer process is restarting after a crash"
            self._running = False
            pending, self._pending = self._pending, {}
            removals, self._removals = self._removals, {}
        error = StorageError("the writer process exited", code="writer_failed")
        for waiter in [*pending.values(), *removals.values()]:
            with contextlib.suppress(InvalidStateError):
                waiter.set_exception(error)
        if expected:
            return
        if restarts:
            if self.respawn is not None:
                self.respawn.start(self)
            return
        reason = f"the writer process exited unexpectedly (exit code {code})"
        log.error("Error: StorageError: %s; the node is read-only", reason)
        self.wal.read_only_reason = reason
