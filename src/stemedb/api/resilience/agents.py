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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final, Literal

from prometheus_client import Gauge

from stemedb.api.resilience.breaker import Breaker
from stemedb.config import ResilienceConfig
from stemedb.errors import AuthorizationError
from stemedb.wire import BreakerView

log = logging.getLogger("stemedb.api")

Outcome = Literal["success", "failure", "neutral"]
MAX_TRACKED_AGENTS: Final = 100_000


class _AgentBreaker(Breaker):
    """The state machine plus what the views show: when it opened (wall clock), why."""

    __slots__ = ("opened_wall", "reason")

    def __init__(self) -> None:
        super().__init__()
        self.opened_wall = 0.0
        self.reason: str | None = None


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
        return self.view(agent)

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


__all__ = ["AgentBreakers", "BreakerView", "Outcome"]
