"""skeptic lens: no winner; every value with its share, status and entropy (lenses.md)."""

from __future__ import annotations

import pytest
from lens_factories import NOW, make_claim

from stemedb.lens import LensConfig, resolve

CONFIG = LensConfig.default()
CLAIMS = [
    make_claim("a", "rare", 0.8, 0, "expert", ("A",), 1),
    make_claim("b", "rare", 0.6, 0, "expert", ("B",), 2),
    make_claim("c", "common", 0.7, 0, "expert", ("C",), 3),
]


def test_worked_example_shares_and_entropy() -> None:
    result = resolve("skeptic", CLAIMS, now=NOW, config=CONFIG)
    assert (result.winner, result.winner_value_key) == (None, None)
    assert [r.id for r in result.ranked] == ["a", "b", "c"]
    assert [r.weight for r in result.ranked] == pytest.approx([0.32, 0.24, 0.28])
    assert [(g.value_key, g.claim_ids) for g in result.groups] == [
        ("rare", ("a", "b")),
        ("common", ("c",)),
    ]
    assert [g.weight for g in result.groups] == pytest.approx([0.56, 0.28])
    assert [g.share for g in result.groups] == pytest.approx([2 / 3, 1 / 3])
    assert result.conflict_score == pytest.approx(0.918296, abs=1e-6)
    assert result.resolution_confidence == pytest.approx(0.533333, abs=1e-6)
    assert result.status == "contested"


def test_one_value_is_unanimous_with_zero_conflict() -> None:
    claims = [
        make_claim(f"c{i}", "same", 0.1 * (i + 1), i, "expert", (f"A{i}",), i) for i in range(4)
    ]
    result = resolve("skeptic", claims, now=NOW, config=CONFIG)
    assert (result.status, result.conflict_score) == ("unanimous", 0.0)
    assert result.groups[0].share == 1.0


def test_top_share_at_threshold_is_agreed() -> None:
    claims = [
        *(make_claim(f"y{i}", "yes", 0.5, 0, "expert", (f"Y{i}",), i) for i in range(4)),
        make_claim("n", "no", 0.5, 0, "expert", ("N",), 10),
    ]
    result = resolve("skeptic", claims, now=NOW, config=CONFIG)
    assert result.groups[0].share == pytest.approx(0.8)
    assert result.status == "agreed"
    assert 0.0 < result.conflict_score < 1.0


@pytest.mark.parametrize("values", [2, 3, 7])
def test_even_split_is_exactly_maximal_conflict(values: int) -> None:
    claims = [
        make_claim(f"c{i}", f"v{i}", 0.7, 3, "clinical", (f"A{i}",), i) for i in range(values)
    ]
    result = resolve("skeptic", claims, now=NOW, config=CONFIG)
    assert result.conflict_score == 1.0
    assert result.status == "contested"


def test_agreed_share_is_configurable() -> None:
    result = resolve("skeptic", CLAIMS, now=NOW, config=LensConfig(skeptic_agreed_share=0.6))
    assert result.status == "agreed"
