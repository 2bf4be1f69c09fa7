"""The lens input: one candidate assertion, as prepared by the query layer."""

from __future__ import annotations

import msgspec


class Claim(msgspec.Struct, frozen=True):
    """One candidate assertion for a single (subject, predicate).

    The query layer fills it after its filters: ``source_class`` is the *effective*
    class (explicit, else the registered source's, else ``expert``), ``signers`` are the
    distinct agent ids (author(s) first, then co-signers), ``trust`` is the trust of the
    best signer already relaxed toward 0.5, ``vote_weight`` the sum of the latest vote
    weight of each voting agent. Claims with equal ``value_key`` agree.
    """

    id: str
    lsn: int
    value_key: str
    confidence: float
    timestamp: int
    source_class: str
    signers: tuple[str, ...]
    trust: float = 0.5
    vote_weight: float = 0.0
