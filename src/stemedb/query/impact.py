"""What retracting a source would exclude (``POST /v1/sources/{hash}/retract?dry_run=true``).

The invalidation cascade (``store``'s retraction apply) marks every assertion that
cites the source, and every descendant of those through ``parent``, as tainted; the
lenses then leave them out unless a read asks for ``include_retracted``. This walks
the same graph with reads only: the citing assertions, then their children, breadth
first, and reports the ones not excluded already (by another retracted source). The
walk is bounded (``MAX_WALK``); past it the answer says ``truncated``.
"""

from __future__ import annotations

from typing import Final, Literal

from stemedb.errors import ValidationError
from stemedb.model.signing import is_hex64
from stemedb.store.protocol import RecordReads
from stemedb.wire.impact import ExcludedClaim, RetractionImpact

MAX_WALK: Final = 10_000
ROWS_PER_READ: Final = 500


def retraction_impact(store: RecordReads, source_hash: str, limit: int) -> RetractionImpact:
    """The claims a retraction of ``source_hash`` would newly exclude (the first
    ``limit`` of them, citing claims first, then descendants nearest first)."""
    if not is_hex64(source_hash):
        raise ValidationError("source_hash", "hex_format", "must be 64 lowercase hex characters")
    source = store.source(source_hash)
    citing = store.citing(source_hash, MAX_WALK + 1)
    kinds: dict[str, Literal["cites", "descends"]] = dict.fromkeys(citing, "cites")
    frontier = list(citing)
    while frontier and len(kinds) <= MAX_WALK:
        below: list[str] = []
        for claim_id in frontier:
            for child in store.children(claim_id):
                if child not in kinds:
                    kinds[child] = "descends"
                    below.append(child)
        frontier = below
    walked = list(kinds)[:MAX_WALK]
    excluded: list[ExcludedClaim] = []
    count = 0
    for start in range(0, len(walked), ROWS_PER_READ):
        chunk = walked[start : start + ROWS_PER_READ]
        rows = {row.id: row for row in store.candidates_by_ids(chunk)}
        for claim_id in chunk:
            row = rows.get(claim_id)
            if row is None or row.tainted_by is not None:  # excluded already
                continue
            count += 1
            if len(excluded) < limit:
                excluded.append(
                    ExcludedClaim(
                        id=claim_id,
                        subject=row.subject,
                        predicate=row.predicate,
                        kind=kinds[claim_id],
                    )
                )
    return RetractionImpact(
        source_hash=source_hash,
        registered=source is not None,
        registered_by=list(source.registered_by) if source is not None else [],
        already_retracted=source is not None and source.retracted,
        excluded=excluded,
        excluded_count=count,
        truncated=count > len(excluded) or len(kinds) > MAX_WALK,
    )


__all__ = ["MAX_WALK", "retraction_impact"]
