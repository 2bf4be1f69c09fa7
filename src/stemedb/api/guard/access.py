"""Access control of every route: API keys, rate limits, quotas, per-agent breakers.

``AccessControl.protect`` gives each route's ``RouteApp`` a ``RouteGuard`` chosen by the
route's path and methods (``Policy``):

- public, never guarded: ``/health``, ``/v1/health``, ``/ready``, ``/metrics``,
  ``/openapi.json``, ``/docs``;
- ``/v1/admin/*``: role ``admin`` whenever ``[auth] enabled`` (whatever
  ``require_for_reads`` says);
- ``GET`` and ``POST /v1/query``: role ``reader`` when ``require_for_reads`` (else
  anonymous, but a key that is sent must be valid); other methods: role ``writer``.

The guard runs before the handler: authentication (401/403), then the ``endpoint``,
``key`` and, for reads, ``agent`` rate limits and the reader's quota (429). A write's
agent is its first signer, known only once the body is decoded: the write handlers
call ``admit_agent`` (breaker 403, ``agent`` limit and quota 429). On the answer (the
handler's response or a refusal, before it is sent) the guard charges the quota, adds
the ``RateLimit``/``X-RateLimit-*`` and ``X-Quota-*`` headers to it and tells the
agent's breaker how the write went.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any, Final, NamedTuple

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message, Receive, Scope, Send

from stemedb.api.guard.keys import LAST_USED_FLUSH_SECONDS, KeyRing
from stemedb.api.guard.quota import (
    Cost,
    QuotaMeter,
    cost_of,
    exhausted,
    quota_headers,
    request_cost,
)
from stemedb.api.guard.ratelimit import (
    Counters,
    MemoryCounter,
    RateLimits,
    SharedCounter,
    Window,
    limited,
    open_counter,
    rate_headers,
)
from stemedb.api.http.errors import AGENT_KEY, ERROR_KEY
from stemedb.api.http.routing import Handler, RouteApp, envelope_response, handle
from stemedb.api.node_counter import COUNTERS_FILE, NodeCounter
from stemedb.api.observability.metrics import Metrics
from stemedb.api.resilience.agents import AgentBreakers, Outcome
from stemedb.config import Config
from stemedb.errors import (
    AuthorizationError,
    SerializationError,
    SignatureError,
    StemeError,
    ValidationError,
)
from stemedb.model.apikey import role_allows
from stemedb.model.signing import is_hex64
from stemedb.runtime.supervisor import WorkerRole
from stemedb.store.keys import StoredKey
from stemedb.sys.shared import SharedInt
from stemedb.wire import AgentDetail, AgentInfo, QuotaView

log = logging.getLogger("stemedb.api")

ACCESS_GENERATION_FILE: Final = "keys.generation"

GATE_KEY: Final = "stemedb.gate"
PUBLIC_PATHS: Final = frozenset(
    {"/health", "/v1/health", "/ready", "/metrics", "/openapi.json", "/docs"}
)
ADMIN_PREFIX: Final = "/v1/admin/"
READ_METHODS: Final = frozenset({"GET", "HEAD"})
READ_POST_PATHS: Final = frozenset({"/v1/query"})  # POST, but a read (many queries)
_API_KEY_HEADER: Final = b"x-api-key"
_AGENT_HEADER: Final = b"x-agent-id"
_LENGTH_HEADER: Final = b"content-length"


class Policy(NamedTuple):
    path: str
    method: str
    need: str  # the least role: reader, writer or admin
    write: bool
    admin: bool
    endpoint_limit: int | None
    cost: Cost


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
        self.rates.replace_overrides({
            (o.scope, o.target): o.max_requests_per_min for o in self.keys.store.overrides()
        })  # fmt: skip

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
            except Exception:
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
        path = route.path
        methods = route.methods or {"GET"}
        if path in PUBLIC_PATHS:
            return None
        write = not methods <= READ_METHODS and path not in READ_POST_PATHS
        method = next((m for m in sorted(methods) if m != "HEAD"), "GET")
        admin = path.startswith(ADMIN_PREFIX)
        need = "admin" if admin else ("writer" if write else "reader")
        return Policy(
            path=path,
            method=method,
            need=need,
            write=write,
            admin=admin,
            endpoint_limit=self.rates.endpoints.get(path),
            cost=cost_of(method, path, write=write),
        )

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


class RouteGuard:
    """A route's guard (``routing.RouteApp.guard``): runs the request's ``Gate``."""

    __slots__ = ("access", "policy")

    def __init__(self, access: AccessControl, policy: Policy) -> None:
        self.access = access
        self.policy = policy

    async def respond(
        self, scope: Scope, receive: Receive, send: Send, endpoint: Handler
    ) -> Response:
        self.access.refresh()
        gate = Gate(self.access, self.policy, scope)
        scope[GATE_KEY] = gate
        try:
            try:
                gate.identify()
                if self.access.memory is not None:
                    gate.limit_now(self.access.memory)
                else:
                    await gate.limit()
            except StemeError as exc:
                gate.refused = True
                return await gate.answer(envelope_response(scope, exc))
            if gate.counts_body:
                gate.downstream_receive = receive
                receive = gate.receive
            return await gate.answer(await handle(endpoint, scope, receive, send))
        finally:
            # The gate refers to the scope and the scope to the gate: break the cycle
            # so both are freed now, not by the cyclic GC (whose extra collections
            # cost ~10 µs a request under load).
            del scope[GATE_KEY]


class Gate:
    """One request's view of access control (in the ASGI scope under ``GATE_KEY``).

    With ``memory://`` counters (``AccessControl.memory``) the limits are counted by plain
    calls (``limit_now``): a request's rate-limit scopes in one ``add_each``; its quota
    checked and charged in one ``take`` as soon as its cost is known (a ``GET`` before
    the handler, a write in ``admit``), else checked before the handler and charged on
    the answer (``POST /v1/query``: the number of queries is known from its body). Other
    storages are awaited and fail open (``limit``): checked first, charged on the
    answer."""

    __slots__ = (
        "access", "agent", "body_bytes", "charged", "counts_body", "downstream_receive",
        "failed_items", "items", "key", "policy", "quota_key", "quota_window", "rate_window",
        "refused", "scope", "trial",
    )  # fmt: skip

    def __init__(self, access: AccessControl, policy: Policy, scope: Scope) -> None:
        self.access = access
        self.policy = policy
        self.scope = scope
        self.downstream_receive: Receive | None = None
        self.key: StoredKey | None = None
        self.agent: str | None = None
        self.trial = False
        self.items = 1
        self.failed_items = 0
        self.body_bytes = 0
        self.rate_window: Window | None = None
        self.quota_window: Window | None = None
        self.quota_key: tuple[Any, ...] | None = None
        self.refused = False
        self.charged = False  # the quota: charged already (``take``)
        self.counts_body = access.quota.enabled and policy.write

    # -- before the handler ----------------------------------------------------------

    def identify(self) -> None:
        """The API key (401/403) and, on reads, the ``X-Agent-Id`` agent."""
        access, policy = self.access, self.policy
        secret: str | None = None
        header_agent: str | None = None
        for name, value in self.scope["headers"]:
            if name == _API_KEY_HEADER:
                secret = value.decode("latin-1")
            elif name == _AGENT_HEADER:
                header_agent = value.decode("latin-1")
            elif name == _LENGTH_HEADER and self.counts_body and value.isdigit():
                # a write's agent (and so its charge) is known only once its body is
                # read whole, and the server holds the body to this length
                self.body_bytes = int(value)
                self.counts_body = False
        if access.auth_enabled and (
            secret is not None or policy.need != "reader" or access.require_for_reads
        ):
            key = access.keys.authenticate(secret)
            if not role_allows(key.role, policy.need):
                raise AuthorizationError(
                    f"this endpoint needs the {policy.need} role; the API key has {key.role}",
                    code="insufficient_role",
                    details={"required_role": policy.need, "role": key.role},
                )
            self.key = key
        if not policy.write and header_agent is not None and is_hex64(header_agent):
            self.agent = header_agent
            self.scope[AGENT_KEY] = header_agent

    def _counters(self) -> tuple[tuple[Any, ...], ...]:
        """This request's rate-limit counters before the handler (``request_counters``)."""
        key, agent, policy = self.key, self.agent, self.policy
        key_id = None if key is None else key.id
        address = ""
        if key_id is None and agent is None and policy.endpoint_limit is not None:
            client = self.scope.get("client")
            address = str(client[0]) if client else "-"
        return self.access.rates.request_counters(
            policy.path, policy.endpoint_limit, key_id, agent, address
        )

    def limit_now(self, memory: MemoryCounter) -> None:
        """The rate limits and the quota (429) on ``memory://`` counters."""
        access = self.access
        if access.rates.enabled:
            counters = self._counters()
            if counters:
                index, window = memory.add_each(counters)
                self._rated(counters[index][2], window)
        if self.agent is not None and access.quota.enabled and not self.policy.admin:
            if self.policy.method == "GET":
                self._take_quota(memory)
            else:
                self.quota_key = access.quota.key(self.agent)
                self._quota(memory.look(self.quota_key))

    async def limit(self) -> None:
        """``limit_now`` on a shared storage: awaited, one counter at a time, fail open."""
        access = self.access
        if access.rates.enabled:
            for counter in self._counters():
                self._rated(counter[2], await access.rates.hit_key(counter))
        if self.agent is not None and access.quota.enabled and not self.policy.admin:
            self._quota(await access.quota.status(self.agent))

    def _rated(self, scope_name: str, window: Window | None) -> None:
        """Keep the tightest window for the headers; refuse (429) past a limit."""
        if window is None:  # the storage is unreachable: fail open
            return
        current = self.rate_window
        if not window.allowed or current is None or window.remaining < current.remaining:
            self.rate_window = window
        if not window.allowed:
            self.refused = True
            self.access.count_limited(self.policy.path, scope_name)
            raise limited(scope_name, window, self.access.rates.window_seconds)

    def _take_quota(self, memory: MemoryCounter) -> None:
        """Check and charge the agent's quota in one step (its cost is known)."""
        assert self.agent is not None
        cost = request_cost(self.policy.cost, self.items, self.body_bytes)
        self._quota(memory.take(self.access.quota.key(self.agent), cost))
        self.charged = True

    def _quota(self, window: Window | None) -> None:
        """Keep the quota's window for the headers; refuse (429) when none was left."""
        self.quota_window = window
        if window is not None and not window.allowed:
            self.refused = True
            self.access.count_limited(self.policy.path, "quota")
            raise exhausted(window)

    # -- from a write handler, once the signer is known ---------------------------------

    async def admit(self, agent: str | None, items: int) -> None:
        self.items = items
        if agent is None or not self.policy.write or self.policy.admin:
            return
        self.agent = agent
        access = self.access
        if access.breakers.active:
            try:
                self.trial = access.breakers.admit(agent)
            except StemeError:
                self.refused = True
                raise
        rates, quota, memory = access.rates, access.quota, access.memory
        if memory is not None:
            if rates.enabled:
                self._rated("agent", memory.add(rates.agent_counter(agent)))
            if quota.enabled:  # the body is read: the write's cost is known
                self._take_quota(memory)
            return
        if rates.enabled:
            self._rated("agent", await rates.hit_key(rates.agent_counter(agent)))
        if quota.enabled:
            self._quota(await quota.status(agent))

    # -- the answer ------------------------------------------------------------------

    async def receive(self) -> Message:
        """The handler's ``receive`` when the body's size is not declared: counts it."""
        assert self.downstream_receive is not None
        message = await self.downstream_receive()
        if message["type"] == "http.request":
            self.body_bytes += len(message.get("body", b""))
        return message

    async def answer(self, response: Response) -> Response:
        """``response`` (the handler's or a refusal) after the quota charge, with the
        limit headers; tells the agent's breaker how the write went."""
        access, agent, quota_window = self.access, self.agent, None
        if access.quota.enabled and agent is not None and not self.policy.admin:
            quota_window = self.quota_window
            if not self.refused and not self.charged:
                cost = request_cost(self.policy.cost, self.items, self.body_bytes)
                memory = access.memory
                if memory is not None:
                    key = self.quota_key or access.quota.key(agent)
                    quota_window = memory.add(key, cost)
                else:
                    quota_window = await access.quota.charge(agent, cost) or quota_window
        extra = self._answer_headers(response.status_code, quota_window)
        if extra:
            response.raw_headers += extra
        return response

    def _answer_headers(
        self, status: int, quota_window: Window | None
    ) -> list[tuple[bytes, bytes]]:
        access, error, policy = self.access, self.scope.get(ERROR_KEY), self.policy
        if policy.write and self.agent is not None and not policy.admin:
            access.breakers.record(self.agent, self._outcome(status, error), self.trial)
        extra: list[tuple[bytes, bytes]] = []
        if isinstance(error, StemeError) and error.code == "circuit_open":
            retry = error.details.get("retry_after_seconds")
            if retry is not None:  # a 403 has no Retry-After of its own
                extra.append((b"retry-after", str(retry).encode()))
        if self.rate_window is not None:
            extra += rate_headers(self.rate_window, access.rates.window_seconds)
        if quota_window is not None:
            extra += quota_headers(quota_window)
        return extra

    def _outcome(self, status: int, error: object) -> Outcome:
        if status < 400:
            return "failure" if self.failed_items else "success"
        if isinstance(error, SignatureError | ValidationError | SerializationError):
            return "failure"
        return "neutral"


async def admit_agent(request: Request, items: int = 1) -> None:
    """Called by write handlers once the first signer is known (``AGENT_KEY``)."""
    gate = request.scope.get(GATE_KEY)
    if isinstance(gate, Gate):
        agent = request.scope.get(AGENT_KEY)
        await gate.admit(agent if isinstance(agent, str) else None, items)


def note_items(request: Request, items: int, failed: int = 0) -> None:
    """How many items a batch held (quota cost) and how many failed (breaker)."""
    gate = request.scope.get(GATE_KEY)
    if isinstance(gate, Gate):
        gate.items = max(1, items)
        gate.failed_items = failed


__all__ = [
    "GATE_KEY",
    "PUBLIC_PATHS",
    "AccessControl",
    "Gate",
    "Policy",
    "RouteGuard",
    "admit_agent",
    "note_items",
]
