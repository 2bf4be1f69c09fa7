"""Per-agent trust (ARCHITECTURE §2): +0.05 / -0.10, clamped to [0, 1], relaxing toward
0.5 with a 30-day half-life; written through the engine, read from the store."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stemedb.engine import Engine
from stemedb.model.records import TrustOutcome
from stemedb.model.signing import AgentKey
from stemedb.store.trust import apply_outcome, relaxed_trust
from stemedb.sys.faults import FakeClock

T0 = 1_700_000_000
DAY = 86400
HALF_LIFE = 30 * DAY


def outcome(key: AgentKey, accurate: bool, at: int = T0) -> TrustOutcome:
    return TrustOutcome(agent_id=key.agent_id, accurate=accurate, timestamp=at)


def test_unknown_agent_starts_at_one_half(engine: Engine, keys: list[AgentKey]) -> None:
    assert engine.store.trust(keys[0].agent_id, T0) == 0.5
    assert engine.store.trust_row(keys[0].agent_id) is None


@pytest.mark.parametrize(("accurate", "expected"), [(True, 0.55), (False, 0.40)])
def test_one_outcome_moves_trust_by_its_delta(
    engine: Engine, keys: list[AgentKey], accurate: bool, expected: float
) -> None:
    engine.write(outcome(keys[0], accurate))
    assert engine.store.trust(keys[0].agent_id, T0) == pytest.approx(expected)
    assert engine.store.trust(keys[1].agent_id, T0) == 0.5
    row = engine.store.trust_row(keys[0].agent_id)
    assert row is not None and row.outcomes == 1


def test_trust_is_clamped_to_one_and_to_zero(engine: Engine, keys: list[AgentKey]) -> None:
    good, bad = keys[0], keys[1]
    engine.write_many([outcome(good, True, T0 - 20 + i) for i in range(15)])
    engine.write_many([outcome(bad, False, T0 - 20 + i) for i in range(8)])
    assert engine.store.trust(good.agent_id, T0) == pytest.approx(1.0, abs=1e-4)
    assert engine.store.trust(good.agent_id, T0) <= 1.0
    assert engine.store.trust(bad.agent_id, T0) == pytest.approx(0.0, abs=1e-4)
    assert engine.store.trust(bad.agent_id, T0) >= 0.0


def test_idle_trust_relaxes_toward_one_half_with_thirty_day_half_life(
    engine: Engine, keys: list[AgentKey]
) -> None:
    engine.write(outcome(keys[0], True))
    engine.write(outcome(keys[1], False))
    agent_up, agent_down = keys[0].agent_id, keys[1].agent_id
    assert engine.store.trust(agent_up, T0 + HALF_LIFE) == pytest.approx(0.525)
    assert engine.store.trust(agent_up, T0 + 2 * HALF_LIFE) == pytest.approx(0.5125)
    assert engine.store.trust(agent_down, T0 + HALF_LIFE) == pytest.approx(0.45)
    assert engine.store.trust(agent_up, T0 + 3650 * DAY) == pytest.approx(0.5, abs=1e-9)


def test_outcome_applies_to_the_relaxed_score_not_the_stale_one(
    engine: Engine, clock: FakeClock, keys: list[AgentKey]
) -> None:
    engine.write(outcome(keys[0], True, T0))
    clock.set(T0 + HALF_LIFE)
    engine.write(outcome(keys[0], True, T0 + HALF_LIFE))
    assert engine.store.trust(keys[0].agent_id, T0 + HALF_LIFE) == pytest.approx(0.575)


def test_equal_outcomes_count_the_same_in_one_batch_as_in_two(
    engine: Engine, keys: list[AgentKey]
) -> None:
    # Regression: equal outcomes were deduplicated within a batch but both applied
    # when they came in two batches, so the score depended on group-commit timing.
    same = outcome(keys[0], False)
    engine.write(same)
    engine.write(same)
    separate = engine.store.trust(keys[0].agent_id, T0)
    results = engine.write_many([outcome(keys[1], False), outcome(keys[1], False)])
    assert [getattr(r, "status", r) for r in results] == ["created", "created"]
    assert engine.store.trust(keys[1].agent_id, T0) == pytest.approx(separate)
    assert separate == pytest.approx(0.30)


def test_trust_survives_reopen_and_rebuild(
    make_engine: Callable[..., Engine], clock: FakeClock, keys: list[AgentKey]
) -> None:
    engine = make_engine()
    engine.write(outcome(keys[0], True, T0))
    clock.advance(10 * DAY)
    engine.write(outcome(keys[0], False, T0 + 10 * DAY))
    expected = engine.store.trust(keys[0].agent_id, T0 + 20 * DAY)
    engine.close()
    reopened = make_engine()
    assert reopened.store.trust(keys[0].agent_id, T0 + 20 * DAY) == pytest.approx(expected)
    reopened.rebuild()
    assert reopened.store.trust(keys[0].agent_id, T0 + 20 * DAY) == pytest.approx(expected)


def test_pure_trust_functions_match_the_rule() -> None:
    assert relaxed_trust(0.9, T0, T0 - 5) == 0.9  # no relaxation backwards in time
    assert relaxed_trust(0.9, T0, T0 + HALF_LIFE) == pytest.approx(0.7)
    assert apply_outcome(0.98, T0, True, T0) == 1.0
    assert apply_outcome(0.05, T0, False, T0) == 0.0
    assert apply_outcome(0.9, T0, False, T0 + HALF_LIFE) == pytest.approx(0.6)
