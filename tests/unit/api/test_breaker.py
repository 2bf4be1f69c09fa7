"""The one circuit-breaker state machine (api.resilience.breaker), and both of its
owners (the storage breakers and the per-agent write breakers) running on it."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Gauge

from stemedb.api.resilience.agents import AgentBreakers
from stemedb.api.resilience.breaker import Breaker
from stemedb.api.resilience.storage import CircuitBreaker
from stemedb.config import ResilienceConfig
from stemedb.errors import AuthorizationError, StorageError

RESET = 10.0


def _opened(threshold: int = 3) -> Breaker:
    breaker = Breaker()
    for _ in range(threshold - 1):
        assert not breaker.fail(0.0, threshold)
    assert breaker.fail(0.0, threshold)
    return breaker


def test_breaker_opens_after_threshold_consecutive_failures_and_a_success_resets_the_count() -> (
    None
):
    breaker = Breaker()
    assert not breaker.fail(0.0, 3) and not breaker.fail(0.0, 3)
    assert not breaker.succeed()
    assert breaker.failures == 0 and not breaker.fail(0.0, 3)
    assert breaker.state(0.0, RESET) == "closed" and breaker.admit(0.0, RESET) == "closed"
    assert _opened().state(RESET - 0.1, RESET) == "open"


def test_open_breaker_refuses_then_half_opens_for_one_trial_only() -> None:
    breaker = _opened()
    assert breaker.admit(RESET - 0.1, RESET) == "refused"
    assert breaker.retry_after(RESET - 4, RESET) == pytest.approx(4)
    assert breaker.state(RESET, RESET) == "half_open"
    assert breaker.admit(RESET, RESET) == "trial"
    assert breaker.admit(RESET + 1, RESET) == "refused"  # the trial is running
    breaker.release_trial()  # ended without an outcome
    assert breaker.admit(RESET + 2, RESET) == "trial"


def test_successful_trial_closes_and_failed_trial_opens_again_for_a_full_wait() -> None:
    closing = _opened()
    assert closing.admit(RESET, RESET) == "trial"
    assert closing.succeed() and closing.state(RESET, RESET) == "closed"
    reopening = _opened()
    assert reopening.admit(RESET, RESET) == "trial"
    assert reopening.fail(RESET, 3)
    assert reopening.state(2 * RESET - 0.1, RESET) == "open"
    assert reopening.state(2 * RESET, RESET) == "half_open"


def test_a_trial_without_outcome_gives_way_after_trial_seconds() -> None:
    breaker = _opened()
    assert breaker.admit(RESET, RESET, trial_seconds=RESET) == "trial"
    assert breaker.admit(2 * RESET - 0.1, RESET, trial_seconds=RESET) == "refused"
    assert breaker.admit(2 * RESET, RESET, trial_seconds=RESET) == "trial"


def test_tripped_breaker_stays_open_whatever_happens_until_dropped() -> None:
    breaker = Breaker()
    breaker.trip(0.0)
    assert breaker.state(100 * RESET, RESET) == "open"
    assert breaker.admit(100 * RESET, RESET) == "refused"
    assert not breaker.succeed() and not breaker.fail(1.0, 1)
    assert breaker.state(100 * RESET, RESET) == "open" and breaker.opened_at == 0.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_storage_breaker_runs_on_the_state_machine() -> None:
    clock = Clock()
    breaker = CircuitBreaker("read", enabled=True, threshold=2, reset_seconds=RESET, clock=clock)
    assert isinstance(breaker._breaker, Breaker)
    for _ in range(2):
        breaker.admit()
        breaker.record_failure(StorageError("disk on fire"))
    with pytest.raises(StorageError) as refused:
        breaker.admit()
    assert refused.value.code == "storage_circuit_open"
    assert refused.value.details["retry_after_seconds"] == 10
    clock.now = RESET
    breaker.admit()  # the trial
    with pytest.raises(StorageError):
        breaker.admit()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.snapshot()["opened_total"] == 1


def test_agent_breakers_run_on_the_state_machine() -> None:
    clock = Clock()
    config = ResilienceConfig(failure_threshold=2, reset_timeout_ms=int(RESET * 1000))
    gauge = Gauge("open", "open breakers", registry=CollectorRegistry())
    breakers = AgentBreakers(config, gauge, monotonic=clock, wall=clock)
    agent = "ab" * 32
    breakers.record(agent, "failure", False)
    breakers.record(agent, "failure", False)
    assert isinstance(breakers._breakers[agent], Breaker)
    with pytest.raises(AuthorizationError) as refused:
        breakers.admit(agent)
    assert refused.value.details["retry_after_seconds"] == 10
    view = breakers.view(agent)
    assert (view.state, view.reason, view.retry_at) == (
        "open",
        "2 consecutive failed writes",
        RESET,
    )
    clock.now = RESET
    assert breakers.view(agent).state == "half_open"
    assert breakers.admit(agent) is True
    breakers.record(agent, "success", True)
    assert breakers.view(agent).state == "closed" and breakers.open_count() == 0
    breakers.trip(agent, None)
    clock.now = 100 * RESET
    assert breakers.view(agent).tripped_by == "admin" and breakers.view(agent).state == "open"
    breakers.record(agent, "success", False)
    assert breakers.open_count() == 1
