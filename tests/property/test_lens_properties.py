"""Property tests of the lens layer (docs/design/lenses.md §7).

- no lens result depends on the candidate order;
- skeptic conflict_score is 0 for one value and exactly 1 for an even split;
- layered lets one regulatory claim beat 100 anecdotal ones, whatever the confidences;
- decay is monotone non-increasing in age and never leaves [0, 1].
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from stemedb.lens import LENS_NAMES, Claim, LensConfig, decay, resolve
from stemedb.model.records import SOURCE_CLASSES

NOW = 1_700_000_000
YEAR = 365 * 86_400
CONFIG = LensConfig.default()

confidences = st.floats(min_value=0.0, max_value=1.0)
timestamps = st.integers(min_value=NOW - 5 * YEAR, max_value=NOW + 86_400)
agents = st.sampled_from([f"agent{i}" for i in range(6)])


@st.composite
def claim_lists(draw: st.DrawFn, max_size: int = 12) -> list[Claim]:
    size = draw(st.integers(min_value=0, max_value=max_size))
    return [
        Claim(
            id=f"{i:04x}",
            lsn=draw(st.integers(min_value=1, max_value=8)),  # duplicates on purpose
            value_key=draw(st.sampled_from(["a", "b", "c", "d"])),
            confidence=draw(confidences),
            timestamp=draw(st.sampled_from([NOW - 86_400, NOW]))
            if draw(st.booleans())
            else draw(timestamps),
            source_class=draw(st.sampled_from(SOURCE_CLASSES)),
            signers=tuple(draw(st.lists(agents, min_size=0, max_size=3))),
            trust=draw(confidences),
            vote_weight=draw(st.sampled_from([0.0, 0.5, 1.0]))
            if draw(st.booleans())
            else draw(st.floats(min_value=0.0, max_value=5.0)),
        )
        for i in range(size)
    ]


@settings(max_examples=300, deadline=None)
@given(claims=claim_lists(), lens=st.sampled_from(LENS_NAMES), data=st.data())
def test_result_does_not_depend_on_candidate_order(
    claims: list[Claim], lens: str, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(claims))
    assert resolve(lens, shuffled, now=NOW, config=CONFIG) == resolve(
        lens, claims, now=NOW, config=CONFIG
    )


@settings(deadline=None)
@given(claims=claim_lists(), lens=st.sampled_from(LENS_NAMES))
def test_scores_and_shares_stay_in_range(claims: list[Claim], lens: str) -> None:
    result = resolve(lens, claims, now=NOW, config=CONFIG)
    assert 0.0 <= result.conflict_score <= 1.0
    assert 0.0 <= result.resolution_confidence <= 1.0
    assert result.candidates_count == len(result.ranked) == len(claims)
    if claims:
        assert math.fsum(g.share for g in result.groups) == pytest.approx(1.0)
        if lens != "skeptic":
            assert result.winner == result.ranked[0].id
            assert result.winner_value_key == result.groups[0].value_key


@given(claims=claim_lists(max_size=10))
def test_skeptic_unanimity_has_zero_conflict(claims: list[Claim]) -> None:
    same = [replace(c, value_key="one") for c in claims]
    result = resolve("skeptic", same, now=NOW, config=CONFIG)
    assert result.conflict_score == 0.0
    assert result.status == ("unanimous" if same else "empty")


@settings(deadline=None)
@given(template=claim_lists(max_size=6), values=st.integers(min_value=2, max_value=9))
def test_skeptic_even_split_has_conflict_exactly_one(template: list[Claim], values: int) -> None:
    if not template:
        template = [Claim("0", 1, "a", 0.5, NOW, "expert", ("agent0",))]
    claims = [
        replace(
            c,
            id=f"{v}-{c.id}",
            value_key=f"value{v}",
            signers=tuple(f"{s}@{v}" for s in c.signers),
        )
        for v in range(values)
        for c in template
    ]
    result = resolve("skeptic", claims, now=NOW, config=CONFIG)
    assert result.conflict_score == 1.0
    assert len(result.groups) == values
    assert result.status == "contested"


@settings(deadline=None)
@given(
    regulatory_confidence=confidences,
    regulatory_timestamp=st.integers(min_value=NOW - 50 * YEAR, max_value=NOW + 86_400),
    anecdote_confidences=st.lists(confidences, min_size=100, max_size=100),
    anecdote_values=st.lists(st.sampled_from(["x", "y"]), min_size=100, max_size=100),
)
def test_layered_one_regulatory_claim_beats_a_hundred_anecdotes(
    regulatory_confidence: float,
    regulatory_timestamp: int,
    anecdote_confidences: list[float],
    anecdote_values: list[str],
) -> None:
    anecdotes = [
        Claim(f"n{i:03d}", 10 + i, value, conf, NOW, "anecdotal", (f"crowd{i}",))
        for i, (conf, value) in enumerate(zip(anecdote_confidences, anecdote_values, strict=True))
    ]
    regulation = Claim(
        "reg", 1, "official", regulatory_confidence, regulatory_timestamp, "regulatory", ("fda",)
    )
    result = resolve("layered", [*anecdotes, regulation], now=NOW, config=CONFIG)
    assert (result.winner, result.winner_value_key) == ("reg", "official")
    assert result.deciding_tier == 0


ages = st.floats(allow_nan=False, allow_infinity=True)


@given(first=ages, second=ages, source_class=st.sampled_from(SOURCE_CLASSES))
def test_decay_is_monotone_and_never_above_one(
    first: float, second: float, source_class: str
) -> None:
    younger, older = sorted((first, second))
    assert 0.0 <= decay(older, source_class, CONFIG) <= decay(younger, source_class, CONFIG) <= 1.0
    if younger <= 0.0:
        assert decay(younger, source_class, CONFIG) == 1.0
