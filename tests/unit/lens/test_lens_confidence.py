"""confidence lens: highest confidence * decay wins (worked example in lenses.md)."""

from __future__ import annotations

import pytest
from lens_factories import NOW, make_claim

from stemedb.lens import LensConfig, resolve

CONFIG = LensConfig.default()
CLAIMS = [
    make_claim("a", "x", 0.9, 180, "expert", ("A",), 1),
    make_claim("b", "y", 0.5, 1000, "regulatory", ("B",), 2),
    make_claim("c", "x", 1.0, 30, "anecdotal", ("C",), 3),
]


def test_worked_example_tie_breaks_by_later_timestamp() -> None:
    result = resolve("confidence", CLAIMS, now=NOW, config=CONFIG)
    assert (result.winner, result.winner_value_key) == ("c", "x")
    assert [(r.id, r.weight) for r in result.ranked] == [("c", 0.5), ("b", 0.5), ("a", 0.45)]
    assert [(g.value_key, g.weight, g.share, g.claim_ids, g.best_tier) for g in result.groups] == [
        ("x", 0.5, 0.5, ("c", "a"), 3),
        ("y", 0.5, 0.5, ("b",), 0),
    ]
    assert result.conflict_score == 1.0
    assert result.resolution_confidence == pytest.approx(0.5)
    assert result.status == "contested"


def test_tier_weight_is_not_a_factor_of_the_confidence_lens() -> None:
    claims = [
        make_claim("reg", "x", 0.6, 0, "regulatory", ("A",), 1),
        make_claim("anec", "y", 0.7, 0, "anecdotal", ("B",), 2),
    ]
    assert resolve("confidence", claims, now=NOW, config=CONFIG).winner == "anec"


def test_stale_confident_claim_loses_to_fresh_weaker_one() -> None:
    claims = [
        make_claim("stale", "x", 1.0, 60, "anecdotal", ("A",), 1),  # 1.0 * 0.25
        make_claim("fresh", "y", 0.3, 0, "anecdotal", ("B",), 2),
    ]
    assert resolve("confidence", claims, now=NOW, config=CONFIG).winner == "fresh"
