"""The route guard: what runs around a guarded route's handler (``RouteGuard``), and one
request's view of access control (``Gate``).

Before the handler: authentication (401/403), then the ``endpoint``, ``key`` and, for
reads, ``agent`` rate limits and the reader's quota (429). A write's agent is its first
signer, known only once the body is decoded: the write handlers call ``admit_agent``
(breaker 403, ``agent`` limit and quota 429). On the answer (the handler's response or
a refusal, before it is sent) the gate charges the quota, adds the
``RateLimit``/``X-RateLimit-*`` and ``X-Quota-*`` headers to it and tells the agent's
breaker how the write went.

The counting is written once, over either storage (``api.guard.counters``): each step
hands its counters to the storage's ``count`` and reads the answer (``_counted``).
``memory://`` answers at once (no coroutine on the read path) and can check and charge
a quota in one step (``take``), so a request is charged as soon as its cost is known
(a ``GET`` before the handler, a write in ``admit``; ``POST /v1/query``: the number of
queries is known from its body, so on the answer). A shared storage is awaited, fails
open, and every request is charged on its answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from stemedb.api.guard.counters import Counted, Window
from stemedb.api.guard.policy import Policy
from stemedb.api.guard.quota import exhausted, quota_headers, request_cost
from stemedb.api.guard.ratelimit import limited, rate_headers
from stemedb.api.http.errors import AGENT_KEY, ERROR_KEY
from stemedb.api.http.routing import Handler, envelope_response, handle
from stemedb.api.resilience.agents import Outcome
from stemedb.errors import (
    AuthorizationError,
    SerializationError,
    SignatureError,
    StemeError,
    ValidationError,
)
from stemedb.model.apikey import role_allows
from stemedb.model.signing import is_hex64
from stemedb.store.keys import StoredKey

if TYPE_CHECKING:
    from stemedb.api.guard.access import AccessControl

GATE_KEY: Final = "stemedb.gate"
_API_KEY_HEADER: Final = b"x-api-key"
_AGENT_HEADER: Final = b"x-agent-id"
_LENGTH_HEADER: Final = b"content-length"

Keys = Sequence[tuple[Any, ...]]


class RouteGuard:
    """A route's guard (``routing.RouteApp.guard``): runs the request's ``Gate``."""

    __slots__ = ("access", "policy")

    def __init__(self, access: AccessControl, policy: Policy) -> None:
        self.access = access
        self.policy = policy

    async def respond(
        self, scope: Scope, receive: Receive, send: Send, endpoint: Handler
    ) -> Response:
        access = self.access
        access.refresh()
        gate = Gate(access, self.policy, scope)
        scope[GATE_KEY] = gate
        try:
            try:
                if access.watch is not None:  # cluster mode: the cluster's keys
                    await access.refresh_shared()
                gate.identify()
                keys, quota_key, cost = gate.before()
                if keys or quota_key is not None:
                    memory = access.memory
                    if memory is not None:
                        counted = memory.count(keys, quota_key, cost)
                    else:
                        counted = await access.counters.count(keys, quota_key)
                    gate.counted(keys, quota_key, cost, counted)
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
    """One request's view of access control (in the ASGI scope under ``GATE_KEY``)."""

    __slots__ = (
        "access",
        "agent",
        "body_bytes",
        "charged",
        "counts_body",
        "downstream_receive",
        "failed_items",
        "items",
        "key",
        "policy",
        "quota_key",
        "quota_window",
        "rate_window",
        "refused",
        "scope",
        "trial",
    )

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

    def before(self) -> tuple[Keys, tuple[Any, ...] | None, int | None]:
        """What to count before the handler: the rate-limit counters, the reader's quota
        counter (None: none) and, when it can be charged now, its cost."""
        access = self.access
        keys = self._rate_counters() if access.rates.active else ()
        if self.agent is None or not access.quota.enabled or self.policy.admin:
            return keys, None, None
        # a GET's cost is known now; POST /v1/query's once its body is read
        return keys, *self._quota_counter(known_cost=self.policy.method == "GET")

    def _rate_counters(self) -> Keys:
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

    def _quota_counter(self, *, known_cost: bool) -> tuple[tuple[Any, ...], int | None]:
        """The agent's quota counter, and the cost to charge now (None: on the answer)."""
        assert self.agent is not None
        access = self.access
        quota_key = self.quota_key = access.quota.key(self.agent)
        if not known_cost or access.memory is None:  # a shared storage: on the answer
            return quota_key, None
        return quota_key, request_cost(self.policy.cost, self.items, self.body_bytes)

    def counted(
        self, keys: Keys, quota_key: tuple[Any, ...] | None, cost: int | None, counted: Counted
    ) -> None:
        """Read what the storage's ``count`` did with ``keys``, ``quota_key`` and ``cost``
        (charged now unless None): keep the windows for the headers, refuse (429) past a
        limit."""
        index, rate_window, quota_window = counted
        if rate_window is not None:
            self._rated(keys[index][2], rate_window)
        if quota_key is not None:
            self._quota(quota_window)
            if cost is not None:
                self.charged = True

    def _rated(self, scope_name: str, window: Window) -> None:
        """Keep the tightest window for the headers; refuse (429) past a limit."""
        current = self.rate_window
        if not window.allowed or current is None or window.remaining < current.remaining:
            self.rate_window = window
        if not window.allowed:
            self.refused = True
            self.access.count_limited(self.policy.path, scope_name)
            raise limited(scope_name, window, self.access.rates.window_seconds)

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
        rates, memory = access.rates, access.memory
        keys = rates.agent_counters(agent) if rates.active else ()
        quota_key, cost = None, None
        if access.quota.enabled:  # the body is read: the write's cost is known
            quota_key, cost = self._quota_counter(known_cost=True)
        if not keys and quota_key is None:
            return
        if memory is not None:
            counted = memory.count(keys, quota_key, cost)
        else:
            counted = await access.counters.count(keys, quota_key)
        self.counted(keys, quota_key, cost, counted)

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
                key = self.quota_key or access.quota.key(agent)
                memory = access.memory
                if memory is not None:
                    quota_window = memory.add(key, cost)
                else:
                    quota_window = await access.counters.charge(key, cost) or quota_window
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


__all__ = ["GATE_KEY", "Gate", "RouteGuard", "admit_agent", "note_items"]
