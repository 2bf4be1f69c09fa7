"""The seven lenses and :func:`resolve`, the one entry point of the lens layer.

Per-claim weights (``c`` confidence, ``d`` decay, ``t`` tier weight, ``u`` trust):

===========  ==============================  =====================================
lens         claim weight                    winner
===========  ==============================  =====================================
recency      2^(-(newest_ts - ts)/H_rec)     newest claim
confidence   c·d                             max claim weight
authority    c·u·t·d                         max claim weight
votes        vote_weight                     max vote weight, ties in consensus order
consensus    c·d·t                           best claim of the heaviest value group
layered      c·d·t                           consensus inside the most authoritative
                                             populated tier
skeptic      c·d·t                           none (every value with its share)
===========  ==============================  =====================================

The per-claim lenses (recency, confidence, authority, votes) weigh a value group by
its best claim; the aggregating ones (consensus, layered, skeptic) by the signer-
deduplicated sum of :func:`stemedb.lens.grouping.signer_weight_sum`. See
``docs/design/lenses.md`` for the normative text and worked examples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final

from stemedb.errors import ValidationError
from stemedb.lens.claim import Claim
from stemedb.lens.config import SECONDS_PER_DAY, LensConfig
from stemedb.lens.grouping import (
    GroupDraft,
    consensus_groups,
    group_by_best_claim,
    rank_by_recency,
    rank_by_weight,
)
from stemedb.lens.result import Resolution
from stemedb.lens.scoring import build_resolution, empty_resolution
from stemedb.lens.weights import Factors, compute_factors

LENS_NAMES: Final[tuple[str, ...]] = (
    "recency",
    "confidence",
    "consensus",
    "votes",
    "authority",
    "layered",
    "skeptic",
)

_Policy = Callable[[Sequence[Claim], Factors, LensConfig], Resolution]


def _consensus_ranking(
    claims: Sequence[Claim], factors: Factors
) -> tuple[list[int], list[float], list[GroupDraft]]:
    weights = [
        claim.confidence * d * t
        for claim, d, t in zip(claims, factors.decays, factors.tier_weights, strict=True)
    ]
    groups = consensus_groups(claims, range(len(claims)), weights, factors.tiers)
    order = [i for group in groups for i in group.members]
    return order, weights, groups


def _recency(claims: Sequence[Claim], factors: Factors, config: LensConfig) -> Resolution:
    newest = max(claim.timestamp for claim in claims)
    half_life = config.recency_half_life_days * SECONDS_PER_DAY
    weights = [math.exp2(-(newest - claim.timestamp) / half_life) for claim in claims]
    order = rank_by_recency(claims, range(len(claims)))
    groups = group_by_best_claim(claims, order, weights, factors.tiers)
    return build_resolution("recency", claims, order, weights, groups, config)


def _confidence(claims: Sequence[Claim], factors: Factors, config: LensConfig) -> Resolution:
    weights = [claim.confidence * d for claim, d in zip(claims, factors.decays, strict=True)]
    order = rank_by_weight(claims, range(len(claims)), weights)
    groups = group_by_best_claim(claims, order, weights, factors.tiers)
    return build_resolution("confidence", claims, order, weights, groups, config)


def _authority(claims: Sequence[Claim], factors: Factors, config: LensConfig) -> Resolution:
    weights = [
        claim.confidence * claim.trust * t * d
        for claim, d, t in zip(claims, factors.decays, factors.tier_weights, strict=True)
    ]
    order = rank_by_weight(claims, range(len(claims)), weights)
    groups = group_by_best_claim(claims, order, weights, factors.tiers)
    return build_resolution("authority", claims, order, weights, groups, config)


def _votes(claims: Sequence[Claim], factors: Factors, config: LensConfig) -> Resolution:
    consensus_order, _, _ = _consensus_ranking(claims, factors)
    position = {i: rank for rank, i in enumerate(consensus_order)}
    weights = [claim.vote_weight for claim in claims]
    order = sorted(range(len(claims)), key=lambda i: (-weights[i], position[i]))
    groups = group_by_best_claim(claims, order, weights, factors.tiers)
    return build_resolution("votes", claims, order, weights, groups, config)


def _consensus(claims: Sequence[Claim], factors: Factors, config: LensConfig) -> Resolution:
    order, weights, groups = _consensus_ranking(claims, factors)
    return build_resolution("consensus", claims, order, weights, groups, config)


def _skeptic(claims: Sequence[Claim], factors: Factors, config: LensConfig) -> Resolution:
    order, weights, groups = _consensus_ranking(claims, factors)
    return build_resolution("skeptic", claims, order, weights, groups, config, names_winner=False)


def _layered(claims: Sequence[Claim], factors: Factors, config: LensConfig) -> Resolution:
    weights = [
        claim.confidence * d * t
        for claim, d, t in zip(claims, factors.decays, factors.tier_weights, strict=True)
    ]
    by_tier: dict[int, list[int]] = {}
    for i, tier in enumerate(factors.tiers):
        by_tier.setdefault(tier, []).append(i)
    order: list[int] = []
    firsts: dict[str, GroupDraft] = {}
    for tier in sorted(by_tier):
        for group in consensus_groups(claims, by_tier[tier], weights, factors.tiers):
            order.extend(group.members)
            if group.value_key not in firsts:
                firsts[group.value_key] = group
    deciding_tier = min(by_tier)
    members: dict[str, list[int]] = {key: [] for key in firsts}
    for i in order:
        members[claims[i].value_key].append(i)
    groups = [draft._replace(members=members[key]) for key, draft in firsts.items()]
    counted = sum(1 for g in groups if g.best_tier == deciding_tier)
    return build_resolution(
        "layered",
        claims,
        order,
        weights,
        groups,
        config,
        counted=counted,
        deciding_tier=deciding_tier,
    )


_POLICIES: Final[dict[str, _Policy]] = {
    "recency": _recency,
    "confidence": _confidence,
    "consensus": _consensus,
    "votes": _votes,
    "authority": _authority,
    "layered": _layered,
    "skeptic": _skeptic,
}


def resolve(lens: str, claims: Sequence[Claim], *, now: float, config: LensConfig) -> Resolution:
    """Resolve the candidates of one (subject, predicate) through ``lens``.

    ``now`` (unix seconds) is the instant ages are measured from: the query's ``as_of``
    when set. The result depends only on the arguments, never on the candidate order.

    Raises :class:`ValidationError` for an unknown lens name (``field="lens"``), a
    non-finite ``now``, an unknown source class or an out-of-range claim number.
    """
    policy = _POLICIES.get(lens)
    if policy is None:
        raise ValidationError(
            "lens", f"unknown lens {lens!r}; expected one of {', '.join(LENS_NAMES)}"
        )
    if not math.isfinite(now):
        raise ValidationError("now", "must be a finite number of unix seconds")
    factors = compute_factors(claims, now, config)
    if not claims:
        return empty_resolution(lens)
    return policy(claims, factors, config)
