"""Per-agent trust (ARCHITECTURE §2): starts at 0.5, +0.05 per accurate outcome,
-0.10 per inaccurate one, clamped to [0, 1]; idle scores relax toward 0.5 with a
30-day half-life."""

from __future__ import annotations

import math
from typing import Final

TRUST_INITIAL: Final = 0.5
TRUST_ACCURATE_DELTA: Final = 0.05
TRUST_INACCURATE_DELTA: Final = -0.10
TRUST_HALF_LIFE_SECONDS: Final = 30 * 86400.0


def relaxed_trust(score: float, updated_at: float, now: float) -> float:
    """The score ``now``, relaxed toward 0.5 since ``updated_at``."""
    idle = now - updated_at
    if idle <= 0:
        return score
    return TRUST_INITIAL + (score - TRUST_INITIAL) * math.exp2(-idle / TRUST_HALF_LIFE_SECONDS)


def apply_outcome(score: float, updated_at: float, accurate: bool, at: float) -> float:
    """The score after one outcome observed at ``at``."""
    base = relaxed_trust(score, updated_at, at)
    delta = TRUST_ACCURATE_DELTA if accurate else TRUST_INACCURATE_DELTA
    return min(1.0, max(0.0, base + delta))
