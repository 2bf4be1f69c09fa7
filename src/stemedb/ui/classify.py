"""The disagreement board's categories (``[ui]`` thresholds), from a skeptic answer.

- **Active disagreement**: conflict ≥ ``active_conflict`` and at least two values each
  backed by a source of tier ≤ ``authoritative_max_tier`` (0 regulatory .. 2
  observational by default).
- **Emerging signal**: at least ``emerging_min_claims`` claims of tier ≥
  ``emerging_tier`` (5, anecdotal) and no claim of tier ≤ ``authoritative_max_tier``.
- **Resolved**: conflict < ``resolved_conflict`` (one value carries the support).
- **Low priority**: the rest.
"""

from __future__ import annotations

from typing import Final, Literal

from stemedb.config import UiConfig
from stemedb.wire import SkepticResult

Category = Literal["active", "emerging", "resolved", "low"]
CATEGORY_LABELS: Final[dict[str, str]] = {
    "active": "Active disagreement",
    "emerging": "Emerging signal",
    "resolved": "Resolved",
    "low": "Low priority",
}
CATEGORY_ORDER: Final[tuple[Category, ...]] = ("active", "emerging", "resolved", "low")


def category_of(result: SkepticResult, ui: UiConfig) -> Category:
    authoritative_values = {
        str(claim.value.value) for claim in result.claims if claim.tier <= ui.authoritative_max_tier
    }
    if result.conflict_score >= ui.active_conflict and len(authoritative_values) >= 2:
        return "active"
    weak = sum(len(c.claim_ids) for c in result.claims if c.tier >= ui.emerging_tier)
    if not authoritative_values and weak >= ui.emerging_min_claims:
        return "emerging"
    if result.conflict_score < ui.resolved_conflict:
        return "resolved"
    return "low"


__all__ = ["CATEGORY_LABELS", "CATEGORY_ORDER", "Category", "category_of"]
