"""recency lens: the newest claim wins (worked example in docs/design/lenses.md)."""

from __future__ import annotations

import math

import pytest
from lens_factories import DAY, NOW, make_claim

from stemedb.lens import LensConfig, resolve

CONFIG = LensConfig.default()
CLAIMS = [
    make_claim("a", "rare", 0.9, 30, "expert", ("A",), 1),
    make_claim("b", "common", 0.6, 0, "community", ("B",), 2),
    make_claim("c", "rare", 0.8, 60, "expert", ("C",), 3),
]


def test_worked_example_newest_claim_wins() -> None:
    result = resolve("recency", CLAIMS, now=NOW, config=CONFIG)
    assert (result.winner, result.winner_value_key) == ("b", "common")
    assert [(r.id, r.weight) for r in result.ranked] == [("b", 1.0), ("a", 0.5), ("c", 0.25)]
    assert [(g.value_key, g.weight, g.claim_ids) for g in result.groups] == [
        ("common", 1.0, ("b",)),
        ("rare", 0.5, ("a", "c")),
    ]
    assert [g.share for g in result.groups] == pytest.approx([2 / 3, 1 / 3])
    assert result.conflict_score == pytest.approx(0.918296, abs=1e-6)
    assert result.resolution_confidence == pytest.approx(0.4)
    assert result.status == "contested"


def test_newest_wins_even_with_low_confidence_and_low_tier() -> None:
    claims = [
        make_claim("old", "x", 1.0, 1, "regulatory", ("A",), 1),
        make_claim("new", "y", 0.01, 0, "anecdotal", ("B",), 2),
    ]
    assert resolve("recency", claims, now=NOW, config=CONFIG).winner == "new"


def test_equal_timestamps_break_by_higher_lsn() -> None:
    claims = [
        make_claim("hi", "x", 0.5, 0, "expert", ("A",), 9),
        make_claim("lo", "y", 0.5, 0, "expert", ("B",), 3),
    ]
    result = resolve("recency", claims, now=NOW, config=CONFIG)
    assert result.winner == "hi"
    assert result.conflict_score == 1.0


def test_recency_weights_do_not_depend_on_now() -> None:
    later = resolve("recency", CLAIMS, now=NOW + 365 * DAY, config=CONFIG)
    assert later == resolve("recency", CLAIMS, now=NOW, config=CONFIG)


def test_recency_half_life_is_configurable() -> None:
    config = LensConfig(recency_half_life_days=60.0)
    result = resolve("recency", CLAIMS, now=NOW, config=config)
    assert [r.weight for r in result.ranked] == pytest.approx([1.0, math.sqrt(0.5), 0.5])
