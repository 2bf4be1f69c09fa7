"""resolve(): lens names, empty input, input validation, invariants, public surface."""

from __future__ import annotations

import math

import pytest
from lens_factories import NOW, make_claim

import stemedb.lens as lens_pkg
from stemedb.errors import ValidationError
from stemedb.lens import DEFAULT_LENS, LENS_NAMES, LensConfig, resolve

CONFIG = LensConfig.default()
CLAIMS = [
    make_claim("a", "rare", 0.8, 10, "expert", ("A", "B"), 1, trust=0.7, vote_weight=1.0),
    make_claim("b", "common", 0.6, 2, "clinical", ("C",), 2, trust=0.4, vote_weight=0.5),
    make_claim("c", "rare", 0.9, 40, "anecdotal", ("D",), 3, trust=0.9),
    make_claim("d", "unknown", 0.3, 0, "regulatory", ("E",), 4),
]


def test_public_surface_is_pinned() -> None:
    assert LENS_NAMES == (
        "recency",
        "confidence",
        "consensus",
        "votes",
        "authority",
        "layered",
        "skeptic",
    )
    assert DEFAULT_LENS == "consensus"
    assert set(lens_pkg.__all__) >= {
        "Claim",
        "LensConfig",
        "Resolution",
        "RankedClaim",
        "ValueGroup",
        "LENS_NAMES",
        "DEFAULT_LENS",
        "resolve",
        "decay",
        "tier_of",
    }


def test_unknown_lens_is_a_validation_error_on_field_lens() -> None:
    with pytest.raises(ValidationError) as info:
        resolve("popularity", CLAIMS, now=NOW, config=CONFIG)
    assert info.value.field == "lens"
    assert info.value.rule.startswith("unknown lens")


@pytest.mark.parametrize("lens", LENS_NAMES)
def test_empty_input_has_no_winner_and_zero_scores(lens: str) -> None:
    result = resolve(lens, [], now=NOW, config=CONFIG)
    assert (result.winner, result.winner_value_key, result.status) == (None, None, "empty")
    assert (result.resolution_confidence, result.conflict_score) == (0.0, 0.0)
    assert (result.candidates_count, result.ranked, result.groups) == (0, (), ())


@pytest.mark.parametrize("lens", LENS_NAMES)
def test_winner_heads_ranked_and_groups(lens: str) -> None:
    result = resolve(lens, CLAIMS, now=NOW, config=CONFIG)
    assert result.lens == lens
    assert result.candidates_count == len(result.ranked) == 4
    assert sorted(r.id for r in result.ranked) == ["a", "b", "c", "d"]
    assert sorted(i for g in result.groups for i in g.claim_ids) == ["a", "b", "c", "d"]
    assert math.fsum(g.share for g in result.groups) == pytest.approx(1.0)
    assert 0.0 <= result.conflict_score <= 1.0
    assert 0.0 <= result.resolution_confidence <= 1.0
    if lens == "skeptic":
        assert result.winner is None
    else:
        assert result.winner == result.ranked[0].id
        assert result.winner_value_key == result.groups[0].value_key


@pytest.mark.parametrize(
    ("field", "claim"),
    [
        ("source_class", make_claim("x", "v", 0.5, 0, "gossip", ("A",), 1)),
        ("confidence", make_claim("x", "v", 1.5, 0, "expert", ("A",), 1)),
        ("confidence", make_claim("x", "v", math.nan, 0, "expert", ("A",), 1)),
        ("trust", make_claim("x", "v", 0.5, 0, "expert", ("A",), 1, trust=-0.1)),
        ("vote_weight", make_claim("x", "v", 0.5, 0, "expert", ("A",), 1, vote_weight=math.inf)),
    ],
)
def test_out_of_range_claim_is_rejected(field: str, claim: lens_pkg.Claim) -> None:
    with pytest.raises(ValidationError) as info:
        resolve("consensus", [claim], now=NOW, config=CONFIG)
    assert info.value.field == field


def test_non_finite_now_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        resolve("consensus", CLAIMS, now=math.nan, config=CONFIG)
    assert info.value.field == "now"


def test_now_moves_decay_for_time_travel() -> None:
    claims = [
        make_claim("fresh_anecdote", "x", 1.0, 0, "anecdotal", ("A",), 1),
        make_claim("regulation", "y", 0.5, 0, "regulatory", ("B",), 2),
    ]
    today = resolve("confidence", claims, now=NOW, config=CONFIG)
    later = resolve("confidence", claims, now=NOW + 60 * 86_400, config=CONFIG)
    assert (today.winner, later.winner) == ("fresh_anecdote", "regulation")


def test_resolution_is_a_msgspec_struct_that_encodes() -> None:
    import msgspec

    result = resolve("layered", CLAIMS, now=NOW, config=CONFIG)
    decoded = msgspec.json.decode(msgspec.json.encode(result), type=lens_pkg.Resolution)
    assert decoded == result
