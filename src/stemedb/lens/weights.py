"""The factors of a claim's effective weight: tier, tier weight, decay.

``effective weight = confidence * decay(age, class) * tier_weight(class) * trust`` —
each lens picks the factors it uses (see ``policies`` and ``docs/design/lenses.md``).
Decay is ``2^(-age / half_life)``; it is exactly 1 for a future timestamp (age <= 0)
and for a class with an infinite half-life, and it never exceeds 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from stemedb.errors import ValidationError
from stemedb.lens.claim import Claim
from stemedb.lens.config import SECONDS_PER_DAY, LensConfig
from stemedb.model.records import SOURCE_CLASS_TIER, SOURCE_CLASSES


def tier_of(source_class: str) -> int:
    """The tier of a source class: 0 (regulatory, most authoritative) .. 5 (anecdotal)."""
    try:
        return SOURCE_CLASS_TIER[source_class]
    except KeyError:
        raise ValidationError(
            "source_class",
            f"unknown source class {source_class!r}; expected one of {', '.join(SOURCE_CLASSES)}",
        ) from None


def tier_weight(source_class: str, config: LensConfig) -> float:
    """The configured weight of the class's tier (defaults 1.0, 0.8, 0.6, 0.4, 0.25, 0.1)."""
    return config.tier_weights[tier_of(source_class)]


def half_life_seconds(source_class: str, config: LensConfig) -> float | None:
    """The class's decay half-life in seconds, ``None`` when it never decays."""
    tier_of(source_class)
    days = config.half_life_days[source_class]
    return None if days is None else days * SECONDS_PER_DAY


def decay_factor(age_seconds: float, half_life: float | None) -> float:
    """``2^(-age/half_life)``; 1.0 for age <= 0 (future timestamps) or no half-life."""
    if half_life is None or age_seconds <= 0.0:
        return 1.0
    return math.exp2(-age_seconds / half_life)


def decay(age_seconds: float, source_class: str, config: LensConfig) -> float:
    """How much a claim of ``source_class`` that is ``age_seconds`` old still counts.

    In [0, 1], non-increasing in age, exactly 1 for a negative age (a future timestamp
    never gains weight) and for classes with an infinite half-life (``regulatory``).
    """
    if math.isnan(age_seconds):
        raise ValidationError("age_seconds", "must be a number, not NaN")
    return decay_factor(age_seconds, half_life_seconds(source_class, config))


class Factors(NamedTuple):
    """Per-claim factors, index-aligned with the candidate sequence."""

    tiers: list[int]
    decays: list[float]
    tier_weights: list[float]


def compute_factors(claims: Sequence[Claim], now: float, config: LensConfig) -> Factors:
    """Validate the candidates and compute each claim's tier, decay and tier weight.

    Raises :class:`ValidationError` for an unknown source class or an out-of-range
    confidence, trust or vote weight (the query layer should never hand those over).
    """
    table: dict[str, tuple[int, float, float | None]] = {}
    for name in SOURCE_CLASSES:
        days = config.half_life_days[name]
        tier = SOURCE_CLASS_TIER[name]
        table[name] = (
            tier,
            config.tier_weights[tier],
            None if days is None else days * SECONDS_PER_DAY,
        )
    tiers: list[int] = []
    decays: list[float] = []
    weights: list[float] = []
    exp2 = math.exp2
    for claim in claims:
        entry = table.get(claim.source_class)
        if entry is None:
            tier_of(claim.source_class)  # raises the ValidationError
            raise AssertionError("unreachable")  # pragma: no cover
        if not (0.0 <= claim.confidence <= 1.0):
            raise ValidationError("confidence", f"claim {claim.id}: must be in [0, 1]")
        if not (0.0 <= claim.trust <= 1.0):
            raise ValidationError("trust", f"claim {claim.id}: must be in [0, 1]")
        if not (0.0 <= claim.vote_weight < math.inf):
            raise ValidationError("vote_weight", f"claim {claim.id}: must be finite and >= 0")
        tier, weight, half_life = entry
        age = now - claim.timestamp
        tiers.append(tier)
        weights.append(weight)
        decays.append(1.0 if half_life is None or age <= 0.0 else exp2(-age / half_life))
    return Factors(tiers, decays, weights)
