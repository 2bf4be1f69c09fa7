"""Claim factory shared by the lens unit tests (ages in days before NOW)."""

from __future__ import annotations

from stemedb.lens import Claim

NOW = 1_700_000_000
DAY = 86_400


def make_claim(
    claim_id: str,
    value_key: str,
    confidence: float,
    age_days: float,
    source_class: str,
    signers: tuple[str, ...],
    lsn: int,
    *,
    trust: float = 0.5,
    vote_weight: float = 0.0,
    timestamp: int | None = None,
) -> Claim:
    return Claim(
        id=claim_id,
        lsn=lsn,
        value_key=value_key,
        confidence=confidence,
        timestamp=NOW - int(age_days * DAY) if timestamp is None else timestamp,
        source_class=source_class,
        signers=signers,
        trust=trust,
        vote_weight=vote_weight,
    )
