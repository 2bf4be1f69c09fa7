"""decay, tier_of, tier_weight and LensConfig validation (docs/design/lenses.md §2-3)."""

from __future__ import annotations

import math

import msgspec
import pytest

from stemedb.errors import ValidationError
from stemedb.lens import (
    SECONDS_PER_DAY,
    LensConfig,
    decay,
    half_life_seconds,
    tier_of,
    tier_weight,
)

CONFIG = LensConfig.default()


@pytest.mark.parametrize(
    ("source_class", "age_days", "expected"),
    [
        ("expert", 180, 0.5),
        ("anecdotal", 60, 0.25),
        ("community", 90, 0.5),
        ("observational", 365, 0.5),
        ("clinical", 365, 2**-0.5),
        ("regulatory", 100_000, 1.0),
    ],
)
def test_decay_halves_every_half_life(source_class: str, age_days: float, expected: float) -> None:
    assert decay(age_days * SECONDS_PER_DAY, source_class, CONFIG) == pytest.approx(expected)


def test_future_timestamp_never_decays_nor_gains_weight() -> None:
    assert decay(-3600.0, "anecdotal", CONFIG) == 1.0
    assert decay(0.0, "anecdotal", CONFIG) == 1.0


def test_ancient_claim_decays_to_zero_without_error() -> None:
    assert decay(1e15, "anecdotal", CONFIG) == 0.0


def test_decay_rejects_nan_age() -> None:
    with pytest.raises(ValidationError):
        decay(math.nan, "expert", CONFIG)


def test_tiers_follow_architecture_order() -> None:
    classes = ("regulatory", "clinical", "observational", "expert", "community", "anecdotal")
    assert [tier_of(name) for name in classes] == [0, 1, 2, 3, 4, 5]
    assert [tier_weight(name, CONFIG) for name in classes] == [1.0, 0.8, 0.6, 0.4, 0.25, 0.1]


def test_unknown_source_class_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as info:
        tier_of("tabloid")
    assert info.value.field == "source_class"


def test_half_life_seconds_is_none_for_regulatory() -> None:
    assert half_life_seconds("regulatory", CONFIG) is None
    assert half_life_seconds("expert", CONFIG) == 180 * SECONDS_PER_DAY


def test_default_config_matches_architecture() -> None:
    assert LensConfig.default() == LensConfig()
    assert CONFIG.half_life_days == {
        "regulatory": None,
        "clinical": 730.0,
        "observational": 365.0,
        "expert": 180.0,
        "community": 90.0,
        "anecdotal": 30.0,
    }
    assert CONFIG.tier_weights == (1.0, 0.8, 0.6, 0.4, 0.25, 0.1)
    assert CONFIG.skeptic_agreed_share == 0.8
    assert CONFIG.recency_half_life_days == 30.0


def test_config_is_configurable_and_decodable() -> None:
    config = msgspec.convert(
        {"half_life_days": {**CONFIG.half_life_days, "expert": 10.0}, "skeptic_agreed_share": 0.6},
        LensConfig,
    )
    assert decay(10 * SECONDS_PER_DAY, "expert", config) == pytest.approx(0.5)
    assert config.skeptic_agreed_share == 0.6


def test_default_half_lives_are_not_shared_between_configs() -> None:
    first = LensConfig.default()
    first.half_life_days["expert"] = 1.0
    assert LensConfig.default().half_life_days["expert"] == 180.0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"half_life_days": {"expert": 1.0}}, "lens.half_life_days"),
        (
            {"half_life_days": {**CONFIG.half_life_days, "expert": 0.0}},
            "lens.half_life_days.expert",
        ),
        ({"half_life_days": {**CONFIG.half_life_days, "gossip": 1.0}}, "lens.half_life_days"),
        ({"tier_weights": (1.0, 0.5)}, "lens.tier_weights"),
        ({"tier_weights": (1.0, 0.8, 0.6, 0.4, 0.25, -0.1)}, "lens.tier_weights"),
        ({"skeptic_agreed_share": 0.0}, "lens.skeptic_agreed_share"),
        ({"skeptic_agreed_share": 1.5}, "lens.skeptic_agreed_share"),
        ({"recency_half_life_days": math.inf}, "lens.recency_half_life_days"),
    ],
)
def test_bad_config_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        LensConfig(**changes)  # type: ignore[arg-type]
    assert info.value.field == field
