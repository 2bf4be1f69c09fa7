"""One assertion as read (``GET /v1/assertions/{id}``) and its provenance
(``GET /v1/trace/{id}``): signatures, votes, supersessions, source and epoch."""

from __future__ import annotations

import msgspec

from stemedb.model.records import Assertion, Lifecycle, ObjectValue, SourceClass
from stemedb.wire.custodial import CustodialKeyView
from stemedb.wire.registry import EpochRow, SourceRow


class AssertionBody(msgspec.Struct, frozen=True, kw_only=True):
    """An assertion's fields without its signatures (listed beside it, with their LSN)."""

    # The fields of ``model.records.Assertion`` but ``signatures``, in its order
    # (tests/unit/wire checks that they stay in step).
    subject: str
    predicate: str
    object: ObjectValue
    confidence: float
    timestamp: int
    source_hash: str | None = None
    source_class: SourceClass | None = None
    epoch: str | None = None
    parent: str | None = None
    lifecycle: Lifecycle = "proposed"
    valid_from: int | None = None
    valid_to: int | None = None

    @classmethod
    def of(cls, assertion: Assertion) -> AssertionBody:
        fields = msgspec.structs.asdict(assertion)
        del fields["signatures"]
        return cls(**fields)


class AssertionWarning(msgspec.Struct, kw_only=True):
    """The assertion cites a retracted source, or descends from one that does."""

    source_hash: str
    kind: str  # "retracted_source" (cites it) | "retracted_ancestor" (parent chain does)
    reason: str | None


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


class SupersessionRow(msgspec.Struct, frozen=True):
    id: str
    lsn: int
    old: str
    new: str
    reason: str
    timestamp: int
    signers: tuple[str, ...]


class VoteSummary(msgspec.Struct, kw_only=True):
    count: int
    voters: int
    weight: float  # sum of the latest vote of each agent


class AssertionDetail(msgspec.Struct, kw_only=True):
    id: str
    lsn: int
    committed_at: float
    assertion: AssertionBody
    signatures: list[SignatureRow]
    votes: VoteSummary
    source_class: str
    source_warnings: list[AssertionWarning]
    superseded_by: list[str]
    supersedes: list[str]


class TraceResult(msgspec.Struct, kw_only=True):
    id: str
    assertion: AssertionDetail
    source: SourceRow | None
    parents: list[AssertionDetail]  # parent chain, nearest first
    children: list[str]
    supersessions: list[SupersessionRow]
    votes: list[VoteRow]
    epoch: EpochRow | None
    queries: list[str]  # audited queries that used the claim, newest first
    # The signers that are custodial keys (the server signed for an API key's holder,
    # through /mcp), with the API key each is bound to; empty when none is.
    custodial_signers: list[CustodialKeyView] = []


__all__ = [
    "AssertionBody",
    "AssertionDetail",
    "AssertionWarning",
    "SignatureRow",
    "SupersessionRow",
    "TraceResult",
    "VoteRow",
    "VoteSummary",
]
