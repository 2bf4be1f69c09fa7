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

from collections.abc import Iterable
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


def category_from(
    conflict: float, groups: Iterable[tuple[str, int, int]], ui: UiConfig
) -> Category:
    """The category of a question from its conflict score and its value groups, each
    (value, best tier, number of claims)."""
    groups = list(groups)
    authoritative_values = {value for value, tier, _ in groups if tier <= ui.authoritative_max_tier}
    if conflict >= ui.active_conflict and len(authoritative_values) >= 2:
        return "active"
    weak = sum(claims for _, tier, claims in groups if tier >= ui.emerging_tier)
    if not authoritative_values and weak >= ui.emerging_min_claims:
        return "emerging"
    if conflict < ui.resolved_conflict:
        return "resolved"
    return "low"


def category_of(result: SkepticResult, ui: UiConfig) -> Category:
    """The category of a skeptic answer (``GET /v1/skeptic``)."""
    groups = ((str(c.value.value), c.tier, len(c.claim_ids)) for c in result.claims)
    return category_from(result.conflict_score, groups, ui)


__all__ = ["CATEGORY_LABELS", "CATEGORY_ORDER", "Category", "category_from", "category_of"]
