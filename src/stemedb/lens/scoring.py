"""Shares, conflict score, status and resolution confidence; building a Resolution.

- ``share`` of a counted group = its weight / Σ counted weights (``math.fsum``); when
  that total is 0 (no evidence distinguishes the values) every counted group gets
  ``1/k``. Groups that are not counted (``layered``: values outside the deciding tier)
  have share 0.
- ``conflict_score`` = ``H / ln k`` over the k groups with a positive share, with
  ``H = -Σ p ln p``; 0 when k <= 1, exactly 1 when those shares are all equal.
- ``status``: ``empty`` (no candidates), ``unanimous`` (one counted value), ``agreed``
  (top share >= ``skeptic_agreed_share``), else ``contested``.
- ``resolution_confidence`` = share of the top group * confidence of its best claim.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from stemedb.lens.claim import Claim
from stemedb.lens.config import LensConfig
from stemedb.lens.grouping import GroupDraft
from stemedb.lens.result import RankedClaim, Resolution, Status, ValueGroup


def support_shares(weights: Sequence[float]) -> list[float]:
    """Each weight's fraction of the total; uniform when the total is 0."""
    if not weights:
        return []
    total = math.fsum(weights)
    if total > 0.0:
        return [w / total for w in weights]
    return [1.0 / len(weights)] * len(weights)


def normalised_entropy(shares: Sequence[float]) -> float:
    """Shannon entropy of the positive shares divided by ``ln k`` (k = their count).

    0 for zero or one positive share, exactly 1.0 when all positive shares are equal,
    otherwise clamped into [0, 1].
    """
    positive = [p for p in shares if p > 0.0]
    k = len(positive)
    if k <= 1:
        return 0.0
    if max(positive) == min(positive):
        return 1.0
    entropy = -math.fsum(p * math.log(p) for p in positive)
    return min(1.0, max(0.0, entropy / math.log(k)))


def status_of(counted_shares: Sequence[float], config: LensConfig) -> Status:
    """``empty`` / ``unanimous`` / ``agreed`` / ``contested`` from the counted shares."""
    if not counted_shares:
        return "empty"
    if len(counted_shares) == 1:
        return "unanimous"
    if max(counted_shares) >= config.skeptic_agreed_share:
        return "agreed"
    return "contested"


def empty_resolution(lens: str) -> Resolution:
    """No candidates: no winner, status ``empty``, every score 0."""
    return Resolution(
        lens=lens,
        winner=None,
        winner_value_key=None,
        resolution_confidence=0.0,
        conflict_score=0.0,
        candidates_count=0,
        ranked=(),
        groups=(),
        status="empty",
    )


def build_resolution(
    lens: str,
    claims: Sequence[Claim],
    order: Sequence[int],
    weights: list[float],
    groups: Sequence[GroupDraft],
    config: LensConfig,
    *,
    counted: int | None = None,
    names_winner: bool = True,
    deciding_tier: int | None = None,
) -> Resolution:
    """Assemble the Resolution from a non-empty ranking.

    ``order`` is every claim index best first, ``groups`` every value best first,
    ``counted`` how many leading groups share the support (default: all).
    """
    n_counted = len(groups) if counted is None else counted
    counted_shares = support_shares([g.weight for g in groups[:n_counted]])
    shares = counted_shares + [0.0] * (len(groups) - n_counted)
    top = groups[0]
    best = claims[top.members[0]]
    winner = claims[order[0]] if names_winner else None
    return Resolution(
        lens=lens,
        winner=None if winner is None else winner.id,
        winner_value_key=None if winner is None else winner.value_key,
        resolution_confidence=min(1.0, shares[0] * best.confidence),
        conflict_score=normalised_entropy(counted_shares),
        candidates_count=len(claims),
        ranked=tuple(RankedClaim(claims[i].id, claims[i].value_key, weights[i]) for i in order),
        groups=tuple(
            ValueGroup(
                g.value_key,
                g.weight,
                share,
                tuple(claims[i].id for i in g.members),
                g.best_tier,
            )
            for g, share in zip(groups, shares, strict=True)
        ),
        status=status_of(counted_shares, config),
        deciding_tier=deciding_tier,
    )
