"""Ordering claims and grouping them by value, deterministically.

Every order here is total and independent of the candidate order: ties break by the
later ``timestamp``, then the higher ``lsn``, then the greater ``id``; sums use
``math.fsum`` (correctly rounded, hence order-independent).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from stemedb.lens.claim import Claim

ANONYMOUS_SIGNER_PREFIX = "\x00claim:"
"""A claim without signers counts as signed by one agent of its own (never shared)."""


class GroupDraft(NamedTuple):
    """A value group before shares are known; ``members`` are claim indices, best first."""

    value_key: str
    weight: float
    members: list[int]
    best_tier: int


def rank_by_weight(
    claims: Sequence[Claim], indices: Sequence[int], weights: list[float]
) -> list[int]:
    """Indices sorted best first by (weight, timestamp, lsn, id), all descending."""

    def key(i: int) -> tuple[float, int, int, str]:
        claim = claims[i]
        return (weights[i], claim.timestamp, claim.lsn, claim.id)

    return sorted(indices, key=key, reverse=True)


def rank_by_recency(claims: Sequence[Claim], indices: Sequence[int]) -> list[int]:
    """Indices sorted newest first by (timestamp, lsn, id), all descending."""

    def key(i: int) -> tuple[int, int, str]:
        claim = claims[i]
        return (claim.timestamp, claim.lsn, claim.id)

    return sorted(indices, key=key, reverse=True)


def group_by_best_claim(
    claims: Sequence[Claim], order: Sequence[int], weights: list[float], tiers: list[int]
) -> list[GroupDraft]:
    """Per-claim lenses: a group weighs what its best claim weighs.

    Groups come in the order of their best claim in ``order`` (so the winner's group is
    first), members keep the ``order`` order.
    """
    by_value: dict[str, GroupDraft] = {}
    for i in order:
        value_key = claims[i].value_key
        group = by_value.get(value_key)
        if group is None:
            by_value[value_key] = GroupDraft(value_key, weights[i], [i], tiers[i])
        else:
            group.members.append(i)
            if tiers[i] < group.best_tier:
                by_value[value_key] = group._replace(best_tier=tiers[i])
    return list(by_value.values())


def signer_weight_sum(
    claims: Sequence[Claim], members: Sequence[int], weights: list[float]
) -> float:
    """Σ over distinct signers of the best weight among the members each one signed.

    A co-signature thus adds its signer's weight once, and an agent that signs many
    claims of one value still counts once for that value.
    """
    best_by_agent: dict[str, float] = {}
    for i in members:
        claim = claims[i]
        weight = weights[i]
        signers = claim.signers or (ANONYMOUS_SIGNER_PREFIX + claim.id,)
        for agent in signers:
            if weight > best_by_agent.get(agent, -1.0):
                best_by_agent[agent] = weight
    return math.fsum(best_by_agent.values())


def consensus_groups(
    claims: Sequence[Claim], indices: Sequence[int], weights: list[float], tiers: list[int]
) -> list[GroupDraft]:
    """Aggregating lenses: group weight = :func:`signer_weight_sum`, heaviest first.

    Equal group weights break by the group's newest claim (timestamp, lsn, id). Members
    are sorted best first by (weight, timestamp, lsn, id).
    """
    by_value: dict[str, list[int]] = {}
    for i in indices:
        by_value.setdefault(claims[i].value_key, []).append(i)
    keyed: list[tuple[float, tuple[int, int, str], GroupDraft]] = []
    for value_key, members in by_value.items():
        ranked = rank_by_weight(claims, members, weights)
        newest = max((claims[i].timestamp, claims[i].lsn, claims[i].id) for i in members)
        draft = GroupDraft(
            value_key,
            signer_weight_sum(claims, members, weights),
            ranked,
            min(tiers[i] for i in members),
        )
        keyed.append((draft.weight, newest, draft))
    keyed.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [draft for _, _, draft in keyed]
