"""consensus lens: heaviest value group, each signer counted once per group (lenses.md)."""

from __future__ import annotations

import pytest
from lens_factories import NOW, make_claim

from stemedb.lens import LensConfig, resolve

CONFIG = LensConfig.default()
CLAIMS = [
    make_claim("a", "rare", 0.8, 0, "expert", ("A", "B"), 1),
    make_claim("b", "rare", 0.5, 0, "expert", ("A",), 2),
    make_claim("c", "common", 0.9, 730, "clinical", ("C",), 3),
    make_claim("d", "common", 1.0, 90, "community", ("D",), 4),
]


def test_worked_example_heaviest_group_wins_with_its_best_claim() -> None:
    result = resolve("consensus", CLAIMS, now=NOW, config=CONFIG)
    assert (result.winner, result.winner_value_key) == ("a", "rare")
    assert [r.id for r in result.ranked] == ["a", "b", "c", "d"]
    assert [r.weight for r in result.ranked] == pytest.approx([0.32, 0.2, 0.36, 0.125])
    assert [(g.value_key, g.claim_ids, g.best_tier) for g in result.groups] == [
        ("rare", ("a", "b"), 3),
        ("common", ("c", "d"), 1),
    ]
    assert [g.weight for g in result.groups] == pytest.approx([0.64, 0.485])
    assert [g.share for g in result.groups] == pytest.approx([0.64 / 1.125, 0.485 / 1.125])
    assert result.conflict_score == pytest.approx(0.986263, abs=1e-6)
    assert result.resolution_confidence == pytest.approx(0.455111, abs=1e-6)
    assert result.status == "contested"


def test_co_signature_adds_its_signers_weight_once() -> None:
    single = [make_claim("a", "x", 0.5, 0, "expert", ("A",), 1)]
    cosigned = [make_claim("a", "x", 0.5, 0, "expert", ("A", "B"), 1)]
    assert resolve("consensus", single, now=NOW, config=CONFIG).groups[0].weight == 0.2
    assert resolve("consensus", cosigned, now=NOW, config=CONFIG).groups[0].weight == 0.4


def test_one_agent_cannot_stuff_a_group_with_many_claims() -> None:
    stuffed = [make_claim(f"s{i}", "spam", 1.0, 0, "expert", ("M",), i) for i in range(50)]
    honest = [
        make_claim("h1", "truth", 0.6, 0, "expert", ("A",), 100),
        make_claim("h2", "truth", 0.6, 0, "expert", ("B",), 101),
    ]
    result = resolve("consensus", stuffed + honest, now=NOW, config=CONFIG)
    assert result.winner_value_key == "truth"
    assert [g.weight for g in result.groups] == pytest.approx([0.48, 0.4])


def test_claim_without_signers_still_counts_once() -> None:
    claims = [make_claim("a", "x", 0.5, 0, "expert", (), 1)]
    assert resolve("consensus", claims, now=NOW, config=CONFIG).groups[0].weight == 0.2


def test_equal_groups_break_by_newest_claim() -> None:
    claims = [
        make_claim("old", "x", 0.5, 2, "regulatory", ("A",), 1),
        make_claim("new", "y", 0.5, 1, "regulatory", ("B",), 2),
    ]
    result = resolve("consensus", claims, now=NOW, config=CONFIG)
    assert result.winner == "new"
    assert result.conflict_score == 1.0
