"""Per-agent circuit breakers on the write path (ARCHITECTURE §8).

An agent whose writes fail validation or signature checks ``resilience.failure_threshold``
times in a row is refused (403 ``AuthorizationError``, code ``circuit_open``) for
``resilience.reset_timeout_ms``; then the breaker is half-open: one trial write goes
through, success closes it, a failure opens it again. Other outcomes (storage errors,
conflicts, not found) leave it as it is.

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

from stemedb.config import ResilienceConfig
from stemedb.errors import AuthorizationError
from stemedb.wire import BreakerStateName, BreakerView

log = logging.getLogger("stemedb.api")

Outcome = Literal["success", "failure", "neutral"]
MAX_TRACKED_AGENTS: Final = 100_000


class _Breaker:
    __slots__ = ("failures", "forced", "opened_mono", "opened_wall", "reason", "state", "trial")

    def __init__(self) -> None:
        self.state: BreakerStateName = "closed"
        self.failures = 0
        self.opened_mono = 0.0
        self.opened_wall = 0.0
        self.reason: str | None = None
        self.forced = False
        self.trial: float | None = None  # monotonic start of the half-open trial


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
        self._breakers: dict[str, _Breaker] = {}

    @property
    def active(self) -> bool:
        """Whether writes need to be watched at all."""
        return self.automatic or bool(self._breakers)

    # -- the write path ------------------------------------------------------------

    def admit(self, agent: str) -> bool:
        """Refuse a write of an agent whose breaker is open; True for the half-open trial."""
        breaker = self._breakers.get(agent)
        if breaker is None or breaker.state == "closed":
            return False
        now = self._monotonic()
        waited = now - breaker.opened_mono
        if breaker.state == "open" and not breaker.forced and waited >= self.reset_seconds:
            breaker.state = "half_open"
            breaker.trial = None
        if breaker.state == "half_open":
            stale_trial = breaker.trial is not None and now - breaker.trial >= self.reset_seconds
            if breaker.trial is None or stale_trial:
                breaker.trial = now
                return True
        raise self._refusal(agent, breaker, now)

    def record(self, agent: str, outcome: Outcome, trial: bool) -> None:
        if outcome == "neutral":
            breaker = self._breakers.get(agent)
            if trial and breaker is not None and breaker.state == "half_open":
                breaker.trial = None
            return
        if outcome == "success":
            breaker = self._breakers.get(agent)
            if breaker is not None and not breaker.forced:
                if breaker.state != "closed":
                    log.info("circuit breaker closed: agent_id=%s", agent)
                del self._breakers[agent]
                self._update_gauge()
            return
        if not self.automatic:
            return
        breaker = self._breakers.get(agent)
        if breaker is None:
            if len(self._breakers) >= MAX_TRACKED_AGENTS:
                self._forget_closed()
            breaker = self._breakers[agent] = _Breaker()
        breaker.failures += 1
        if breaker.state == "half_open" or (
            breaker.state == "closed" and breaker.failures >= self.threshold
        ):
            self._open(agent, breaker, f"{breaker.failures} consecutive failed writes", False)

    # -- administration ------------------------------------------------------------

    def trip(self, agent: str, reason: str | None) -> BreakerView:
        breaker = self._breakers.setdefault(agent, _Breaker())
        self._open(agent, breaker, reason or "tripped by an admin", True)
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
                agent_id=agent, state="closed", consecutive_failures=0, opened_at=None,
                retry_at=None, reason=None, tripped_by=None,
            )  # fmt: skip
        opened = breaker.state != "closed"
        retry_at = None
        if opened and not breaker.forced:
            retry_at = breaker.opened_wall + self.reset_seconds
        state = breaker.state
        if state == "open" and retry_at is not None and self._wall() >= retry_at:
            state = "half_open"
        return BreakerView(
            agent_id=agent,
            state=state,
            consecutive_failures=breaker.failures,
            opened_at=breaker.opened_wall if opened else None,
            retry_at=retry_at,
            reason=breaker.reason if opened else None,
            tripped_by=("admin" if breaker.forced else "failures") if opened else None,
        )

    def list(self) -> list[BreakerView]:
        return [self.view(agent) for agent in sorted(self._breakers)]

    def open_count(self) -> int:
        return sum(1 for b in self._breakers.values() if b.state != "closed")

    # -- internals -----------------------------------------------------------------

    def _open(self, agent: str, breaker: _Breaker, reason: str, forced: bool) -> None:
        breaker.state = "open"
        breaker.forced = forced
        breaker.reason = reason
        breaker.trial = None
        breaker.opened_mono = self._monotonic()
        breaker.opened_wall = self._wall()
        log.warning("circuit breaker open: agent_id=%s reason=%s", agent, reason)
        self._update_gauge()

    def _refusal(self, agent: str, breaker: _Breaker, now: float) -> AuthorizationError:
        details: dict[str, object] = {"agent_id": agent, "reason": breaker.reason}
        if breaker.forced:
            message = "the agent's circuit breaker was tripped by an admin; writes are refused"
        else:
            wait = max(1, int(self.reset_seconds - (now - breaker.opened_mono) + 0.999))
            details["retry_after_seconds"] = wait
            message = (
                f"the agent's circuit breaker is open after repeated failed writes;"
                f" retry in {wait} s"
            )
        return AuthorizationError(message, code="circuit_open", details=details)

    def _forget_closed(self) -> None:
        for agent in [a for a, b in self._breakers.items() if b.state == "closed"]:
            del self._breakers[agent]

    def _update_gauge(self) -> None:
        self._gauge.set(self.open_count())


__all__ = ["AgentBreakers", "BreakerView", "Outcome"]
