"""``python -m stemedb.runtime.writer_process FD[,FD...] SETTINGS_JSON``: the writer
process (``runtime.protocol`` describes the protocol), started by the server's
``runtime.writer_client``, never by hand. Everything here runs in the writer process.

One link per HTTP process: the first one's process started this one and owns the WAL
metrics and the archiver; the main thread serves it, a thread serves each other link.
With several, the first process may send a new link for HTTP worker ``i`` over the
broker (a third argument: a socket, ``SCM_RIGHTS``) when it replaced a crashed worker
(``runtime.healing``): the new link gets its own ``ready`` and every later batch.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import msgspec

from stemedb.config import LoggingConfig
from stemedb.engine.replay import open_and_replay
from stemedb.engine.screening import screener_for
from stemedb.engine.submission import Prepared
from stemedb.engine.verify import Verifier
from stemedb.engine.writer import BatchStats, GroupCommitWriter
from stemedb.errors import StemeError, StorageError
from stemedb.model.kinds import RecordKind
from stemedb.runtime.healing import receive_links
from stemedb.runtime.logs import configure_process_logging
from stemedb.runtime.protocol import (
    RECORD_DECODERS,
    Applied,
    Channel,
    Close,
    Done,
    Failed,
    Message,
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
    WriterSettings,
    error_to_wire,
    outcome_to_wire,
)
from stemedb.store.protocol import StoreDelta
from stemedb.sys.clock import SystemClock
from stemedb.sys.shared import SharedInt
from stemedb.wal import Wal


class _ForwardingObserver:
    """The writer process's ``WalObserver``: events go to the first link's process."""

    def __init__(self) -> None:
        self.channel: Channel[ToWriter] | None = None

    def _send(self, message: Message) -> None:
        if self.channel is not None:
            with contextlib.suppress(OSError):
                self.channel.send(message)

    def on_fsync(self, duration_seconds: float) -> None:
        self._send(WalFsync(duration_seconds))

    def on_append(self, records: int, bytes: int) -> None:
        self._send(WalAppend(records, bytes))

    def on_rotation(self) -> None:
        self._send(WalRotation())

    def on_fsync_error(self) -> None:
        self._send(WalFsyncError())


def run_writer(
    links: Sequence[Channel[ToWriter]],
    settings: WriterSettings,
    broker: socket.socket | None = None,
) -> int:
    """The writer process's life: open, replay, serve submissions until the first link
    ends (EOF or ``close``)."""
    started = time.monotonic()
    observer = _ForwardingObserver()
    clock = SystemClock()
    try:
        lock, wal, store, replayed = open_and_replay(
            Path(settings.data_dir), settings.engine, fs=None, clock=clock, observer=observer
        )
    except StemeError as exc:
        for link in links:
            with contextlib.suppress(OSError):
                link.send(Failed(error_to_wire(exc)))
        return 3
    writer = GroupCommitWriter(
        wal,
        store,
        clock,
        max_batch=settings.engine.group_commit_max_batch,
        max_delay_us=settings.engine.group_commit_max_delay_us,
        screener=screener_for(settings.engine.defence, store),
    )
    applied_lsn = None
    if settings.applied_lsn_file:
        applied_lsn = SharedInt(Path(settings.applied_lsn_file), create=True)
        applied_lsn.set(writer.applied_lsn)
    observer.channel = links[0]
    reports = _Reports(links, wal, writer.stats, applied_lsn, writer.applied_lsn)
    store.delta_hook = reports.applied
    ready = Ready(writer.applied_lsn, replayed, time.monotonic() - started, wal.last_lsn)
    for link in links:
        reports.send(link, ready)
    verifier = Verifier(
        writer.submit_group,
        time.time,
        max_skew_seconds=settings.engine.signature_max_skew_seconds,
        threads=settings.engine.verify_threads,
    )
    for index, link in enumerate(links[1:], 1):
        threading.Thread(
            target=_serve_other,
            args=(link, writer, verifier, wal, reports),
            name=f"stemedb-link-{index}",
            daemon=True,
        ).start()
    if broker is not None:
        receive_links(broker, lambda sock: _add_link(sock, writer, verifier, wal, reports))
    try:
        _serve(links[0], writer, verifier, wal, reports)
    finally:
        verifier.close()  # what is being verified still reaches the writer
        writer.close()
        wal.close()
        store.close()
        lock.release()
        if applied_lsn is not None:
            applied_lsn.close()
    return 0


class _Reports:
    """What the writer process tells the HTTP processes: each applied batch (from the
    store's ``delta_hook``, in the writer thread, before the batch's outcomes) to every
    link, each submission's outcomes to its own link, and once per link that the WAL
    turned read-only."""

    def __init__(
        self,
        links: Sequence[Channel[ToWriter]],
        wal: Wal,
        stats: BatchStats,
        applied_lsn: SharedInt | None,
        last_lsn: int,
    ) -> None:
        self._links = list(links)
        self._lock = threading.Lock()  # ``applied`` against ``add``
        self._wal = wal
        self._stats = stats
        self._applied_lsn = applied_lsn
        self._last_lsn = last_lsn  # the last batch sent to every link
        self._records_seen = 0
        self._told_read_only: set[int] = set()

    def applied(self, delta: StoreDelta) -> None:
        records = self._stats.records  # counted before the batch was applied
        size, self._records_seen = records - self._records_seen, records
        message = Applied(delta, size, self._wal.last_lsn)
        with self._lock:
            for link in self._links:
                self.send(link, message)
            self._last_lsn = delta.lsn
        if self._applied_lsn is not None:  # after every link has the delta
            self._applied_lsn.set(delta.lsn)

    def add(self, link: Channel[ToWriter]) -> None:
        """A new link (a replaced HTTP worker's): its ``ready``, then every later batch;
        a link whose process is gone is dropped."""
        with self._lock:
            self.send(link, Ready(self._last_lsn, 0, 0.0, self._wal.last_lsn))
            for gone in [k for k in self._links[1:] if not k.open]:
                gone.close()  # its thread ended: nothing else uses it
            self._links = [*self._links[:1], *(k for k in self._links[1:] if k.open), link]

    def done(self, link: Channel[ToWriter], token: int) -> Callable[[Future[Any]], None]:
        def reply(group: Future[Any]) -> None:
            self.send(link, Done(token, [outcome_to_wire(o) for o in group.result()]))

        return reply

    def send(self, link: Channel[ToWriter], message: Message) -> None:
        """Send, telling first (once) that the WAL turned read-only; a server process
        that is gone is not an error here: the writes stay durable, and EOF on the
        first link ends this process."""
        with contextlib.suppress(OSError):
            reason = self._wal.read_only_reason
            if reason is not None and id(link) not in self._told_read_only:
                self._told_read_only.add(id(link))
                link.send(ReadOnly(reason))
            link.send(message)


def _serve_other(
    link: Channel[ToWriter],
    writer: GroupCommitWriter,
    verifier: Verifier,
    wal: Wal,
    reports: _Reports,
) -> None:
    """Serve a link other than the first until it ends, then end it for its process
    too (shut down, not closed: the writer thread may still be sending on it)."""
    try:
        with contextlib.suppress(OSError):  # its process was killed: the link was reset
            _serve(link, writer, verifier, wal, reports)
    finally:
        link.shutdown()


def _add_link(
    sock: socket.socket,
    writer: GroupCommitWriter,
    verifier: Verifier,
    wal: Wal,
    reports: _Reports,
) -> None:
    """Serve a link the first process sent over the broker until it ends."""
    link: Channel[ToWriter] = Channel(sock, ToWriter)
    reports.add(link)
    threading.Thread(
        target=_serve_other,
        args=(link, writer, verifier, wal, reports),
        name=f"stemedb-link-fd{sock.fileno()}",
        daemon=True,
    ).start()


def _serve(
    link: Channel[ToWriter],
    writer: GroupCommitWriter,
    verifier: Verifier,
    wal: Wal,
    reports: _Reports,
) -> None:
    while (message := link.receive()) is not None:
        match message:
            case Records(token, together, wire):
                try:
                    records = [RECORD_DECODERS[k].decode(raw) for k, raw in wire]
                except (KeyError, msgspec.DecodeError) as exc:  # a server bug: say so, go on
                    error = StorageError(f"the writer process cannot decode a record: {exc}")
                    reports.send(link, Done(token, [outcome_to_wire(error)] * len(wire)))
                    continue
                done = reports.done(link, token)
                verifier.submit(records, together=together).add_done_callback(done)
            case Submit(token, wire):
                items = [
                    Prepared(RecordKind(k), rid, RECORD_DECODERS[k].decode(raw))
                    for k, rid, raw in wire
                ]
                writer.submit_group(items).add_done_callback(reports.done(link, token))
            case RemoveBefore(token, lsn):
                removed = wal.remove_segments_before(lsn)
                reports.send(link, Removed(token, [str(p) for p in removed]))
            case Close():
                return


def main(argv: Sequence[str]) -> int:
    # The server decides when this process ends (``close`` or EOF on the first link): a
    # Ctrl-C or a SIGTERM sent to the whole group must not cut a group commit short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fds, raw_settings = [int(fd) for fd in argv[0].split(",")], argv[1]
    broker = socket.socket(fileno=int(argv[2])) if len(argv) > 2 else None
    settings = msgspec.json.decode(raw_settings, type=WriterSettings)
    configure_process_logging(  # the server's log format, here too
        msgspec.convert({"level": settings.log_level, "format": settings.log_format}, LoggingConfig)
    )
    links: list[Channel[ToWriter]] = [Channel(socket.socket(fileno=fd), ToWriter) for fd in fds]
    return run_writer(links, settings, broker)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
