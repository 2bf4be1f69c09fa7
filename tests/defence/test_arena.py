"""A small arena (bench/arena.py, docs/design/defence.md) against a real engine: what
the published table claims, in the direction that matters — with the quarantine on,
every lens recovers the truth at least as well as with it off under every attack, and
strictly better (for the lenses the attack beats) under spam and a Sybil swarm; at most
1 % of honest writes are quarantined. Seeded: the same populations every run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).parents[2] / "bench"
SEED = 17


def _arena() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stemedb_bench_arena", BENCH / "arena.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def table() -> dict[tuple[str, str], dict[str, Any]]:
    arena = _arena()
    return {(r["attack"], r["defences"]): r for r in arena.run_arena(SEED, arena.SMALL)}


@pytest.mark.parametrize(
    "attack", ["none", "spam", "sybil", "vote_ring", "slow_poisoner", "source_poisoning"]
)
def test_defences_recover_at_least_as_well_as_without_them(
    table: dict[tuple[str, str], dict[str, Any]], attack: str
) -> None:
    off, on = table[(attack, "off")]["recovery"], table[(attack, "on")]["recovery"]
    worse = {lens: (off[lens], on[lens]) for lens in off if on[lens] < off[lens]}
    assert not worse, worse


@pytest.mark.parametrize("attack", ["spam", "sybil"])
def test_defences_beat_spam_and_sybil_swarms(
    table: dict[tuple[str, str], dict[str, Any]], attack: str
) -> None:
    off, on = table[(attack, "off")]["recovery"], table[(attack, "on")]["recovery"]
    assert sum(on.values()) > sum(off.values())
    assert on["recency"] > off["recency"]  # the newest claim is the attacker's without them


def test_honest_false_quarantine_is_at_most_one_percent(
    table: dict[tuple[str, str], dict[str, Any]],
) -> None:
    for (attack, defences), row in table.items():
        assert row["honest_writes"] > 100, attack
        if defences == "off":
            assert row["honest_quarantined"] == 0
        assert row["honest_false_quarantine_rate"] <= 0.01, (attack, row)


def test_the_same_seed_gives_the_same_table(table: dict[tuple[str, str], dict[str, Any]]) -> None:
    arena = _arena()
    again = arena.run_one(SEED, "sybil", True, arena.SMALL)
    assert again == table[("sybil", "on")]
