"""Which process of a node this is, and what it owns (ADR 0002, 0003).

A node runs one of three ways: the writer in the HTTP process (``wal.writer_process =
false``, or a test's fault-injecting seams); the writer process and one HTTP process;
the writer process and ``api.workers`` HTTP processes, worker 0 starting the others.
``Topology.of`` decides once, from the configuration and the process's ``WorkerRole``;
everything else asks it (``owns_wal``, ``owns_archiver``, ``prunes_audit`` …) instead
of looking at roles, and ``open_engine`` opens the engine the matching way.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from stemedb.config import Config
from stemedb.engine import Engine
from stemedb.engine.settings import EngineSettings
from stemedb.errors import ValidationError
from stemedb.runtime.supervisor import WorkerRole
from stemedb.runtime.writer_client import join_writer_process, spawn_writer
from stemedb.sys.clock import Clock
from stemedb.sys.filesystem import FileSystem
from stemedb.wal import WalObserver


@dataclass(frozen=True)
class OpenedEngine:
    engine: Engine
    spare_links: list[socket.socket]  # worker 0: the other HTTP workers' writer links


@dataclass(frozen=True)
class Topology:
    workers: int  # HTTP processes of the node (``api.workers``)
    worker_index: int  # this one's; 0 started the others and the writer process
    writer_process: bool  # the WAL and group commit run in a writer process
    role: WorkerRole | None  # several HTTP processes: this one's handles

    @classmethod
    def of(cls, config: Config, role: WorkerRole | None, *, seams: bool = False) -> Topology:
        """``seams``: a test's ``fs`` or ``clock``, which need the writer in this process."""
        return cls(
            workers=1 if role is None else role.count,
            worker_index=0 if role is None else role.index,
            writer_process=config.wal.writer_process and not seams,
            role=role,
        )

    @property
    def owns_wal(self) -> bool:
        """This process opened the WAL, or started the writer process that did: it
        gets the WAL's events (the WAL metrics) and counts the stored assertions."""
        return self.worker_index == 0

    @property
    def owns_archiver(self) -> bool:
        """Archives sealed WAL segments (``archive``)."""
        return self.worker_index == 0

    @property
    def prunes_audit(self) -> bool:
        """Prunes the query audit log (one process per node does)."""
        return self.worker_index == 0

    @property
    def logs_ready(self) -> bool:
        """Logs "StemeDB … ready" once the node accepts requests."""
        return self.worker_index == 0

    @property
    def has_peers(self) -> bool:
        """Other HTTP processes serve the same port: a control socket to answer them."""
        return self.workers > 1

    @property
    def supervises_workers(self) -> bool:
        """Starts the other HTTP processes, waits for them, watches and stops them."""
        return self.workers > 1 and self.worker_index == 0

    @property
    def reports_to_supervisor(self) -> bool:
        """Tells worker 0 once it accepts requests."""
        return self.worker_index > 0

    @property
    def peer_role(self) -> WorkerRole:
        """This process's ``WorkerRole`` when it ``has_peers``."""
        assert self.role is not None, "one HTTP process has no peers"
        return self.role

    def open_engine(
        self,
        config: Config,
        *,
        observer: WalObserver | None = None,
        fs: FileSystem | None = None,
        clock: Clock | None = None,
    ) -> OpenedEngine:
        """The engine of this process: attached to the writer process (started here,
        or joined on this worker's link), or embedded. ``observer`` gets the WAL's
        events if this process ``owns_wal``."""
        if config.storage.backend != "local":
            raise ValidationError(
                "storage.backend",
                'only "local" for now',
                f"storage.backend = {config.storage.backend!r} is not available in this"
                " version: the server would run on the local store and ignore"
                ' storage.postgres_dsn; remove the key (or set it to "local")',
            )
        settings = EngineSettings.from_config(config)
        if self.worker_index > 0:
            link = self.peer_role.link
            assert link is not None, "a worker > 0 has a writer link"
            return OpenedEngine(join_writer_process(link, config.data_dir, settings), [])
        if self.writer_process:
            writer = spawn_writer(
                config.data_dir, settings, observer=observer, http_processes=self.workers
            )
            engine = Engine.attach(
                writer, config.data_dir, settings, verify_in_writer=self.workers == 1
            )
            return OpenedEngine(engine, writer.spare_links)
        engine = Engine.embedded(config.data_dir, settings, fs=fs, clock=clock, observer=observer)
        return OpenedEngine(engine, [])
