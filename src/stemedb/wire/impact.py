"""What retracting a source would do (``POST /v1/sources/{hash}/retract?dry_run=true``):
the claims the invalidation cascade would exclude from lens resolution, nothing written."""

from __future__ import annotations

from typing import Literal

import msgspec


class ExcludedClaim(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    subject: str
    predicate: str
    # "cites": the claim cites the source; "descends": its parent chain does
    kind: Literal["cites", "descends"]


class RetractionImpact(msgspec.Struct, kw_only=True):
    source_hash: str
    registered: bool  # the source is in the registry
    registered_by: list[str]  # the agents that registered it: only they may retract it
    already_retracted: bool  # retracting again changes nothing
    excluded: list[ExcludedClaim]  # the first ``limit``, citing claims first
    excluded_count: int  # all of them
    truncated: bool
    dry_run: bool = True


__all__ = ["ExcludedClaim", "RetractionImpact"]
