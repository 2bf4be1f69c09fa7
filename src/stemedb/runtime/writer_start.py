"""Opening an engine on the writer process (ADR 0002, 0003): ``spawn_writer`` and
``start_writer_process`` start it (the HTTP process that owns the WAL metrics: worker
0), ``join_writer_process`` serves another HTTP process on one of its links."""

from __future__ import annotations

import logging
import os
import signal
import socket
from functools import partial
from pathlib import Path

import msgspec

from stemedb.engine.engine import Engine
from stemedb.engine.settings import EngineSettings
from stemedb.runtime.healing import Healing, receive_links
from stemedb.runtime.protocol import WriterSettings
from stemedb.runtime.writer_client import WriterProcess, applied_lsn_path
from stemedb.runtime.writer_launch import Launched
from stemedb.runtime.writer_respawn import WriterRespawn
from stemedb.wal import WalObserver

log = logging.getLogger("stemedb.engine")


def spawn_writer(
    data_dir: Path,
    settings: EngineSettings,
    *,
    observer: WalObserver | None = None,
    http_processes: int = 1,
    healing: Healing | None = None,
) -> WriterProcess:
    """Start the writer process for ``data_dir`` with a link per HTTP process; this
    process keeps the first (``observer``: the WAL's events, for its metrics;
    ``healing``: respawn it after a crash, ``runtime.writer_respawn``)."""
    writer = WriterProcess.spawn(
        WriterSettings(
            data_dir=str(data_dir),
            engine=msgspec.structs.replace(settings, wal_dir=str(settings.wal_path(data_dir))),
            log_level=logging.getLevelName(logging.getLogger().level).lower(),
            applied_lsn_file=str(applied_lsn_path(data_dir)) if http_processes > 1 else "",
        ),
        observer=observer,
        links=http_processes,
    )
    if healing is not None:
        writer.respawn = WriterRespawn(writer.settings, http_processes, healing)
    return writer


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


def join_writer_process(
    link: socket.socket,
    data_dir: Path,
    settings: EngineSettings,
    handoff: socket.socket | None = None,
) -> Engine:
    """An engine of another HTTP process, on a link of a writer process already running
    (``handoff``: where worker 0 passes the link of a respawned writer process)."""
    writer = WriterProcess.join(link, settings.wal_path(data_dir), applied_lsn_path(data_dir))
    engine = Engine.attach(writer, data_dir, settings, verify_in_writer=False)
    if handoff is not None:
        writer.awaits_handoff = True
        receive_links(handoff, partial(_resume_or_stop, writer))
    return engine


def _resume_or_stop(writer: WriterProcess, link: socket.socket) -> None:
    """Workers > 0: the link of the writer process worker 0 respawned; if this process
    cannot go on with it, it stops (and worker 0 replaces it)."""
    try:
        writer.resume(Launched(None, [link], None))
    except Exception as exc:  # noqa: BLE001 - whatever it was, this worker cannot write
        log.error("Error: StorageError: cannot take the new writer process's link: %s", exc)
        os.kill(os.getpid(), signal.SIGTERM)
