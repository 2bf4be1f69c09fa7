"""What a query answer shows of each claim: its view at a snapshot, the resolution
view, the skeptic lens's value groups, and the warnings about retracted sources (wire
types of ``stemedb.wire``)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from stemedb.lens import Resolution
from stemedb.model.records import Assertion, Signature
from stemedb.store.protocol import Store
from stemedb.store.rows import CandidateRow
from stemedb.wire import ClaimView, ResolutionView, SkepticClaim, SourceWarning


def claim_views(
    store: Store,
    rows: Sequence[CandidateRow],
    weights: dict[str, float],
    lsn_bound: int,
    latest_lsn: int,
) -> list[ClaimView]:
    """Claims as read at ``lsn_bound``: an ``as_of`` read shows no co-signature, vote,
    retraction or supersession committed after it (``latest_lsn``: the applied LSN)."""
    records = store.assertions_by_lsn([r.lsn for r in rows])
    retracted = store.retracted_sources()
    votes: dict[int, float] = {}
    if lsn_bound < latest_lsn:
        votes = store.vote_weights_at([r.lsn for r in rows], lsn_bound)
    out = []
    for row in rows:
        record = records[row.lsn]
        signatures = list(record.signatures)
        if len(row.signers) > len(signatures):
            signatures = [
                Signature(s.agent_id, s.signature, s.signed_at)
                for s in store.signatures(row.lsn)
                if s.lsn <= lsn_bound
            ]
        row = msgspec.structs.replace(
            row,
            vote_weight=votes.get(row.lsn, row.vote_weight),
            tainted_by=row.tainted_by
            if retracted.get(row.tainted_by or "", lsn_bound + 1) <= lsn_bound
            else None,
            superseded_lsn=row.superseded_lsn
            if (row.superseded_lsn or lsn_bound + 1) <= lsn_bound
            else None,
        )
        out.append(_view(row, record, signatures, weights.get(row.id, 0.0), retracted))
    return out


def _view(
    row: CandidateRow,
    a: Assertion,
    signatures: list[Signature],
    weight: float,
    retracted: dict[str, int],
) -> ClaimView:
    return ClaimView(
        id=row.id,
        lsn=row.lsn,
        subject=a.subject,
        predicate=a.predicate,
        object=a.object,
        confidence=a.confidence,
        source_hash=a.source_hash,
        source_class=row.source_class,
        epoch=a.epoch,
        parent=a.parent,
        lifecycle=a.lifecycle,
        valid_from=a.valid_from,
        valid_to=a.valid_to,
        timestamp=a.timestamp,
        signatures=signatures,
        weight=weight,
        vote_weight=row.vote_weight,
        retracted_source=row.tainted_by is not None and row.tainted_by in retracted,
        superseded=row.superseded_lsn is not None,
    )


def resolution_view(res: Resolution, winner: ClaimView | None) -> ResolutionView:
    return ResolutionView(
        winner=winner,
        resolution_confidence=res.resolution_confidence,
        conflict_score=res.conflict_score,
        candidates_count=res.candidates_count,
        status=res.status,
        deciding_tier=res.deciding_tier,
    )


def skeptic_claims(
    store: Store, rows: Sequence[CandidateRow], res: Resolution
) -> list[SkepticClaim]:
    """The skeptic lens's value groups, each shown by its best claim."""
    by_id = {row.id: row for row in rows}
    records = store.assertions_by_lsn([by_id[g.claim_ids[0]].lsn for g in res.groups])
    claims = []
    for group in res.groups:
        best = by_id[group.claim_ids[0]]
        claims.append(
            SkepticClaim(
                value=records[best.lsn].object,
                support_share=group.share,
                weight=group.weight,
                tier=group.best_tier,
                source_class=best.source_class,
                claim_ids=list(group.claim_ids),
            )
        )
    return claims


def source_warnings(store: Store, tainted: Sequence[CandidateRow]) -> list[SourceWarning]:
    """One warning per claim whose source, or an ancestor's, was retracted."""
    reasons: dict[str, str | None] = {}
    out = []
    for row in tainted:
        source_hash = row.tainted_by
        assert source_hash is not None
        if source_hash not in reasons:
            source = store.source(source_hash)
            reasons[source_hash] = source.retracted_reason if source else None
        kind = "retracted_source" if row.source_hash == source_hash else "retracted_ancestor"
        out.append(
            SourceWarning(
                assertion_id=row.id,
                source_hash=source_hash,
                kind=kind,
                reason=reasons[source_hash],
            )
        )
    return out
