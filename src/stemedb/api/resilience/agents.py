"""Per-agent circuit breakers on the write path (ARCHITECTURE §8).

An agent whose writes fail validation or signature checks ``resilience.failure_threshold``
times in a row is refused (403 ``AuthorizationError``, code ``circuit_open``) for
``resilience.reset_timeout_ms``; then the breaker is half-open: one trial write goes
through, success closes it, a failure opens it again. Other outcomes (storage errors,
conflicts, not found) leave it as it is. The state machine is the storage breakers'
(``api.resilience.breaker``).

Automatic tripping needs ``[auth] enabled``: the agent of a failed write is only its
*claimed* signer (validation runs before the signature check, and a bad signature
proves nothing), so on an open server anyone could lock any agent out; with API keys
only an authenticated writer can. ``resilience.enable_circuit_breaker = false`` turns
automatic tripping off. An admin can trip (``POST /v1/admin/circuit-breaker/trip``,
open until reset) and reset breakers either way.

State lives in memory: a restart closes every breaker. ``stemedb_circuit_breakers_open``
counts the breakers that are not closed.

**Cluster mode** (``share``): an *open* breaker is cluster state. Where a breaker opens
(failures, a failed trial, an admin trip) its row goes to PostgreSQL
(``stemedb_agent_breakers``, bumping the access generation); where one closes (a
successful trial, an admin reset) the row goes. Every node loads the rows when the
generation moves (``absorb``, from the next guarded request on), so an agent tripped on
one node is refused on all. Consecutive failures before a breaker opens are counted
per node (a failing agent spread over N nodes opens after at most N times the threshold
failures), and each node lets its own half-open trial through. docs/design/cluster.md
"Agent breakers" has the reasons.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final, Literal, Protocol

from prometheus_client import Gauge

from stemedb.api.resilience.breaker import Breaker
from stemedb.config import ResilienceConfig
from stemedb.errors import AuthorizationError, StemeError
from stemedb.store.keys import SharedBreaker
from stemedb.wire import BreakerView

log = logging.getLogger("stemedb.api")

Outcome = Literal["success", "failure", "neutral"]
MAX_TRACKED_AGENTS: Final = 100_000


class _AgentBreaker(Breaker):
    """The state machine plus what the views show: when it opened (wall clock), why;
    in cluster mode whether a change of it is on its way to the shared table
    (``publishing``) and the access generation its row was last seen or written at."""

    __slots__ = ("opened_wall", "publishing", "reason", "synced")

    def __init__(self) -> None:
        super().__init__()
        self.opened_wall = 0.0
        self.reason: str | None = None
        self.publishing = 0
        self.synced: int | None = None


class BreakerPublisher(Protocol):
    """Writes breaker changes to the cluster's table (``api.guard.access``): each call
    starts the write off the event loop; the future gives the generation it committed at."""

    node_id: str

    def opened(self, breaker: SharedBreaker) -> asyncio.Future[int]: ...

    def closed(self, agent_id: str) -> asyncio.Future[int]: ...


class AgentBreakers:
    def __init__(
        self,
        config: ResilienceConfig,
        gauge: Gauge,
        *,
        authenticated: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.automatic = config.enable_circuit_breaker and authenticated
        self.threshold = max(1, config.failure_threshold)
        self.reset_seconds = config.reset_timeout_ms / 1000.0
        self._gauge = gauge
        self._monotonic = monotonic
        self._wall = wall
        self._breakers: dict[str, _AgentBreaker] = {}
        self._publisher: BreakerPublisher | None = None
        self._publishing: set[asyncio.Future[int]] = set()

    def share(self, publisher: BreakerPublisher) -> None:
        """Cluster mode: publish opened and closed breakers through ``publisher``."""
        self._publisher = publisher

    @property
    def active(self) -> bool:
        """Whether writes need to be watched at all."""
        return self.automatic or bool(self._breakers)

    # -- the write path ------------------------------------------------------------

    def admit(self, agent: str) -> bool:
        """Refuse a write of an agent whose breaker is open; True for the half-open trial
        (a trial without an outcome after ``reset_seconds`` gives way to the next write)."""
        breaker = self._breakers.get(agent)
        if breaker is None:
            return False
        now = self._monotonic()
        admission = breaker.admit(now, self.reset_seconds, trial_seconds=self.reset_seconds)
        if admission == "refused":
            raise self._refusal(agent, breaker, now)
        return admission == "trial"

    def record(self, agent: str, outcome: Outcome, trial: bool) -> None:
        if outcome == "neutral":
            breaker = self._breakers.get(agent)
            if trial and breaker is not None:
                breaker.release_trial()
            return
        if outcome == "success":
            breaker = self._breakers.get(agent)
            if breaker is not None and not breaker.forced:
                if breaker.opened:
                    log.info("circuit breaker closed: agent_id=%s", agent)
                    self._publish_closed(agent)
                del self._breakers[agent]  # a closed breaker without failures: dropped
                self._update_gauge()
            return
        if not self.automatic:
            return
        breaker = self._breakers.get(agent)
        if breaker is None:
            if len(self._breakers) >= MAX_TRACKED_AGENTS:
                self._forget_closed()
            breaker = self._breakers[agent] = _AgentBreaker()
        if breaker.fail(self._monotonic(), self.threshold):
            self._opened(agent, breaker, f"{breaker.failures} consecutive failed writes")

    # -- administration ------------------------------------------------------------

    def trip(self, agent: str, reason: str | None) -> BreakerView:
        breaker = self._breakers.setdefault(agent, _AgentBreaker())
        breaker.trip(self._monotonic())
        self._opened(agent, breaker, reason or "tripped by an admin")
        return self.view(agent)

    def reset(self, agent: str) -> BreakerView:
        if self._breakers.pop(agent, None) is not None:
            log.info("circuit breaker reset by an admin: agent_id=%s", agent)
            self._update_gauge()
        self._publish_closed(agent)
        return self.view(agent)

    async def published(self) -> None:
        """Wait until every breaker change started so far is in the shared table (an
        admin's trip or reset answers after that; a failed write was logged)."""
        if self._publishing:
            await asyncio.wait(list(self._publishing))

    def absorb(self, rows: list[SharedBreaker], generation: int) -> None:
        """Cluster mode: the shared table as read at ``generation``. Its rows open (or
        update) the breakers here; an open breaker here whose row has gone since it was
        seen (closed or reset on another node) closes. A breaker with a change of its
        own still on its way to the table is left as it is."""
        wall = self._wall()
        now = self._monotonic()
        present = set()
        for row in rows:
            present.add(row.agent_id)
            breaker = self._breakers.get(row.agent_id)
            if breaker is None:
                breaker = self._breakers[row.agent_id] = _AgentBreaker()
            elif breaker.publishing:
                continue
            breaker.forced = row.forced
            breaker.failures = row.failures
            breaker.opened_at = now - max(0.0, wall - row.opened_at)
            breaker.opened_wall = row.opened_at
            breaker.reason = row.reason
            breaker.synced = generation
        for agent, breaker in list(self._breakers.items()):
            if agent in present or not breaker.opened or breaker.publishing:
                continue
            if breaker.synced is not None and breaker.synced <= generation:
                del self._breakers[agent]
        self._update_gauge()

    def view(self, agent: str) -> BreakerView:
        breaker = self._breakers.get(agent)
        if breaker is None:
            return BreakerView(
                agent_id=agent,
                state="closed",
                consecutive_failures=0,
                opened_at=None,
                retry_at=None,
                reason=None,
                tripped_by=None,
            )
        opened = breaker.opened
        retry_at = None
        if opened and not breaker.forced:
            retry_at = breaker.opened_wall + self.reset_seconds
        return BreakerView(
            agent_id=agent,
            state=breaker.state(self._monotonic(), self.reset_seconds),
            consecutive_failures=breaker.failures,
            opened_at=breaker.opened_wall if opened else None,
            retry_at=retry_at,
            reason=breaker.reason if opened else None,
            tripped_by=("admin" if breaker.forced else "failures") if opened else None,
        )

    def list(self) -> list[BreakerView]:
        return [self.view(agent) for agent in sorted(self._breakers)]

    def open_count(self) -> int:
        return sum(1 for b in self._breakers.values() if b.opened)

    # -- internals -----------------------------------------------------------------

    def _opened(self, agent: str, breaker: _AgentBreaker, reason: str) -> None:
        breaker.reason = reason
        breaker.opened_wall = self._wall()
        log.warning("circuit breaker open: agent_id=%s reason=%s", agent, reason)
        self._update_gauge()
        publisher = self._publisher
        if publisher is not None:
            row = SharedBreaker(
                agent_id=agent,
                forced=breaker.forced,
                failures=breaker.failures,
                opened_at=breaker.opened_wall,
                reason=reason,
                node_id=publisher.node_id,
            )
            self._track(publisher.opened(row), breaker)

    def _publish_closed(self, agent: str) -> None:
        if self._publisher is not None:
            self._track(self._publisher.closed(agent), None)

    def _track(self, future: asyncio.Future[int], breaker: _AgentBreaker | None) -> None:
        if breaker is not None:
            breaker.publishing += 1
        self._publishing.add(future)

        def done(finished: asyncio.Future[int]) -> None:
            self._publishing.discard(finished)
            if breaker is not None:
                breaker.publishing -= 1
            if finished.cancelled():
                return
            exc = finished.exception()
            if isinstance(exc, StemeError):
                log.error(
                    "Error: %s: circuit breaker change not shared with the cluster: %s",
                    exc.type_name,
                    exc.message,
                )
            elif exc is not None:
                log.error("Error: StorageError: circuit breaker change not shared: %r", exc)
            elif breaker is not None:
                breaker.synced = finished.result()

        future.add_done_callback(done)

    def _refusal(self, agent: str, breaker: _AgentBreaker, now: float) -> AuthorizationError:
        details: dict[str, object] = {"agent_id": agent, "reason": breaker.reason}
        if breaker.forced:
            message = "the agent's circuit breaker was tripped by an admin; writes are refused"
        else:
            wait = max(1, int(breaker.retry_after(now, self.reset_seconds) + 0.999))
            details["retry_after_seconds"] = wait
            message = (
                f"the agent's circuit breaker is open after repeated failed writes;"
                f" retry in {wait} s"
            )
        return AuthorizationError(message, code="circuit_open", details=details)

    def _forget_closed(self) -> None:
        for agent in [a for a, b in self._breakers.items() if not b.opened]:
            del self._breakers[agent]

    def _update_gauge(self) -> None:
        self._gauge.set(self.open_count())


__all__ = ["AgentBreakers", "BreakerPublisher", "BreakerView", "Outcome"]
