"""The ``memory://`` counters shared by several HTTP workers (``api.node_counter``): the
same answers as ``MemoryCounter`` for any sequence of calls, one count for every
process that maps the table, a fresh table after a restart, and fail-open when full."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from stemedb.api import node_counter
from stemedb.api.guard.counters import MemoryCounter
from stemedb.api.node_counter import NodeCounter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def random_key(rng: random.Random) -> tuple[object, ...]:
    return (rng.choice([0, 1, 3, 5]), rng.choice([1, 2, 60]), "agent", rng.choice("abcd"))


@pytest.mark.parametrize("seed", range(5))
def test_answers_match_memory_counter_for_random_calls(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    memory = MemoryCounter(clock)
    shared = NodeCounter(tmp_path / "counters", reset=True, clock=clock)
    for _ in range(2000):
        clock.now += rng.choice([0.0, 0.0, 0.01, 0.4, 1.5])
        call = rng.choice(["add", "add_each", "take", "look"])
        if call == "add":
            key, cost = random_key(rng), rng.choice([1, 1, 2, 10])
            assert shared.add(key, cost) == memory.add(key, cost)
        elif call == "add_each":
            keys = [random_key(rng) for _ in range(rng.randint(1, 3))]
            assert shared.add_each(keys) == memory.add_each(keys)
        elif call == "take":
            key, cost = random_key(rng), rng.choice([1, 2, 10])
            assert shared.take(key, cost) == memory.take(key, cost)
        else:
            key = random_key(rng)
            assert shared.look(key) == memory.look(key)


def test_two_processes_mapping_the_table_count_together(tmp_path: Path) -> None:
    clock = FakeClock()
    first = NodeCounter(tmp_path / "counters", reset=True, clock=clock)
    second = NodeCounter(tmp_path / "counters", reset=False, clock=clock)
    key = (3, 60, "agent", "a")
    assert [first.add(key).allowed, second.add(key).allowed, first.add(key).allowed] == [
        True,
        True,
        True,
    ]
    assert second.add(key).allowed is False
    assert first.look(key).remaining == 0


def test_a_restart_empties_the_table(tmp_path: Path) -> None:
    clock = FakeClock()
    key = (1, 60, "agent", "a")
    assert NodeCounter(tmp_path / "counters", reset=True, clock=clock).add(key).allowed
    assert not NodeCounter(tmp_path / "counters", reset=False, clock=clock).add(key).allowed
    assert NodeCounter(tmp_path / "counters", reset=True, clock=clock).add(key).allowed


def test_a_full_table_lets_requests_through_uncounted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(node_counter, "SLOTS", 4)
    monkeypatch.setattr(node_counter, "PROBES", 4)
    clock = FakeClock()
    table = NodeCounter(tmp_path / "counters", reset=True, clock=clock)
    for agent in "abcd":
        table.add((1, 60, "agent", agent))
    assert all(table.add((1, 60, "agent", "e")).allowed for _ in range(3))  # no room
    assert "shared rate-limit table is full" in caplog.text
    clock.now += 61  # every window ended: their slots are taken again
    table.add((1, 60, "agent", "e"))
    assert table.add((1, 60, "agent", "e")).allowed is False
