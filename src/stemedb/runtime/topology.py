"""Which process of a node this is, and what it owns (ADR 0002, 0003).

An embedded node runs one of three ways: the writer in the HTTP process
(``wal.writer_process = false``, or a test's fault-injecting seams); the writer process
and one HTTP process; the writer process and ``api.workers`` HTTP processes, worker 0
starting the others. A cluster node (``storage.backend = "postgres"``,
docs/design/cluster.md) has no WAL and no writer process: each of its ``api.workers``
HTTP processes opens its own PostgreSQL store and commits its own batches
(``Engine.shared``). ``Topology.of`` decides once, from the configuration and the
process's ``WorkerRole``; everything else asks it (``owns_wal``, ``owns_archiver``,
``prunes_audit`` …) instead of looking at roles, and ``open_engine`` opens the engine
the matching way.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

from stemedb.config import Config
from stemedb.engine import Engine
from stemedb.engine.settings import EngineSettings
from stemedb.errors import ValidationError
from stemedb.runtime.healing import Healing
from stemedb.runtime.shared_store import check_postgres_config, open_shared_store
from stemedb.runtime.supervisor import WorkerRole
from stemedb.runtime.writer_start import join_writer_process, spawn_writer
from stemedb.sys.clock import Clock
from stemedb.sys.filesystem import FileSystem
from stemedb.wal import WalObserver


@dataclass(frozen=True)
class OpenedEngine:
    engine: Engine
    spare_links: list[socket.socket]  # worker 0: the other HTTP workers' writer links
    new_link: Callable[[], socket.socket] | None = None  # worker 0: for a replaced worker


@dataclass(frozen=True)
class Topology:
    workers: int  # HTTP processes of the node (``api.workers``)
    worker_index: int  # this one's; 0 started the others and the writer process
    writer_process: bool  # the WAL and group commit run in a writer process
    role: WorkerRole | None  # several HTTP processes: this one's handles
    cluster: bool = False  # storage.backend = "postgres": no WAL, commits of its own

    @classmethod
    def of(cls, config: Config, role: WorkerRole | None, *, seams: bool = False) -> Topology:
        """``seams``: a test's ``fs`` or ``clock``, which need the writer in this process.
        Refuses what cluster mode cannot do (``check_cluster_config``)."""
        cluster = config.storage.backend == "postgres"
        if cluster:
            check_cluster_config(config)
        elif config.storage.read_from != "primary":
            raise ValidationError(
                "storage.read_from",
                "cluster mode only",
                f"storage.read_from = {config.storage.read_from!r} reads from PostgreSQL"
                ' standbys: it needs storage.backend = "postgres"',
            )
        return cls(
            workers=1 if role is None else role.count,
            worker_index=0 if role is None else role.index,
            writer_process=config.wal.writer_process and not seams and not cluster,
            role=role,
            cluster=cluster,
        )

    @property
    def owns_wal(self) -> bool:
        """This process opened the WAL, or started the writer process that did: it
        gets the WAL's events (the WAL metrics) and counts the stored assertions. In
        cluster mode there is no WAL; worker 0 still counts the assertions."""
        return self.worker_index == 0

    @property
    def owns_archiver(self) -> bool:
        """Archives sealed WAL segments (``archive``); nobody in cluster mode."""
        return self.worker_index == 0 and not self.cluster

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
        healing: Healing | None = None,
    ) -> OpenedEngine:
        """The engine of this process: on its own PostgreSQL store (cluster mode),
        attached to the writer process (started here, or joined on this worker's link),
        or embedded. ``observer`` gets the WAL's events if this process ``owns_wal``;
        ``healing``: respawn a writer process started here after a crash
        (``runtime.writer_respawn``)."""
        settings = EngineSettings.from_config(config)
        if self.cluster:  # every HTTP process on its own store, no writer links
            store = open_shared_store(config.storage, settings, poll_ms=config.cluster.poll_ms)
            config.data_dir.mkdir(parents=True, exist_ok=True)  # API keys (for now)
            return OpenedEngine(Engine.shared(store, settings, clock=clock), [])
        if self.worker_index > 0:
            link = self.peer_role.link
            assert link is not None, "a worker > 0 has a writer link"
            engine = join_writer_process(link, config.data_dir, settings, self.peer_role.handoff)
            return OpenedEngine(engine, [])
        if self.writer_process:
            writer = spawn_writer(
                config.data_dir,
                settings,
                observer=observer,
                http_processes=self.workers,
                healing=healing,
            )
            engine = Engine.attach(
                writer, config.data_dir, settings, verify_in_writer=self.workers == 1
            )
            return OpenedEngine(engine, writer.spare_links, writer.new_link)
        engine = Engine.embedded(config.data_dir, settings, fs=fs, clock=clock, observer=observer)
        return OpenedEngine(engine, [])


def check_cluster_config(config: Config) -> None:
    """Refuse, naming the key, what a cluster node (``storage.backend = "postgres"``)
    cannot do."""
    check_postgres_config(config.storage)
    if config.archive.enabled:
        raise ValidationError(
            "archive.enabled",
            "not in cluster mode",
            "[archive] enabled = true: the WAL archiver ships the embedded WAL; in cluster"
            " mode there is none, PostgreSQL is backed up with pgBackRest"
            " (docs/operations/cluster.md)",
        )


def require_embedded(config: Config, command: str) -> None:
    """Refuse a command that works on the embedded WAL and store in cluster mode."""
    if config.storage.backend == "postgres":
        raise ValidationError(
            "storage.backend",
            "embedded only",
            f"stemedb {command} works on the embedded WAL and store; with storage.backend ="
            ' "postgres" PostgreSQL is the system of record and this node has no WAL',
        )


def open_engine_for_command(config: Config) -> Engine:
    """The engine a command line tool writes through: the shared store in cluster
    mode, else ``Engine.from_config`` (the writer in this process)."""
    if config.storage.backend == "postgres":
        check_cluster_config(config)
        settings = EngineSettings.from_config(config)
        return Engine.shared(
            open_shared_store(config.storage, settings, poll_ms=config.cluster.poll_ms), settings
        )
    return Engine.from_config(config)
