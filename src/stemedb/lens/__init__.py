"""StemeDB lens layer: read-time resolution of conflicting claims (ARCHITECTURE §6).

Pure functions: no I/O, no clock (``now`` is an argument), deterministic, and
independent of candidate order. The normative description with worked examples is
``docs/design/lenses.md``.
"""

from stemedb.lens.claim import Claim
from stemedb.lens.config import (
    DEFAULT_HALF_LIFE_DAYS,
    DEFAULT_LENS,
    DEFAULT_RECENCY_HALF_LIFE_DAYS,
    DEFAULT_SKEPTIC_AGREED_SHARE,
    DEFAULT_TIER_WEIGHTS,
    SECONDS_PER_DAY,
    LensConfig,
)
from stemedb.lens.policies import LENS_NAMES, resolve
from stemedb.lens.result import STATUSES, RankedClaim, Resolution, Status, ValueGroup
from stemedb.lens.scoring import normalised_entropy
from stemedb.lens.weights import decay, half_life_seconds, tier_of, tier_weight

__all__ = [
    "DEFAULT_HALF_LIFE_DAYS",
    "DEFAULT_LENS",
    "DEFAULT_RECENCY_HALF_LIFE_DAYS",
    "DEFAULT_SKEPTIC_AGREED_SHARE",
    "DEFAULT_TIER_WEIGHTS",
    "LENS_NAMES",
    "SECONDS_PER_DAY",
    "STATUSES",
    "Claim",
    "LensConfig",
    "RankedClaim",
    "Resolution",
    "Status",
    "ValueGroup",
    "decay",
    "half_life_seconds",
    "normalised_entropy",
    "resolve",
    "tier_of",
    "tier_weight",
]
