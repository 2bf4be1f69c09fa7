"""Access control of one app: API keys, rate limits, quotas, per-agent breakers.

``AccessControl`` holds the access state (the key ring, the counters, the limits, the
breakers); ``start`` opens the key store, ``stop`` closes it. ``protect`` gives each
route's ``RouteApp`` a ``RouteGuard`` (``api.guard.gate``) chosen by the route's path
and methods (``api.guard.policy``).

In cluster mode (``storage.backend = "postgres"``) the keys, the overrides and the open
agent breakers are the cluster's (``store.keys.postgres``): every guarded request first
reads the access generation (``refresh_shared``; one indexed one-row read, shared by
the requests that arrive while it runs) and reloads all three when it moved, so a key
created, disabled or deleted through any node holds on this one from the next request
that starts after the change committed. When the database cannot answer, the request
is refused (503 ``StorageError``, retryable): a revoked key is never let through on a
stale copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Final

import msgspec
from starlette.routing import BaseRoute, Route

from stemedb.api.guard.counters import Counters, SharedCounter, open_counter
from stemedb.api.guard.gate import RouteGuard
from stemedb.api.guard.keys import LAST_USED_FLUSH_SECONDS, KeyRing
from stemedb.api.guard.policy import Policy, route_policy
from stemedb.api.guard.quota import QuotaMeter
from stemedb.api.guard.ratelimit import RateLimits
from stemedb.api.http.routing import RouteApp
from stemedb.api.node_counter import COUNTERS_FILE, NodeCounter
from stemedb.api.observability.metrics import Metrics
from stemedb.api.resilience.agents import AgentBreakers
from stemedb.cluster.identity import node_id_of
from stemedb.config import Config
from stemedb.errors import StemeError, ValidationError
from stemedb.runtime.supervisor import WorkerRole
from stemedb.store.keys import (
    AccessGeneration,
    KeyStore,
    SharedAccess,
    SharedBreaker,
    SqliteKeyStore,
    open_generation,
    open_shared_access,
)
from stemedb.sys.shared import SharedInt
from stemedb.wire import (
    AgentDetail,
    AgentInfo,
    QuotaView,
)

log = logging.getLogger("stemedb.api")

ACCESS_GENERATION_FILE: Final = "keys.generation"


class AccessControl:
    """The access state of one app; ``start`` opens the key store, ``stop`` closes it."""

    def __init__(self, config: Config, metrics: Metrics) -> None:
        self.backend = config.storage.backend
        self.postgres_dsn = config.storage.postgres_dsn
        self.node_id = node_id_of(config)
        self.auth_enabled = config.auth.enabled
        self.require_for_reads = config.auth.require_for_reads
        self.root_secret = config.auth.root_api_key
        self.metrics = metrics
        self.keys = KeyRing()
        self.keys.mints_open = not config.auth.enabled  # anyone may be creating keys
        self.counters = Counters(open_counter(config.rate_limit.storage))
        self.rates = RateLimits(config.rate_limit, self.counters)
        self.quota = QuotaMeter(config.quota, self.counters)
        self.memory = self.counters.memory  # memory:// counters: counted without await
        self.breakers = AgentBreakers(
            config.resilience, metrics.breakers_open, authenticated=config.auth.enabled
        )
        self._flusher: asyncio.Task[None] | None = None
        self._generation: SharedInt | None = None  # several HTTP processes
        self._seen_generation = 0
        self.shared: SharedAccess | None = None  # cluster mode: the cluster's tables
        self.watch: AccessGeneration | None = None  # ... and their generation
        self._reloading = asyncio.Lock()
        self._routes: list[BaseRoute] = []  # given to ``protect``

    # -- lifecycle -----------------------------------------------------------------

    def open(self, data_dir: Path, *, workers: WorkerRole | None = None) -> None:
        """Blocking: open ``keys.sqlite``, seed the root key, refuse a server without admin.

        ``workers``: other HTTP processes of this node (``api.workers``) change the same
        keys and overrides; each change bumps ``<data_dir>/keys.generation`` and every
        process reloads both before its next guarded request (``refresh``). Their
        ``memory://`` counters are one table (``api.node_counter``). In cluster mode
        the access generation is the database's, for every process of every node."""
        store: KeyStore
        if self.backend == "postgres":
            store = self.shared = open_shared_access(self.postgres_dsn)
            self._seen_generation = store.generation()  # before reading what it covers
        elif workers is not None:
            self._generation = SharedInt(data_dir / ACCESS_GENERATION_FILE, create=True)
            self._seen_generation = self._generation.get()  # before reading what it covers
        if workers is not None and self.memory is not None:  # per node, also in a cluster
            counter = NodeCounter(data_dir / COUNTERS_FILE, reset=workers.first)
            self.counters.share(counter)
            self.memory = counter
        if self.shared is None:
            store = SqliteKeyStore(data_dir)
        self.keys.open(store, self.root_secret)
        self._load_overrides()
        if self.shared is not None:
            self.breakers.absorb(self.shared.breakers(), self._seen_generation)
        if self.auth_enabled and not self.keys.has_usable_admin():
            self.keys.close()
            self.shared = None
            if self._generation is not None:
                self._generation.close()
                self._generation = None
            raise ValidationError(
                "auth.root_api_key",
                "required",
                "auth.enabled is true but there is no usable admin API key: set"
                " STEMEDB_ROOT_API_KEY (or [auth] root_api_key), or create one with"
                " `stemedb keys create --role admin --name NAME --offline` while the server"
                " is stopped",
                code="no_admin_key",
            )

    def _load_overrides(self) -> None:
        self.rates.replace_overrides(
            {(o.scope, o.target): o.max_requests_per_min for o in self.keys.store.overrides()}
        )
        self.protect(self._routes)  # an override guards routes that were unguarded

    def refresh(self) -> None:
        """Reload the keys and the rate-limit overrides if another HTTP process changed
        them since (one shared 8-byte read when it did not)."""
        generation = self._generation
        if generation is not None and (value := generation.get()) != self._seen_generation:
            self._seen_generation = value  # read first: a change after it is seen next
            self.keys.reload()
            self._load_overrides()

    async def refresh_shared(self) -> None:
        """Cluster mode: reload the keys, overrides and breakers if the access
        generation moved (read by a query that started after this call)."""
        assert self.watch is not None
        try:
            generation = await self.watch.fresh()
        except StemeError:
            self.metrics.postgres_errors.labels("access_generation").inc()
            raise
        if generation == self._seen_generation:
            return
        async with self._reloading:
            if generation != self._seen_generation:
                loop = asyncio.get_running_loop()
                try:
                    seen, rows = await loop.run_in_executor(None, self._reload_shared)
                except StemeError:
                    self.metrics.postgres_errors.labels("access_reload").inc()
                    raise
                self.breakers.absorb(rows, seen)
                self._seen_generation = seen

    def _reload_shared(self) -> tuple[int, list[SharedBreaker]]:
        """Blocking: the generation, then the keys and overrides (loaded here) and the
        breaker rows (for the event loop to absorb)."""
        shared = self.shared
        assert shared is not None
        generation = shared.generation()  # first: a change after it is seen next time
        self.keys.reload()
        self._load_overrides()
        return generation, shared.breakers()

    def changed(self) -> None:
        """Tell the other HTTP processes that keys or overrides changed (after the
        change is committed to ``keys.sqlite``); guard the routes an override now limits."""
        self.protect(self._routes)
        if self._generation is not None:
            self._generation.increment()

    async def start(self, data_dir: Path, *, workers: WorkerRole | None = None) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, partial(self.open, data_dir, workers=workers))
        except StemeError as exc:
            log.error("Error: %s: %s", exc.type_name, exc.message)
            raise
        if self.shared is not None:
            self.watch = open_generation(self.postgres_dsn)
            self.breakers.share(_Publisher(self.shared, self.node_id, loop, self.metrics))
        counter = self.counters.counter
        if isinstance(counter, SharedCounter) and (self.rates.active or self.quota.enabled):
            try:
                reachable = await counter.check()
            except Exception:  # noqa: BLE001 - whatever the driver raises means unreachable
                reachable = False
            if not reachable:
                log.error(
                    "Error: UnavailableError: rate-limit storage is not reachable; requests"
                    " are let through unlimited until it is"
                )
        self._flusher = loop.create_task(self._flush_periodically())
        if not self.auth_enabled:
            log.warning(
                "API keys are off ([auth] enabled = false): every route is open to the"
                " clients this node answers; keys created now are marked minted_open"
            )
        elif unconfirmed := self.keys.unconfirmed():
            listed = ", ".join(
                f"{k.id} (role {k.role}, name {k.name!r}, created_at {k.created_at:.0f})"
                for k in unconfirmed
            )
            log.warning(
                "%d API keys were created while API keys were off and are refused until an"
                " admin confirms (POST /v1/admin/api-keys/{id}/confirm) or deletes them: %s",
                len(unconfirmed),
                listed,
            )

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.keys.close)
        await self.counters.counter.close()
        if self._generation is not None:
            self._generation.close()
        if self.watch is not None:
            await self.watch.close()

    async def _flush_periodically(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(LAST_USED_FLUSH_SECONDS)
            try:
                await loop.run_in_executor(None, self.keys.flush)
            except StemeError as exc:
                log.error("Error: %s: last_used_at not saved: %s", exc.type_name, exc.message)

    # -- routes --------------------------------------------------------------------

    def policy(self, route: Route) -> Policy | None:
        return route_policy(route, self.rates.endpoints)

    def needs_guard(self, policy: Policy) -> bool:
        enforcing = self.auth_enabled or self.rates.active or self.quota.enabled
        return enforcing or (policy.write and not policy.admin)

    def protect(self, routes: Iterable[BaseRoute]) -> None:
        """Give every route's ``RouteApp`` that needs one its ``RouteGuard`` (idempotent;
        again when an override appears: ``changed``, ``_load_overrides``)."""
        self._routes = routes = list(routes)
        for route in routes:
            if not isinstance(route, Route) or not isinstance(route.app, RouteApp):
                continue
            policy = self.policy(route)
            if policy is not None and route.app.guard is None and self.needs_guard(policy):
                route.app.guard = RouteGuard(self, policy)

    # -- views ---------------------------------------------------------------------

    async def agent_detail(self, info: AgentInfo) -> AgentDetail:
        """``GET /v1/agents/{agent_id}``: trust and counts plus quota, rate limit, breaker."""
        agent = info.agent_id
        quota = None
        if self.quota.enabled:
            window = await self.quota.status(agent)
            if window is not None:
                quota = QuotaView(
                    tokens_per_hour=window.limit,
                    remaining=max(0, window.remaining),
                    reset_at=window.reset_at,
                )
        rate = self.rates.effective_limit("agent", agent)
        return AgentDetail(
            **msgspec.structs.asdict(info),
            quota=quota,
            rate_limit_per_minute=rate,
            breaker=self.breakers.view(agent),
        )

    def count_limited(self, path: str, scope: str) -> None:
        self.metrics.rate_limited.labels(path, scope).inc()


class _Publisher:
    """``BreakerPublisher`` over the cluster's tables: each change one transaction on
    the default executor, its failures counted in ``stemedb_postgres_errors_total``."""

    def __init__(
        self,
        shared: SharedAccess,
        node_id: str,
        loop: asyncio.AbstractEventLoop,
        metrics: Metrics,
    ) -> None:
        self.node_id = node_id
        self._shared = shared
        self._loop = loop
        self._errors = metrics.postgres_errors.labels("breaker_write")

    def opened(self, breaker: SharedBreaker) -> asyncio.Future[int]:
        return self._counted(self._loop.run_in_executor(None, self._shared.put_breaker, breaker))

    def closed(self, agent_id: str) -> asyncio.Future[int]:
        return self._counted(
            self._loop.run_in_executor(None, self._shared.delete_breaker, agent_id)
        )

    def _counted(self, future: asyncio.Future[int]) -> asyncio.Future[int]:
        def count(finished: asyncio.Future[int]) -> None:
            if not finished.cancelled() and finished.exception() is not None:
                self._errors.inc()

        future.add_done_callback(count)
        return future


__all__ = ["AccessControl"]
