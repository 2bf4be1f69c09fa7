"""votes lens: heaviest summed vote weight wins, ties in consensus order (lenses.md)."""

from __future__ import annotations

import pytest
from lens_factories import NOW, make_claim

from stemedb.lens import LensConfig, resolve

CONFIG = LensConfig.default()
CLAIMS = [
    make_claim("a", "yes", 0.5, 0, "expert", ("A",), 1, vote_weight=1.5),
    make_claim("b", "no", 0.9, 0, "expert", ("B",), 2, vote_weight=1.5),
    make_claim("c", "no", 0.5, 0, "expert", ("C",), 3, vote_weight=0.2),
]


def test_worked_example_vote_tie_breaks_in_consensus_order() -> None:
    result = resolve("votes", CLAIMS, now=NOW, config=CONFIG)
    assert (result.winner, result.winner_value_key) == ("b", "no")
    assert [(r.id, r.weight) for r in result.ranked] == [("b", 1.5), ("a", 1.5), ("c", 0.2)]
    assert [(g.value_key, g.weight, g.share, g.claim_ids) for g in result.groups] == [
        ("no", 1.5, 0.5, ("b", "c")),
        ("yes", 1.5, 0.5, ("a",)),
    ]
    assert result.conflict_score == 1.0
    assert result.resolution_confidence == pytest.approx(0.45)


def test_heavier_votes_beat_higher_confidence() -> None:
    claims = [
        make_claim("popular", "x", 0.2, 0, "anecdotal", ("A",), 1, vote_weight=2.0),
        make_claim("expert", "y", 1.0, 0, "regulatory", ("B",), 2, vote_weight=1.0),
    ]
    result = resolve("votes", claims, now=NOW, config=CONFIG)
    assert result.winner == "popular"
    assert [g.share for g in result.groups] == pytest.approx([2 / 3, 1 / 3])


def test_no_votes_at_all_resolves_like_consensus() -> None:
    claims = [
        make_claim("a", "x", 0.9, 0, "expert", ("A",), 1),
        make_claim("b", "y", 0.3, 0, "expert", ("B",), 2),
    ]
    result = resolve("votes", claims, now=NOW, config=CONFIG)
    assert result.winner == resolve("consensus", claims, now=NOW, config=CONFIG).winner == "a"
    assert [g.share for g in result.groups] == [0.5, 0.5]
