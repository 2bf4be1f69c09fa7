"""Record kinds: the WAL record type byte of each record, and the stored entry shape."""

from __future__ import annotations

import enum

import msgspec

from stemedb.model.records import (
    Assertion,
    CoSignature,
    Epoch,
    Quarantine,
    QuarantineReview,
    Record,
    Retraction,
    Source,
    Supersession,
    TrustOutcome,
    Vote,
)


class RecordKind(enum.IntEnum):
    """The WAL record type byte. Values are part of the on-disk format: never renumber."""

    ASSERTION = 1
    COSIGNATURE = 2
    VOTE = 3
    EPOCH = 4
    SUPERSESSION = 5
    SOURCE = 6
    RETRACTION = 7
    TRUST_OUTCOME = 8
    QUARANTINE = 9
    QUARANTINE_REVIEW = 10


KIND_OF_TYPE: dict[type, RecordKind] = {
    Assertion: RecordKind.ASSERTION,
    CoSignature: RecordKind.COSIGNATURE,
    Vote: RecordKind.VOTE,
    Epoch: RecordKind.EPOCH,
    Supersession: RecordKind.SUPERSESSION,
    Source: RecordKind.SOURCE,
    Retraction: RecordKind.RETRACTION,
    TrustOutcome: RecordKind.TRUST_OUTCOME,
    Quarantine: RecordKind.QUARANTINE,
    QuarantineReview: RecordKind.QUARANTINE_REVIEW,
}
TYPE_OF_KIND: dict[RecordKind, type] = {kind: cls for cls, kind in KIND_OF_TYPE.items()}

AnyRecord = Record


class Entry(msgspec.Struct, frozen=True):
    """One committed record as the store applies it: its LSN, id and commit time."""

    lsn: int
    kind: RecordKind
    record_id: str
    record: AnyRecord
    committed_at: float
