"""Access control of one app: API keys, rate limits, quotas, per-agent breakers.

``AccessControl`` holds the access state (the key ring, the counters, the limits, the
breakers); ``start`` opens the key store, ``stop`` closes it. ``protect`` gives each
route's ``RouteApp`` a ``RouteGuard`` (``api.guard.gate``) chosen by the route's path
and methods (``api.guard.policy``).
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
from stemedb.config import Config
from stemedb.errors import StemeError, ValidationError
from stemedb.runtime.supervisor import WorkerRole
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
        self.auth_enabled = config.auth.enabled
        self.require_for_reads = config.auth.require_for_reads
        self.root_secret = config.auth.root_api_key
        self.metrics = metrics
        self.keys = KeyRing()
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

    # -- lifecycle -----------------------------------------------------------------

    def open(self, data_dir: Path, *, workers: WorkerRole | None = None) -> None:
        """Blocking: open ``keys.sqlite``, seed the root key, refuse a server without admin.

        ``workers``: other HTTP processes of this node (``api.workers``) change the same
        keys and overrides; each change bumps ``<data_dir>/keys.generation`` and every
        process reloads both before its next guarded request (``refresh``). Their
        ``memory://`` counters are one table (``api.node_counter``)."""
        if workers is not None:
            self._generation = SharedInt(data_dir / ACCESS_GENERATION_FILE, create=True)
            self._seen_generation = self._generation.get()  # before reading what it covers
            if self.memory is not None:
                counter = NodeCounter(data_dir / COUNTERS_FILE, reset=workers.first)
                self.counters.share(counter)
                self.memory = counter
        self.keys.open(data_dir, self.root_secret)
        self._load_overrides()
        if self.auth_enabled and not self.keys.has_usable_admin():
            self.keys.close()
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

    def refresh(self) -> None:
        """Reload the keys and the rate-limit overrides if another HTTP process changed
        them since (one shared 8-byte read when it did not)."""
        generation = self._generation
        if generation is not None and (value := generation.get()) != self._seen_generation:
            self._seen_generation = value  # read first: a change after it is seen next
            self.keys.reload()
            self._load_overrides()

    def changed(self) -> None:
        """Tell the other HTTP processes that keys or overrides changed (after the
        change is committed to ``keys.sqlite``)."""
        if self._generation is not None:
            self._generation.increment()

    async def start(self, data_dir: Path, *, workers: WorkerRole | None = None) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, partial(self.open, data_dir, workers=workers))
        except StemeError as exc:
            log.error("Error: %s: %s", exc.type_name, exc.message)
            raise
        counter = self.counters.counter
        if isinstance(counter, SharedCounter) and (self.rates.enabled or self.quota.enabled):
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
            log.warning("API keys are off ([auth] enabled = false): every route is open")

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
        enforcing = self.auth_enabled or self.rates.enabled or self.quota.enabled
        return enforcing or (policy.write and not policy.admin)

    def protect(self, routes: Iterable[BaseRoute]) -> None:
        """Give every route's ``RouteApp`` that needs one its ``RouteGuard`` (idempotent)."""
        for route in routes:
            if not isinstance(route, Route) or not isinstance(route.app, RouteApp):
                continue
            policy = self.policy(route)
            if policy is not None and self.needs_guard(policy):
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
        rate = self.rates.limit_of("agent", agent) if self.rates.enabled else None
        return AgentDetail(
            **msgspec.structs.asdict(info),
            quota=quota,
            rate_limit_per_minute=rate,
            breaker=self.breakers.view(agent),
        )

    def count_limited(self, path: str, scope: str) -> None:
        self.metrics.rate_limited.labels(path, scope).inc()


__all__ = ["AccessControl"]
