"""Plain row types the store hands to the layers above."""

from __future__ import annotations

import msgspec


class CandidateRow(msgspec.Struct, frozen=True):
    """What the query layer needs of one assertion to filter it and run a lens."""

    lsn: int
    id: str
    subject: str
    predicate: str
    value_key: str
    confidence: float
    timestamp: int
    source_class: str
    source_hash: str | None
    epoch: str | None
    lifecycle: str
    valid_from: int | None
    valid_to: int | None
    tainted_by: str | None
    superseded_lsn: int | None
    signers: tuple[str, ...]
    vote_weight: float
    quarantine_lsn: int | None = None  # the LSN of its quarantine decision (ADR 0023)
    released_lsn: int | None = None  # the LSN of the admin's approval


class QuarantineRow(msgspec.Struct, frozen=True):
    """One quarantined assertion (``GET /v1/admin/quarantine``)."""

    lsn: int  # of the quarantine decision: the listing's order and cursor
    id: str  # the assertion's
    reason: str
    detail: str
    agent_id: str
    subject: str
    predicate: str
    quarantined_at: float
    status: str  # pending | approved | rejected
    reviewer: str | None
    review_lsn: int | None


class SignatureRow(msgspec.Struct, frozen=True):
    agent_id: str
    signature: str
    signed_at: int
    lsn: int


class VoteRow(msgspec.Struct, frozen=True):
    id: str
    agent_id: str
    weight: float
    timestamp: int
    lsn: int


class SourceRow(msgspec.Struct, frozen=True):
    source_hash: str
    id: str
    lsn: int
    uri: str
    title: str
    source_class: str | None
    published_at: int | None
    timestamp: int
    registered_by: tuple[str, ...]
    retracted: bool
    retracted_reason: str | None
    retraction_lsn: int | None
    content: str | None = None


class EpochRow(msgspec.Struct, frozen=True):
    id: str
    lsn: int
    name: str
    description: str
    kind: str
    timestamp: int
    supersedes: tuple[str, ...]
    superseded_by: tuple[str, ...]
    signers: tuple[str, ...]


class SupersessionRow(msgspec.Struct, frozen=True):
    id: str
    lsn: int
    old: str
    new: str
    reason: str
    timestamp: int
    signers: tuple[str, ...]


class TrustRow(msgspec.Struct, frozen=True):
    agent_id: str
    score: float
    updated_at: float
    outcomes: int


class ChangeRow(msgspec.Struct, frozen=True):
    lsn: int
    kind: int
    ref: str
    committed_at: float


class SearchRow(msgspec.Struct, frozen=True):
    """One match of the search index: a (subject, predicate) key and the text that
    matched (``matched_field``: subject, predicate, object, source_title or source_uri;
    ``snippet``: that text around the match, matched words between ``**``)."""

    doc_id: int
    subject: str
    predicate: str
    matched_field: str
    snippet: str
    claims: int
    score: float  # higher is better


class SubjectRow(msgspec.Struct, frozen=True):
    subject: str
    predicates: int
    claims: int


class PredicateRow(msgspec.Struct, frozen=True):
    predicate: str
    claims: int
