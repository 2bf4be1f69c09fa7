"""Content IDs: SHA-256 over a per-kind domain tag plus the JCS of the normalized content.

The byte layout is normative and documented in ``docs/design/signing.md``. Each record
kind has its own tag so that no record can be replayed as another kind. Signatures are
never part of the content (a co-signature does not change an assertion's ID), except
that a vote's ``agent_id`` is: the same weight from two agents is two votes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Final, TypeAlias

from stemedb.errors import ValidationError
from stemedb.model.canonical import (
    MAX_SAFE_INTEGER,
    JsonValue,
    canonical_json,
    encode_prepared,
    json_number,
)
from stemedb.model.records import (
    Assertion,
    CoSignature,
    Epoch,
    Quarantine,
    QuarantineReview,
    Retraction,
    Source,
    Supersession,
    TrustOutcome,
    Vote,
)

ASSERTION_TAG: Final[bytes] = b"stemedb/assertion/v1\n"
VOTE_TAG: Final[bytes] = b"stemedb/vote/v1\n"
EPOCH_TAG: Final[bytes] = b"stemedb/epoch/v1\n"
SUPERSESSION_TAG: Final[bytes] = b"stemedb/supersession/v1\n"
SOURCE_TAG: Final[bytes] = b"stemedb/source/v1\n"
RETRACTION_TAG: Final[bytes] = b"stemedb/retraction/v1\n"
COSIGN_TAG: Final[bytes] = b"stemedb/cosign/v1\n"

TRUST_OUTCOME_TAG: Final[bytes] = b"stemedb/trust-outcome/v1\n"
QUARANTINE_TAG: Final[bytes] = b"stemedb/quarantine/v1\n"
QUARANTINE_REVIEW_TAG: Final[bytes] = b"stemedb/quarantine-review/v1\n"

SignedRecord: TypeAlias = (
    Assertion | CoSignature | Vote | Epoch | Supersession | Source | Retraction
)
"""Every record kind that carries signatures (all but the node's and admin's events)."""
UnsignedRecord: TypeAlias = TrustOutcome | Quarantine | QuarantineReview
AnyRecord: TypeAlias = SignedRecord | UnsignedRecord

Content: TypeAlias = dict[str, JsonValue]


def content_id(tag: bytes, content: Content) -> str:
    """``sha256(tag + canonical_json(content))`` as lowercase hex."""
    return hashlib.sha256(tag + canonical_json(content)).hexdigest()


def assertion_content(a: Assertion) -> Content:
    """The normalized content of an assertion: all twelve fields, no signatures."""
    return {
        "subject": a.subject,
        "predicate": a.predicate,
        "object": {"type": a.object.type, "value": a.object.value},
        "confidence": a.confidence,
        "source_hash": a.source_hash,
        "source_class": a.source_class,
        "epoch": a.epoch,
        "parent": a.parent,
        "lifecycle": a.lifecycle if a.lifecycle is not None else "proposed",
        "valid_from": a.valid_from,
        "valid_to": a.valid_to,
        "timestamp": a.timestamp,
    }


def _safe_int_or_none(value: object) -> bool:
    return value is None or (type(value) is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)


def _str_or_none(value: object) -> bool:
    return value is None or type(value) is str


def _fast_assertion_json(a: Assertion) -> bytes | None:
    """JCS bytes of the assertion content for the common, well-typed case; else None.

    Only exact ``str``/``int``/``float``/``bool`` fields take this path; anything else
    falls back to ``canonical_json``, which handles (or rejects) it in full.
    """
    value: Any = a.object.value
    confidence: Any = a.confidence
    if not (
        type(a.subject) is str
        and type(a.predicate) is str
        and type(a.object.type) is str
        and _str_or_none(a.source_hash)
        and _str_or_none(a.source_class)
        and _str_or_none(a.epoch)
        and _str_or_none(a.parent)
        and type(a.lifecycle) is str
        and type(a.timestamp) is int
        and _safe_int_or_none(a.timestamp)
        and _safe_int_or_none(a.valid_from)
        and _safe_int_or_none(a.valid_to)
    ):
        return None
    try:
        if type(value) is float:
            value = json_number(value)
        elif type(value) is int:
            if not _safe_int_or_none(value):
                return None
        elif type(value) is not str and type(value) is not bool:
            return None  # a json value (dict/list): canonical_json walks it
        if type(confidence) is float:
            confidence = json_number(confidence)
        elif not (type(confidence) is int and _safe_int_or_none(confidence)):
            return None
        return encode_prepared(
            {
                "subject": a.subject,
                "predicate": a.predicate,
                "object": {"type": a.object.type, "value": value},
                "confidence": confidence,
                "source_hash": a.source_hash,
                "source_class": a.source_class,
                "epoch": a.epoch,
                "parent": a.parent,
                "lifecycle": a.lifecycle,
                "valid_from": a.valid_from,
                "valid_to": a.valid_to,
                "timestamp": a.timestamp,
            }
        )
    except (ValidationError, UnicodeEncodeError):
        return None  # the slow path reports it with the right field path


def assertion_id(a: Assertion) -> str:
    """The content ID of an assertion (independent of its signatures)."""
    body = _fast_assertion_json(a)
    if body is None:
        body = canonical_json(assertion_content(a))
    return hashlib.sha256(ASSERTION_TAG + body).hexdigest()


def vote_content(v: Vote) -> Content:
    """``{assertion_id, weight, timestamp, agent_id}``; the agent comes from the signature."""
    return {
        "assertion_id": v.assertion_id,
        "weight": v.weight,
        "timestamp": v.timestamp,
        "agent_id": v.signature.agent_id,
    }


def epoch_content(e: Epoch) -> Content:
    """``{name, description, supersedes, kind, timestamp}``."""
    return {
        "name": e.name,
        "description": e.description,
        "supersedes": list(e.supersedes),
        "kind": e.kind,
        "timestamp": e.timestamp,
    }


def supersession_content(s: Supersession) -> Content:
    """``{old, new, reason, timestamp}``."""
    return {"old": s.old, "new": s.new, "reason": s.reason, "timestamp": s.timestamp}


def source_content(s: Source) -> Content:
    """``{source_hash, uri, title, source_class, published_at, content, timestamp}``."""
    return {
        "source_hash": s.source_hash,
        "uri": s.uri,
        "title": s.title,
        "source_class": s.source_class,
        "published_at": s.published_at,
        "content": s.content,
        "timestamp": s.timestamp,
    }


def retraction_content(r: Retraction) -> Content:
    """``{source_hash, reason, timestamp}``."""
    return {"source_hash": r.source_hash, "reason": r.reason, "timestamp": r.timestamp}


def cosignature_content(c: CoSignature) -> Content:
    """``{assertion_id, agent_id}``: one agent co-signs one assertion once.

    The co-signature's *signature* covers the assertion ID (it is one more signature
    on the assertion); this content only names the co-signature record itself, so a
    repeated co-signature by the same agent is idempotent.
    """
    return {"assertion_id": c.assertion_id, "agent_id": c.signature.agent_id}


def trust_outcome_content(t: TrustOutcome) -> Content:
    """``{agent_id, accurate, timestamp}``. Unsigned (admin API); the ID only dedupes a
    retried request, so two identical outcomes in the same second count once."""
    return {"agent_id": t.agent_id, "accurate": t.accurate, "timestamp": t.timestamp}


def quarantine_content(q: Quarantine) -> Content:
    """``{assertion_id, reason, detail, timestamp}`` (unsigned: written by the node)."""
    return {
        "assertion_id": q.assertion_id,
        "reason": q.reason,
        "detail": q.detail,
        "timestamp": q.timestamp,
    }


def quarantine_review_content(r: QuarantineReview) -> Content:
    """``{assertion_id, decision, reviewer, note, timestamp}`` (unsigned: admin API)."""
    return {
        "assertion_id": r.assertion_id,
        "decision": r.decision,
        "reviewer": r.reviewer,
        "note": r.note,
        "timestamp": r.timestamp,
    }


def vote_id(v: Vote) -> str:
    """Content ID of a vote."""
    return content_id(VOTE_TAG, vote_content(v))


def epoch_id(e: Epoch) -> str:
    """Content ID of an epoch."""
    return content_id(EPOCH_TAG, epoch_content(e))


def supersession_id(s: Supersession) -> str:
    """Content ID of a supersession."""
    return content_id(SUPERSESSION_TAG, supersession_content(s))


def source_id(s: Source) -> str:
    """Content ID of a source registration (not its ``source_hash``, which names the evidence)."""
    return content_id(SOURCE_TAG, source_content(s))


def retraction_id(r: Retraction) -> str:
    """Content ID of a retraction."""
    return content_id(RETRACTION_TAG, retraction_content(r))


def cosignature_id(c: CoSignature) -> str:
    """Content ID of a co-signature record."""
    return content_id(COSIGN_TAG, cosignature_content(c))


def trust_outcome_id(t: TrustOutcome) -> str:
    """Content ID of a trust outcome."""
    return content_id(TRUST_OUTCOME_TAG, trust_outcome_content(t))


def quarantine_id(q: Quarantine) -> str:
    """Content ID of a quarantine decision."""
    return content_id(QUARANTINE_TAG, quarantine_content(q))


def quarantine_review_id(r: QuarantineReview) -> str:
    """Content ID of an admin's review of a quarantined assertion."""
    return content_id(QUARANTINE_REVIEW_TAG, quarantine_review_content(r))


_ID_FUNCTIONS: Final[dict[type, Callable[[Any], str]]] = {
    Assertion: assertion_id,
    Vote: vote_id,
    Epoch: epoch_id,
    Supersession: supersession_id,
    Source: source_id,
    Retraction: retraction_id,
    CoSignature: cosignature_id,
    TrustOutcome: trust_outcome_id,
    Quarantine: quarantine_id,
    QuarantineReview: quarantine_review_id,
}


def record_id(record: AnyRecord) -> str:
    """The content ID of any record (TypeError for anything that is not a record)."""
    try:
        function = _ID_FUNCTIONS[type(record)]
    except KeyError:
        raise TypeError(f"{type(record).__name__} is not a StemeDB record") from None
    return function(record)


def signed_message_id(record: SignedRecord) -> str:
    """The ID a record's signatures cover: its own ID, or for a co-signature the
    assertion ID it co-signs."""
    if type(record) is CoSignature:
        return record.assertion_id
    return record_id(record)
