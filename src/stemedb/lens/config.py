"""Lens constants (ARCHITECTURE §6), all configurable.

``LensConfig`` is a frozen msgspec struct so it can be decoded straight from the
server configuration (``msgspec.convert(table, LensConfig)``); ``__post_init__``
validates it either way and raises :class:`stemedb.errors.ValidationError` naming
the offending field. The normative description is ``docs/design/lenses.md``.
"""

from __future__ import annotations

import math
from typing import Final

import msgspec

from stemedb.errors import ValidationError
from stemedb.model.records import SOURCE_CLASSES

SECONDS_PER_DAY: Final[float] = 86_400.0

DEFAULT_LENS: Final[str] = "consensus"
"""The lens a query uses when it names none (``[lens] default``)."""

DEFAULT_HALF_LIFE_DAYS: Final[dict[str, float | None]] = {
    "regulatory": None,  # never decays
    "clinical": 730.0,
    "observational": 365.0,
    "expert": 180.0,
    "community": 90.0,
    "anecdotal": 30.0,
}
"""Decay half-life per source class, in days; ``None`` means infinite (no decay)."""

DEFAULT_TIER_WEIGHTS: Final[tuple[float, ...]] = (1.0, 0.8, 0.6, 0.4, 0.25, 0.1)
"""Weight of tiers 0 (regulatory) .. 5 (anecdotal)."""

DEFAULT_SKEPTIC_AGREED_SHARE: Final[float] = 0.8
DEFAULT_RECENCY_HALF_LIFE_DAYS: Final[float] = 30.0


def _default_half_lives() -> dict[str, float | None]:
    return dict(DEFAULT_HALF_LIFE_DAYS)


class LensConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Every constant the lenses use. ``LensConfig.default()`` is ARCHITECTURE §6.

    - ``half_life_days``: decay half-life per source class (all six classes required;
      ``None`` = never decays).
    - ``tier_weights``: weight of tiers 0..5 (six non-negative finite numbers).
    - ``skeptic_agreed_share``: a top support share at or above this makes the status
      ``agreed`` (below it: ``contested``); in (0, 1].
    - ``recency_half_life_days``: the recency lens weighs a claim by
      ``2^(-(newest_timestamp - timestamp) / recency_half_life)``; it only shapes the
      reported weights, shares and conflict score, never the recency winner.
    """

    half_life_days: dict[str, float | None] = msgspec.field(default_factory=_default_half_lives)
    tier_weights: tuple[float, ...] = DEFAULT_TIER_WEIGHTS
    skeptic_agreed_share: float = DEFAULT_SKEPTIC_AGREED_SHARE
    recency_half_life_days: float = DEFAULT_RECENCY_HALF_LIFE_DAYS

    @classmethod
    def default(cls) -> LensConfig:
        """The ARCHITECTURE §6 defaults."""
        return cls()

    def __post_init__(self) -> None:
        missing = [name for name in SOURCE_CLASSES if name not in self.half_life_days]
        unknown = sorted(set(self.half_life_days) - set(SOURCE_CLASSES))
        if missing or unknown:
            raise ValidationError(
                "lens.half_life_days",
                f"must name exactly the source classes {', '.join(SOURCE_CLASSES)}"
                f" (missing: {missing}, unknown: {unknown})",
            )
        for name, days in self.half_life_days.items():
            if days is not None and not (0.0 < days < math.inf):
                raise ValidationError(
                    f"lens.half_life_days.{name}", "must be a positive finite number or null"
                )
        if len(self.tier_weights) != len(SOURCE_CLASSES):
            raise ValidationError(
                "lens.tier_weights", f"must hold exactly {len(SOURCE_CLASSES)} weights"
            )
        if any(not (0.0 <= w < math.inf) for w in self.tier_weights):
            raise ValidationError("lens.tier_weights", "each weight must be finite and >= 0")
        if not (0.0 < self.skeptic_agreed_share <= 1.0):
            raise ValidationError("lens.skeptic_agreed_share", "must be in (0, 1]")
        if not (0.0 < self.recency_half_life_days < math.inf):
            raise ValidationError("lens.recency_half_life_days", "must be a positive finite number")
