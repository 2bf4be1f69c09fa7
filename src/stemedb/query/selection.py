"""Candidate selection: the filters applied before any lens (ARCHITECTURE §7).

Time travel works by LSN: ``as_of`` becomes the last LSN committed by then, and every
fact (the assertion, its co-signatures, votes, the retraction of its source, a
supersession, an epoch change) counts only if its LSN is within that bound.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from stemedb.lens import Claim
from stemedb.query.params import DEFAULT_LIFECYCLES, QueryParams
from stemedb.store.protocol import ClaimReads
from stemedb.store.rows import CandidateRow


class Selection(msgspec.Struct):
    """The claims that go into the lens, and what was held back with a warning."""

    rows: list[CandidateRow]
    claims: list[Claim]
    tainted: list[CandidateRow]  # cite a retracted source (directly or via parent chain)


def select(
    store: ClaimReads,
    rows: Sequence[CandidateRow],
    params: QueryParams,
    *,
    lsn_bound: int,
    latest_lsn: int,
    now: float,
) -> Selection:
    """Filter ``rows`` by ``params`` as of ``lsn_bound`` and build lens claims."""
    time_travel = lsn_bound < latest_lsn
    retracted = store.retracted_sources()
    superseded_epochs = store.superseded_epochs()
    lifecycles = params.lifecycle or DEFAULT_LIFECYCLES
    kept: list[CandidateRow] = []
    tainted: list[CandidateRow] = []
    for row in rows:
        if row.lsn > lsn_bound:
            continue
        if row.lifecycle not in lifecycles:
            continue
        if params.source_class and row.source_class not in params.source_class:
            continue
        if params.since is not None and row.timestamp < params.since:
            continue
        if params.valid_at is not None and not _valid_at(row, params.valid_at):
            continue
        if params.epoch is not None:
            if row.epoch != params.epoch:
                continue
        elif row.epoch is not None and superseded_epochs.get(row.epoch, lsn_bound + 1) <= lsn_bound:
            continue
        if (
            not params.include_superseded
            and row.superseded_lsn is not None
            and row.superseded_lsn <= lsn_bound
        ):
            continue
        if (
            not params.include_quarantined
            and row.quarantine_lsn is not None
            and row.quarantine_lsn <= lsn_bound
            and (row.released_lsn is None or row.released_lsn > lsn_bound)
        ):
            continue
        if row.tainted_by is not None and retracted.get(row.tainted_by, lsn_bound + 1) <= lsn_bound:
            tainted.append(row)
            if not params.include_retracted:
                continue
        kept.append(row)
    signers: dict[int, tuple[str, ...]] = {}
    votes: dict[int, float] = {}
    if time_travel and kept:
        lsns = [r.lsn for r in kept]
        signers = store.signers_at(lsns, lsn_bound)
        votes = store.vote_weights_at(lsns, lsn_bound)
    if params.agent_id is not None:
        kept = [r for r in kept if params.agent_id in signers.get(r.lsn, r.signers)]
    claims = []
    for row in kept:
        row_signers = signers.get(row.lsn, row.signers)
        trust = max((store.trust(agent, now) for agent in row_signers), default=0.5)
        claims.append(
            Claim(
                id=row.id,
                lsn=row.lsn,
                value_key=row.value_key,
                confidence=row.confidence,
                timestamp=row.timestamp,
                source_class=row.source_class,
                signers=row_signers,
                trust=trust,
                vote_weight=votes.get(row.lsn, row.vote_weight),
            )
        )
    return Selection(kept, claims, tainted)


def _valid_at(row: CandidateRow, at: float) -> bool:
    if row.valid_from is not None and at < row.valid_from:
        return False
    return not (row.valid_to is not None and at > row.valid_to)
