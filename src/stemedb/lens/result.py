"""The lens output: a winner (or none), every claim ranked, every value grouped."""

from __future__ import annotations

from typing import Final, Literal

import msgspec

Status = Literal["unanimous", "agreed", "contested", "empty"]
STATUSES: Final[tuple[Status, ...]] = ("unanimous", "agreed", "contested", "empty")


class RankedClaim(msgspec.Struct, frozen=True):
    """One candidate claim and its weight under the lens that ranked it."""

    id: str
    value_key: str
    weight: float


class ValueGroup(msgspec.Struct, frozen=True):
    """Every claim asserting one value.

    ``weight`` is the group weight under the lens (a signer-deduplicated sum for the
    aggregating lenses, the best claim's weight for the per-claim lenses), ``share`` its
    fraction of the total, ``claim_ids`` its claims in ranked order, ``best_tier`` the
    most authoritative tier (0 = regulatory) among them.
    """

    value_key: str
    weight: float
    share: float
    claim_ids: tuple[str, ...]
    best_tier: int


class Resolution(msgspec.Struct, frozen=True, kw_only=True):
    """The result of one lens over the candidates of one (subject, predicate).

    ``ranked`` holds every candidate best first and ``groups`` every distinct value best
    first; unless the lens is ``skeptic`` (which never names a winner) or the input is
    empty, ``ranked[0].id == winner`` and ``groups[0].value_key == winner_value_key``.
    ``deciding_tier`` is set by the ``layered`` lens only.
    """

    lens: str
    winner: str | None
    winner_value_key: str | None
    resolution_confidence: float
    conflict_score: float
    candidates_count: int
    ranked: tuple[RankedClaim, ...]
    groups: tuple[ValueGroup, ...]
    status: Status
    deciding_tier: int | None = None
