"""The quarantine's admin endpoints (API.md "Admin"; ADR 0023):
``GET /v1/admin/quarantine`` and ``POST /v1/admin/quarantine/{id}/approve|reject``."""

from __future__ import annotations

from typing import Literal

import msgspec


class QuarantineItem(msgspec.Struct, kw_only=True):
    id: str  # the quarantined assertion's id
    reason: str  # near_duplicate | untrusted_confidence | fresh_key_burst
    agent_id: str  # its first signer
    subject: str
    predicate: str
    quarantined_at: float
    status: Literal["pending", "approved", "rejected"]
    detail: str
    lsn: int  # of the quarantine decision
    reviewed_by: str | None = None  # the API key id of the admin who approved or rejected
    review_lsn: int | None = None


class QuarantineList(msgspec.Struct, kw_only=True):
    items: list[QuarantineItem]
    next_cursor: str | None


class QuarantineReviewed(msgspec.Struct, kw_only=True):
    """The answer to an approve or reject: the item as it is now and the review's LSN."""

    item: QuarantineItem
    lsn: int
