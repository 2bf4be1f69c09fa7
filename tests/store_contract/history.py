"""Signed records as the group-commit writer hands them to a store.

``History`` numbers entries from LSN 1 and stamps them with a non-decreasing commit
time (``now``, moved by the test), like the writer does. Every record is built and
signed with ``stemedb.model.signing``; nothing is mocked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from stemedb.engine.codec import encode_payload
from stemedb.model.ids import record_id
from stemedb.model.kinds import KIND_OF_TYPE, AnyRecord, Entry
from stemedb.model.records import (
    Assertion,
    EpochKind,
    ObjectValue,
    Quarantine,
    QuarantineReview,
    Source,
    TrustOutcome,
)
from stemedb.model.signing import (
    AgentKey,
    cosign,
    sign_assertion,
    sign_epoch,
    sign_retraction,
    sign_source,
    sign_supersession,
    sign_vote,
)
from stemedb.wal import Wal

T0 = 1_700_000_000
SUBJECT = "drugs/semaglutide"
PREDICATE = "gastroparesis_risk"


def agent(index: int) -> AgentKey:
    """A fixed key per index (the same agents as the rest of the suite)."""
    return AgentKey.from_seed(bytes([index + 1]) * 32)


class History:
    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.now = float(T0)

    @property
    def last_lsn(self) -> int:
        return len(self.entries)

    def entry(self, record: AnyRecord) -> Entry:
        """The next entry: ``record`` at the next LSN, committed ``now``."""
        e = Entry(
            self.last_lsn + 1, KIND_OF_TYPE[type(record)], record_id(record), record, self.now
        )
        self.entries.append(e)
        return e

    def assertion(
        self,
        value: ObjectValue | str | float | bool = "rare",
        *,
        by: int = 0,
        subject: str = SUBJECT,
        predicate: str = PREDICATE,
        confidence: float = 0.8,
        timestamp: int = T0 - 100,
        **fields: Any,
    ) -> Entry:
        return self.entry(
            sign_assertion(
                agent(by),
                subject=subject,
                predicate=predicate,
                object=value,
                confidence=confidence,
                timestamp=timestamp,
                **fields,
            )
        )

    def cosignature(self, target: Entry, *, by: int) -> Entry:
        return self.entry(cosign(agent(by), target.record_id, signed_at=T0))

    def vote(self, target: Entry, weight: float, *, by: int, timestamp: int = T0) -> Entry:
        return self.entry(
            sign_vote(agent(by), assertion_id=target.record_id, weight=weight, timestamp=timestamp)
        )

    def source(self, content: str, *, by: int = 0, **fields: Any) -> Entry:
        return self.entry(
            sign_source(agent(by), uri=f"doi:{content}", content=content, timestamp=T0, **fields)
        )

    def retraction(self, source: Entry, *, by: int = 0, reason: str = "fabricated") -> Entry:
        source_hash = source_hash_of(source)
        return self.entry(
            sign_retraction(agent(by), source_hash=source_hash, reason=reason, timestamp=T0)
        )

    def epoch(
        self, name: str, *, supersedes: tuple[Entry, ...] = (), kind: EpochKind = "replace"
    ) -> Entry:
        return self.entry(
            sign_epoch(
                agent(0),
                name=name,
                supersedes=tuple(e.record_id for e in supersedes),
                kind=kind,
                timestamp=T0,
            )
        )

    def supersession(self, old: Entry, new: Entry, *, reason: str = "corrected") -> Entry:
        return self.entry(
            sign_supersession(
                agent(0), old=old.record_id, new=new.record_id, reason=reason, timestamp=T0
            )
        )

    def trust_outcome(self, *, of: int, accurate: bool, timestamp: int = T0) -> Entry:
        return self.entry(
            TrustOutcome(agent_id=agent(of).agent_id, accurate=accurate, timestamp=timestamp)
        )

    def quarantine(self, claim: Entry, reason: str = "near_duplicate") -> Entry:
        """The screening step's decision to hold ``claim`` back (ADR 0023)."""
        return self.entry(
            Quarantine(assertion_id=claim.record_id, reason=reason, detail="test", timestamp=T0)
        )

    def review(self, claim: Entry, decision: str, *, reviewer: str = "key-1") -> Entry:
        """An admin's approve or reject of a quarantined ``claim``."""
        return self.entry(
            QuarantineReview(
                assertion_id=claim.record_id, decision=decision, reviewer=reviewer, timestamp=T0
            )
        )

    def write_wal(self, wal: Wal) -> None:
        """Append every entry to ``wal`` as the writer frames them (LSNs must line up)."""
        frames = [
            (int(e.kind), encode_payload(e.record_id, e.committed_at, e.record))
            for e in self.entries
        ]
        assert wal.append(frames) == 1


def assertion_of(entry: Entry) -> Assertion:
    assert isinstance(entry.record, Assertion)
    return entry.record


def state_hash_of(entries: Sequence[Entry]) -> str:
    """The state hash by its definition: SHA-256 over ``lsn:kind:id`` lines in LSN order."""
    digest = hashlib.sha256()
    for e in entries:
        digest.update(f"{e.lsn}:{int(e.kind)}:{e.record_id}\n".encode())
    return digest.hexdigest()


def source_hash_of(entry: Entry) -> str:
    assert isinstance(entry.record, Source)
    return entry.record.source_hash
