"""This node in the cluster: its heartbeat loop and what the cluster status reads.

``Membership.start`` registers the node (``NodeRegistry.started``) and heartbeats every
``cluster.heartbeat_seconds``; each beat also lists the nodes and reads the replication
view, handed to ``on_beat`` (the API sets ``stemedb_cluster_nodes`` and
``stemedb_replication_lag_seconds`` from it). A failed beat is logged and counted
(``on_error``) and the loop goes on: a node whose heartbeats do not reach the database
is listed unhealthy by the others, which is the truth. ``stop`` deletes the node's row.
With several HTTP processes on a node (``api.workers``) only the first beats
(``beats``); every process can read the status.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from stemedb.cluster.database import database_facts
from stemedb.cluster.health import DatabaseFacts
from stemedb.cluster.identity import advertise_url_of, node_id_of
from stemedb.config import Config
from stemedb.errors import StemeError
from stemedb.wire import ClusterNode

if TYPE_CHECKING:
    from stemedb.cluster.registry import NodeRegistry

log = logging.getLogger("stemedb.cluster")

OnBeat = Callable[[list[ClusterNode], DatabaseFacts], None]


def open_registry(dsn: str) -> NodeRegistry:
    module = importlib.import_module("stemedb.cluster.registry")
    registry: NodeRegistry = module.NodeRegistry(dsn)
    return registry


class Membership:
    def __init__(
        self,
        config: Config,
        version: str,
        *,
        beats: bool,
        on_beat: OnBeat,
        on_error: Callable[[str], None],
    ) -> None:
        self.node_id = node_id_of(config)
        self.advertise_url = advertise_url_of(config)
        self.version = version
        self.every_seconds = config.cluster.heartbeat_seconds
        self.patroni_url = config.cluster.patroni_url
        self.beats = beats
        self._on_beat = on_beat
        self._on_error = on_error
        self._registry = open_registry(config.storage.postgres_dsn)
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Register this node (a failure is logged, the loop retries), start beating."""
        if not self.beats:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._started)
        except StemeError as exc:
            self._failed("heartbeat", exc)
        self._task = loop.create_task(self._beat_forever())

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            try:
                await loop.run_in_executor(None, self._registry.leave, self.node_id)
            except StemeError as exc:
                self._failed("heartbeat", exc)
        await loop.run_in_executor(None, self._registry.close)

    def _started(self) -> None:
        self._registry.started(self.node_id, self.advertise_url, self.version, self.every_seconds)
        self._observe()
        log.info("cluster: node %s registered as %s", self.node_id, self.advertise_url)

    async def _beat_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.every_seconds)
            try:
                await loop.run_in_executor(None, self._beat)
            except StemeError as exc:
                self._failed("heartbeat", exc)

    def _beat(self) -> None:
        self._registry.beat(self.node_id, self.advertise_url, self.version, self.every_seconds)
        self._observe()

    def _observe(self) -> None:
        nodes, facts = self.read()
        self._on_beat(nodes, facts)

    def _failed(self, operation: str, exc: StemeError) -> None:
        self._on_error(operation)
        log.error("Error: %s: cluster %s failed: %s", exc.type_name, operation, exc.message)

    # -- the status ----------------------------------------------------------------

    def read(self) -> tuple[list[ClusterNode], DatabaseFacts]:
        """Blocking: the registry's nodes and the database facts (``StorageError`` when
        the node list cannot be read; the database's failures are in the facts)."""
        facts = database_facts(self._registry.replication, self.patroni_url)
        try:
            nodes = self._registry.nodes()
        except StemeError as exc:
            if facts.reachable:
                raise
            self._on_error("nodes")
            facts.errors.append(f"node registry: {exc.message}")
            nodes = []
        return nodes, facts


__all__ = ["Membership", "open_registry"]
