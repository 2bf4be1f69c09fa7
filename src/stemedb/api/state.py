"""What one running app holds: configuration, engine, query service, metrics, feed hub.

Created empty by ``create_app``; the lifespan opens the engine and the service and
clears ``accepting`` again on shutdown. Route handlers close over one ``ApiState``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from starlette.requests import Request

from stemedb import __version__
from stemedb.api.guard.access import AccessControl
from stemedb.api.http.errors import AGENT_KEY
from stemedb.api.ingest import WriteCoalescer
from stemedb.api.observability.metrics import Metrics
from stemedb.api.resilience.fallback import StaleAnswers
from stemedb.api.resilience.slow_queries import SlowQueryLog
from stemedb.api.resilience.storage import StorageGuard
from stemedb.api.streaming.hub import FeedHub
from stemedb.cluster.membership import Membership
from stemedb.config import Config
from stemedb.engine import Engine
from stemedb.errors import StorageError, UnavailableError, ValidationError
from stemedb.model.signing import is_hex64
from stemedb.query.service import QueryService
from stemedb.runtime.control import ControlAnswer, ask_others
from stemedb.runtime.topology import Topology
from stemedb.store.custodial_keys import CustodialKeys, open_custodial_keys

T = TypeVar("T")

READ_THREADS = 4
CATCH_UP_TIMEOUT_SECONDS = 2.0


class ApiState:
    def __init__(self, config: Config, topology: Topology | None = None) -> None:
        self.config = config
        # Which process of the node this is and what it owns (``runtime.topology``).
        self.topology = topology or Topology.of(config, None)
        self.role = self.topology.role  # which of several HTTP processes, if any
        self.version = __version__
        self.metrics = Metrics(
            self.version,
            top_agents=config.api.metrics_top_agents,
            cluster=config.storage.backend == "postgres",
        )
        # Storage calls: metrics, timeout and breakers (api.resilience.storage); the
        # stale-answer fallback (api.resilience.fallback); the slow-query ring
        # (api.resilience.slow_queries).
        cluster = config.storage.backend == "postgres"
        self.storage = StorageGuard(
            config.resilience,
            self.metrics.registry,
            backend="postgres" if cluster else "sqlite",
            postgres_errors=self.metrics.postgres_errors if cluster else None,
        )
        self.fallback = StaleAnswers(config.fallback)
        self.slow_queries = SlowQueryLog(
            config.api.slow_query_ms, config.api.slow_query_log_entries
        )
        # API keys, rate limits, quotas, per-agent circuit breakers (api.guard.access).
        self.access = AccessControl(config, self.metrics)
        # Cluster mode: this node in the node registry (api.membership; set at start).
        self.membership: Membership | None = None
        self.feed = FeedHub()
        self.started_monotonic = time.monotonic()
        self.accepting = False
        self._engine: Engine | None = None
        self._service: QueryService | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._coalescer: WriteCoalescer | None = None
        self._custodial: CustodialKeys | None = None  # opened by the lifespan
        # What this worker answers the others (``api.workers``): route modules add theirs.
        self.control: dict[bytes, ControlAnswer] = {b"metrics": lambda _: self.own_metrics()}

    # -- lifecycle ---------------------------------------------------------------

    def open(self, engine: Engine, service: QueryService) -> None:
        self._engine = engine
        self._service = service
        self._coalescer = WriteCoalescer(engine)
        self._readers = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="stemedb-read")

    def open_custodial(self) -> None:
        """Blocking: open the custodial agent keys (``<data_dir>/custodial.sqlite``, or
        the cluster's table in cluster mode)."""
        storage = self.config.storage
        self._custodial = open_custodial_keys(
            storage.backend, self.config.data_dir, storage.postgres_dsn
        )

    def close_custodial(self) -> None:
        if self._custodial is not None:
            self._custodial.close()
            self._custodial = None

    @property
    def custodial(self) -> CustodialKeys:
        """The custodial agent keys (``/v1/admin/custodial-keys``, ``/mcp`` writes)."""
        if self._custodial is None:
            raise UnavailableError("the node is starting or shutting down", code="not_ready")
        return self._custodial

    def close_readers(self) -> None:
        if self._readers is not None:
            self._readers.shutdown(wait=True)

    @property
    def engine(self) -> Engine:
        if self._engine is None or not self.accepting:
            raise UnavailableError("the node is starting or shutting down", code="not_ready")
        self._catch_up(self._engine)
        return self._engine

    @property
    def writes(self) -> WriteCoalescer:
        """Single-record writes, coalesced per loop iteration (``api.ingest``)."""
        if self._coalescer is None or not self.accepting:
            raise UnavailableError("the node is starting or shutting down", code="not_ready")
        return self._coalescer

    @property
    def service(self) -> QueryService:
        if self._service is None or self._engine is None or not self.accepting:
            raise UnavailableError("the node is starting or shutting down", code="not_ready")
        self._catch_up(self._engine)
        return self._service

    @staticmethod
    def _catch_up(engine: Engine) -> None:
        """With several HTTP processes, first absorb what another one acknowledged
        (``api.workers``): a 201 from any worker is visible to the next read here.
        Microseconds when nothing is missing (one shared 8-byte read)."""
        if not engine.catch_up(CATCH_UP_TIMEOUT_SECONDS):
            raise UnavailableError(
                "this HTTP worker is behind the writer; retry", code="worker_behind"
            )

    @property
    def opened_engine(self) -> Engine | None:
        return self._engine

    async def own_metrics(self) -> bytes:
        """This process's metrics page (``/metrics`` adds up every HTTP worker's)."""
        engine = self._engine
        if engine is not None:
            wal = self.metrics.wal
            wal.segments.set(len(engine.wal.segments()))
            wal.disk_usage.set(engine.wal.disk_usage_bytes())
        return self.metrics.exposition()

    async def ask_workers(self, command: bytes, argument: bytes = b"") -> list[bytes]:
        """The other HTTP workers' answers to ``command`` (``api.workers``); none with
        one worker."""
        if not self.topology.has_peers:
            return []
        return await ask_others(self.topology.peer_role, command, argument)

    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_monotonic

    # -- helpers for handlers ----------------------------------------------------

    async def offload(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run a blocking read (SQLite) on the read pool, off the event loop, through the
        storage guard (metrics by ``fn.__name__``, ``resilience.timeout_ms``, breaker)."""
        name = getattr(fn, "__name__", "read")
        return await self.storage.read_offloaded(self._readers, name, fn, *args, **kwargs)

    async def offload_unguarded(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Like ``offload`` without the guard (``/ready`` probes the store itself)."""
        loop = asyncio.get_running_loop()
        call = partial(fn, *args, **kwargs) if kwargs else partial(fn, *args)
        return await loop.run_in_executor(self._readers, call)

    async def read_after(self, min_lsn: int) -> None:
        """Read-your-writes: wait until reads here reflect every commit up to
        ``min_lsn`` (the ``lsn`` a write answered, through any node), at most
        ``storage.min_lsn_wait_seconds``; then a retryable 503 ``lsn_not_reached``.
        An LSN no node has committed yet is a 400 (``lsn_not_committed``; reading from
        the primary, whose last LSN is the truth); 0 (the parameter not given): no
        wait."""
        if min_lsn == 0:
            return
        if min_lsn < 0:
            raise ValidationError(
                "min_lsn", "not_negative", "min_lsn must be >= 0", code="invalid_parameter"
            )
        engine = self.engine
        if min_lsn <= engine.applied_lsn and self.config.storage.read_from != "replica":
            return  # the usual case: this process has absorbed it
        timeout = self.config.storage.min_lsn_wait_seconds
        loop = asyncio.get_running_loop()
        primary = self.config.storage.read_from == "primary"  # a standby may lag
        committed = await loop.run_in_executor(None, engine.committed_lsn) if primary else 0
        if primary and min_lsn > committed:
            raise ValidationError(
                "min_lsn",
                "not_committed",
                f"no write has LSN {min_lsn} yet (the last committed LSN is {committed})",
                code="lsn_not_committed",
            )
        if not await loop.run_in_executor(None, engine.wait_readable, min_lsn, timeout):
            raise StorageError(
                f"this node's reads have not reached LSN {min_lsn} within {timeout:g} s; retry",
                code="lsn_not_reached",
                details={"field": "min_lsn", "applied_lsn": engine.applied_lsn},
            )

    @staticmethod
    def asker(request: Request) -> str | None:
        """The reading agent from ``X-Agent-Id`` (64 lowercase hex), recorded for metrics."""
        agent = request.headers.get("x-agent-id")
        if agent is None:
            return None
        if not is_hex64(agent):
            raise ValidationError(
                "X-Agent-Id", "hex_format", "X-Agent-Id must be 64 lowercase hex characters"
            )
        request.scope[AGENT_KEY] = agent
        return agent
