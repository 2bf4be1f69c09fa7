"""layered lens: the most authoritative populated tier decides (lenses.md)."""

from __future__ import annotations

import pytest
from lens_factories import NOW, make_claim

from stemedb.lens import LensConfig, resolve

CONFIG = LensConfig.default()
CLAIMS = [
    make_claim("r", "contraindicated", 0.3, 400, "regulatory", ("R",), 1),
    make_claim("o", "safe", 0.9, 365, "observational", ("O",), 2),
    *(make_claim(f"a{i}", "safe", 1.0, 0, "anecdotal", (f"N{i}",), 3 + i) for i in range(3)),
]


def test_worked_example_regulatory_claim_decides() -> None:
    result = resolve("layered", CLAIMS, now=NOW, config=CONFIG)
    assert (result.winner, result.winner_value_key) == ("r", "contraindicated")
    assert result.deciding_tier == 0
    assert [r.id for r in result.ranked] == ["r", "o", "a2", "a1", "a0"]
    assert [r.weight for r in result.ranked] == pytest.approx([0.3, 0.27, 0.1, 0.1, 0.1])
    assert [(g.value_key, g.share, g.claim_ids, g.best_tier) for g in result.groups] == [
        ("contraindicated", 1.0, ("r",), 0),
        ("safe", 0.0, ("o", "a2", "a1", "a0"), 2),
    ]
    assert [g.weight for g in result.groups] == pytest.approx([0.3, 0.27])
    assert result.conflict_score == 0.0
    assert result.resolution_confidence == pytest.approx(0.3)
    assert result.status == "unanimous"


def test_consensus_on_the_same_claims_picks_the_crowd() -> None:
    result = resolve("consensus", CLAIMS, now=NOW, config=CONFIG)
    assert (result.winner, result.winner_value_key) == ("o", "safe")
    assert [g.weight for g in result.groups] == pytest.approx([0.57, 0.3])


def test_conflict_inside_the_deciding_tier_is_reported() -> None:
    claims = [
        make_claim("c1", "x", 0.8, 0, "clinical", ("A",), 1),
        make_claim("c2", "y", 0.8, 0, "clinical", ("B",), 2),
        make_claim("n", "x", 1.0, 0, "anecdotal", ("C",), 3),
    ]
    result = resolve("layered", claims, now=NOW, config=CONFIG)
    assert result.deciding_tier == 1
    assert result.winner == "c2"  # equal in tier 1: the higher lsn wins
    assert result.conflict_score == 1.0
    assert [g.share for g in result.groups] == [0.5, 0.5]


def test_lower_tier_support_is_ignored_once_a_higher_tier_speaks() -> None:
    claims = [
        make_claim("e", "x", 0.9, 0, "expert", ("A",), 1),
        *(make_claim(f"n{i}", "y", 1.0, 0, "community", (f"N{i}",), 10 + i) for i in range(20)),
    ]
    result = resolve("layered", claims, now=NOW, config=CONFIG)
    assert (result.winner, result.deciding_tier) == ("e", 3)
