"""Field rules of every record (ARCHITECTURE §2) and ``verify_record``, the one entry
point the engine calls (from a thread pool) before a record may enter the WAL.

Every failure is ``ValidationError(field, rule)``: ``field`` is a JSON path such as
``object.value`` or ``signatures[1].agent_id``; ``rule`` is a short stable snake_case
phrase (``empty``, ``too_long``, ``control_character``, ``hex_format``, ``in_future`` …)
that clients may match on. Bad signatures raise ``SignatureError`` (401).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable, Collection, Sequence
from typing import Final

from stemedb.errors import ValidationError
from stemedb.model.canonical import MAX_SAFE_INTEGER, exact_double
from stemedb.model.ids import AnyRecord, record_id
from stemedb.model.json_value import check_json_value
from stemedb.model.records import (
    LIFECYCLES,
    QUARANTINE_DECISIONS,
    QUARANTINE_REASONS,
    SOURCE_CLASSES,
    Assertion,
    CoSignature,
    Epoch,
    ObjectValue,
    Quarantine,
    QuarantineReview,
    Retraction,
    Signature,
    Source,
    Supersession,
    TrustOutcome,
    Vote,
)
from stemedb.model.signing import (
    HEX64,
    check_signature_shape,
    verify_well_formed_signature,
)

SIGNATURE_MAX_SKEW_SECONDS: Final[int] = 300
"""Default tolerance for clocks running ahead (config ``auth.signature_max_skew_seconds``)."""
SUBJECT_MAX_BYTES: Final[int] = 512
PREDICATE_MAX_BYTES: Final[int] = 256
TEXT_VALUE_MAX_BYTES: Final[int] = 64 * 1024
MAX_SIGNATURES: Final[int] = 16
EPOCH_NAME_MAX_BYTES: Final[int] = 256
EPOCH_DESCRIPTION_MAX_BYTES: Final[int] = 4096
MAX_SUPERSEDED_EPOCHS: Final[int] = 64
REASON_MAX_BYTES: Final[int] = 4096
URI_MAX_BYTES: Final[int] = 2048
TITLE_MAX_BYTES: Final[int] = 1024
SOURCE_CONTENT_MAX_BYTES: Final[int] = 1024 * 1024

OBJECT_TYPES: Final[tuple[str, ...]] = ("text", "number", "boolean", "ref", "json")
EPOCH_KINDS: Final[tuple[str, ...]] = ("replace", "refine")

_CONTROL_CHARACTER: Final[re.Pattern[str]] = re.compile("[\x00-\x1f\x7f-\x9f]")


def _utf8_length(value: str, field: str) -> int:
    if value.isascii():
        return len(value)
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValidationError(
            field, "invalid_unicode", f"{field} contains a lone surrogate (not valid UTF-8)"
        ) from None


def check_name(value: object, field: str, max_bytes: int) -> None:
    """A subject-like string: 1..max_bytes bytes of UTF-8 and no C0/DEL/C1 control characters."""
    if type(value) is not str:
        raise ValidationError(field, "type", f"{field} must be a string")
    size = _utf8_length(value, field)
    if size == 0:
        raise ValidationError(field, "empty", f"{field} must not be empty")
    if size > max_bytes:
        raise ValidationError(
            field, "too_long", f"{field} is {size} bytes of UTF-8; the limit is {max_bytes}"
        )
    bad = _CONTROL_CHARACTER.search(value)
    if bad is not None:
        raise ValidationError(
            field,
            "control_character",
            f"{field} contains control character U+{ord(bad.group()):04X} at index {bad.start()}",
        )


def check_text(value: object, field: str, *, max_bytes: int, min_bytes: int = 0) -> None:
    """Free text (newlines allowed): ``min_bytes``..``max_bytes`` bytes of UTF-8."""
    if type(value) is not str:
        raise ValidationError(field, "type", f"{field} must be a string")
    size = _utf8_length(value, field)
    if size < min_bytes:
        raise ValidationError(field, "empty", f"{field} must not be empty")
    if size > max_bytes:
        raise ValidationError(
            field, "too_long", f"{field} is {size} bytes of UTF-8; the limit is {max_bytes}"
        )


def check_hex_id(value: object, field: str, *, nullable: bool = False) -> None:
    """A content ID, hash or public key: 64 lowercase hex characters (or null if allowed)."""
    if value is None and nullable:
        return
    if type(value) is not str or HEX64.fullmatch(value) is None:
        raise ValidationError(
            field, "hex_format", f"{field} must be 64 lowercase hex characters (32 bytes)"
        )


def check_int(value: object, field: str, *, nullable: bool = False) -> None:
    """An integer (not a bool) that JSON carries exactly, or null if allowed."""
    if value is None and nullable:
        return
    if type(value) is not int:
        raise ValidationError(field, "type", f"{field} must be an integer")
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise ValidationError(field, "out_of_range", f"{field} is outside ±(2**53 - 1){_WHY_2_53}")


_WHY_2_53: Final = (
    ": the signed canonical form (JCS, RFC 8785) writes every number as an IEEE-754"
    " double, which holds integers exactly only up to 2**53"
)
_MAX_SHOWN_DIGITS: Final = 40


def check_exact_integer(value: object, field: str) -> None:
    """An integer beyond ±(2**53 - 1) that no IEEE-754 double equals (``2**53 + 1``) is
    refused: it would be signed, stored and read back as another number. Integers a
    double holds (``2**60``) pass, as before (ADR 0019)."""
    if type(value) is not int or -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return
    if exact_double(value) is not None:
        return
    digits = len(str(value)) if value.bit_length() < 10_000 else value.bit_length() * 3 // 10
    shown = str(value) if digits <= _MAX_SHOWN_DIGITS else f"an integer of about {digits} digits"
    raise ValidationError(
        field,
        "integer_out_of_range",
        f"{field} {shown} is an integer beyond ±(2**53 - 1) that no double equals{_WHY_2_53};"
        " send it as text, or as a float that may be rounded",
    )


def check_timestamp(value: object, field: str, now: float, max_skew_seconds: int) -> None:
    """Unix seconds, >= 0, at most ``max_skew_seconds`` ahead of ``now``."""
    check_int(value, field)
    assert type(value) is int
    if value < 0:
        raise ValidationError(field, "negative", f"{field} must be >= 0 (unix seconds)")
    if value > now + max_skew_seconds:
        raise ValidationError(
            field,
            "in_future",
            f"{field} {value} is more than {max_skew_seconds}s ahead of the server clock"
            f" ({int(now)}); check the client's clock",
        )


def check_unit_interval(value: object, field: str) -> None:
    """A finite number in [0, 1] (bools are not numbers)."""
    if type(value) is not float and type(value) is not int:
        raise ValidationError(field, "type", f"{field} must be a number")
    if type(value) is float and not math.isfinite(value):
        raise ValidationError(field, "not_finite", f"{field} must be finite")
    if not 0.0 <= value <= 1.0:
        raise ValidationError(field, "out_of_range", f"{field} must be between 0 and 1")


def check_enum(value: object, field: str, allowed: Collection[str], *, nullable: bool) -> None:
    """One of ``allowed`` (or null if allowed)."""
    if value is None and nullable:
        return
    if type(value) is not str or value not in allowed:
        raise ValidationError(field, "enum", f"{field} must be one of: {', '.join(allowed)}")


def check_signature(sig: object, field: str, now: float, max_skew_seconds: int) -> None:
    """A well-formed signature whose ``signed_at`` is not in the future."""
    if type(sig) is not Signature:
        raise ValidationError(field, "type", f"{field} must be a signature object")
    check_signature_shape(sig, field)
    check_timestamp(sig.signed_at, f"{field}.signed_at", now, max_skew_seconds)


def check_signatures(sigs: object, now: float, max_skew_seconds: int) -> None:
    """1..16 well-formed signatures by distinct agents."""
    if not isinstance(sigs, tuple | list):
        raise ValidationError("signatures", "type", "signatures must be a list")
    if not sigs:
        raise ValidationError("signatures", "empty", "at least one signature is required")
    if len(sigs) > MAX_SIGNATURES:
        raise ValidationError(
            "signatures", "too_many", f"at most {MAX_SIGNATURES} signatures per record"
        )
    seen: set[str] = set()
    for index, sig in enumerate(sigs):
        field = f"signatures[{index}]"
        check_signature(sig, field, now, max_skew_seconds)
        if sig.agent_id in seen:
            raise ValidationError(
                f"{field}.agent_id", "duplicate_agent", f"agent {sig.agent_id} signed twice"
            )
        seen.add(sig.agent_id)


def check_object(obj: object) -> None:
    """``{"type", "value"}`` whose value agrees with its type."""
    if type(obj) is not ObjectValue:
        raise ValidationError("object", "type", 'object must be {"type": ..., "value": ...}')
    kind, value = obj.type, obj.value
    check_enum(kind, "object.type", OBJECT_TYPES, nullable=False)
    if kind == "text":
        if type(value) is not str:
            raise _mismatch("a string", kind)
        check_text(value, "object.value", max_bytes=TEXT_VALUE_MAX_BYTES)
    elif kind == "number":
        _check_number(value)
    elif kind == "boolean":
        if type(value) is not bool:
            raise _mismatch("true or false", kind)
    elif kind == "json":
        check_json_value(value)
    else:
        if type(value) is not str:
            raise _mismatch("a subject string", kind)
        check_name(value, "object.value", SUBJECT_MAX_BYTES)


def _check_number(value: object) -> None:
    if type(value) is not float and type(value) is not int:
        raise _mismatch("a number", "number")
    if type(value) is float and not math.isfinite(value):
        raise ValidationError("object.value", "not_finite", "object.value must be finite")
    check_exact_integer(value, "object.value")


def _mismatch(expected: str, kind: str) -> ValidationError:
    return ValidationError(
        "object.value", "type_mismatch", f"object.value must be {expected} for type {kind!r}"
    )


def validate_assertion(
    a: Assertion, *, now: float, max_skew_seconds: int = SIGNATURE_MAX_SKEW_SECONDS
) -> None:
    """Check every field rule of an assertion (signatures are checked for shape only)."""
    check_name(a.subject, "subject", SUBJECT_MAX_BYTES)
    check_name(a.predicate, "predicate", PREDICATE_MAX_BYTES)
    check_object(a.object)
    check_unit_interval(a.confidence, "confidence")
    check_hex_id(a.source_hash, "source_hash", nullable=True)
    check_enum(a.source_class, "source_class", SOURCE_CLASSES, nullable=True)
    check_hex_id(a.epoch, "epoch", nullable=True)
    check_hex_id(a.parent, "parent", nullable=True)
    check_enum(a.lifecycle, "lifecycle", LIFECYCLES, nullable=False)
    check_int(a.valid_from, "valid_from", nullable=True)
    check_int(a.valid_to, "valid_to", nullable=True)
    if a.valid_from is not None and a.valid_to is not None and a.valid_from > a.valid_to:
        raise ValidationError(
            "valid_to", "before_valid_from", "valid_to must not be earlier than valid_from"
        )
    check_timestamp(a.timestamp, "timestamp", now, max_skew_seconds)
    check_signatures(a.signatures, now, max_skew_seconds)


def validate_cosignature(
    c: CoSignature, *, now: float, max_skew_seconds: int = SIGNATURE_MAX_SKEW_SECONDS
) -> None:
    """A co-signature names an assertion ID and carries one well-formed signature."""
    check_hex_id(c.assertion_id, "assertion_id")
    check_signature(c.signature, "signature", now, max_skew_seconds)


def validate_vote(
    v: Vote, *, now: float, max_skew_seconds: int = SIGNATURE_MAX_SKEW_SECONDS
) -> None:
    """Vote: assertion ID, weight in [0, 1], timestamp, one signature."""
    check_hex_id(v.assertion_id, "assertion_id")
    check_unit_interval(v.weight, "weight")
    check_timestamp(v.timestamp, "timestamp", now, max_skew_seconds)
    check_signature(v.signature, "signature", now, max_skew_seconds)


def validate_epoch(
    e: Epoch, *, now: float, max_skew_seconds: int = SIGNATURE_MAX_SKEW_SECONDS
) -> None:
    """Epoch: name, description, kind, up to 64 distinct superseded epoch IDs."""
    check_name(e.name, "name", EPOCH_NAME_MAX_BYTES)
    check_text(e.description, "description", max_bytes=EPOCH_DESCRIPTION_MAX_BYTES)
    check_enum(e.kind, "kind", EPOCH_KINDS, nullable=False)
    _check_id_list(e.supersedes, "supersedes", MAX_SUPERSEDED_EPOCHS)
    check_timestamp(e.timestamp, "timestamp", now, max_skew_seconds)
    check_signatures(e.signatures, now, max_skew_seconds)


def _check_id_list(ids: object, field: str, max_items: int) -> None:
    if not isinstance(ids, tuple | list):
        raise ValidationError(field, "type", f"{field} must be a list of IDs")
    if len(ids) > max_items:
        raise ValidationError(field, "too_many", f"{field} holds at most {max_items} IDs")
    seen: set[str] = set()
    for index, item in enumerate(ids):
        check_hex_id(item, f"{field}[{index}]")
        if item in seen:
            raise ValidationError(f"{field}[{index}]", "duplicate", f"{item} is listed twice")
        seen.add(item)


def validate_supersession(
    s: Supersession, *, now: float, max_skew_seconds: int = SIGNATURE_MAX_SKEW_SECONDS
) -> None:
    """Supersession: two different assertion IDs and a reason."""
    check_hex_id(s.old, "old")
    check_hex_id(s.new, "new")
    if s.old == s.new:
        raise ValidationError("new", "same_as_old", "an assertion cannot supersede itself")
    check_text(s.reason, "reason", min_bytes=1, max_bytes=REASON_MAX_BYTES)
    check_timestamp(s.timestamp, "timestamp", now, max_skew_seconds)
    check_signatures(s.signatures, now, max_skew_seconds)


def validate_source(
    s: Source, *, now: float, max_skew_seconds: int = SIGNATURE_MAX_SKEW_SECONDS
) -> None:
    """Source: hash, URI, optional content (≤ 1 MiB) that must hash to ``source_hash``."""
    check_hex_id(s.source_hash, "source_hash")
    check_name(s.uri, "uri", URI_MAX_BYTES)
    check_text(s.title, "title", max_bytes=TITLE_MAX_BYTES)
    check_enum(s.source_class, "source_class", SOURCE_CLASSES, nullable=True)
    check_int(s.published_at, "published_at", nullable=True)
    if s.content is not None:
        check_text(s.content, "content", max_bytes=SOURCE_CONTENT_MAX_BYTES)
        if hashlib.sha256(s.content.encode("utf-8")).hexdigest() != s.source_hash:
            raise ValidationError(
                "source_hash",
                "content_mismatch",
                "source_hash must be the SHA-256 (hex) of content encoded as UTF-8",
            )
    check_timestamp(s.timestamp, "timestamp", now, max_skew_seconds)
    check_signatures(s.signatures, now, max_skew_seconds)


def validate_retraction(
    r: Retraction, *, now: float, max_skew_seconds: int = SIGNATURE_MAX_SKEW_SECONDS
) -> None:
    """Retraction: a source hash and a reason."""
    check_hex_id(r.source_hash, "source_hash")
    check_text(r.reason, "reason", min_bytes=1, max_bytes=REASON_MAX_BYTES)
    check_timestamp(r.timestamp, "timestamp", now, max_skew_seconds)
    check_signatures(r.signatures, now, max_skew_seconds)


def validate_trust_outcome(
    t: TrustOutcome, *, now: float, max_skew_seconds: int = SIGNATURE_MAX_SKEW_SECONDS
) -> None:
    """Trust outcome (unsigned, admin API): agent ID, bool ``accurate``, timestamp."""
    check_hex_id(t.agent_id, "agent_id")
    if type(t.accurate) is not bool:
        raise ValidationError("accurate", "type", "accurate must be true or false")
    check_timestamp(t.timestamp, "timestamp", now, max_skew_seconds)


def validate_quarantine(
    q: Quarantine | QuarantineReview, *, now: float, max_skew_seconds: int = 0
) -> None:
    """A quarantine decision or review (unsigned, node and admin API; ADR 0023)."""
    check_hex_id(q.assertion_id, "assertion_id")
    names = QUARANTINE_REASONS if isinstance(q, Quarantine) else QUARANTINE_DECISIONS
    field, value = ("reason", q.reason) if isinstance(q, Quarantine) else ("decision", q.decision)
    if value not in names:
        raise ValidationError(field, "enum", f"{field} must be one of {', '.join(names)}")
    check_text(
        q.detail if isinstance(q, Quarantine) else q.note, "note", max_bytes=REASON_MAX_BYTES
    )
    if max_skew_seconds:
        check_timestamp(q.timestamp, "timestamp", now, max_skew_seconds)


UNSIGNED_TYPES: Final = (TrustOutcome, Quarantine, QuarantineReview)
_VALIDATORS: Final[dict[type, Callable[..., None]]] = {
    Assertion: validate_assertion,
    CoSignature: validate_cosignature,
    Vote: validate_vote,
    Epoch: validate_epoch,
    Supersession: validate_supersession,
    Source: validate_source,
    Retraction: validate_retraction,
    TrustOutcome: validate_trust_outcome,
    Quarantine: validate_quarantine,
    QuarantineReview: validate_quarantine,
}


def validate_record(
    record: AnyRecord, *, now: float, max_skew_seconds: int = SIGNATURE_MAX_SKEW_SECONDS
) -> None:
    """Dispatch to the validator of the record's kind (TypeError for a non-record)."""
    try:
        validator = _VALIDATORS[type(record)]
    except KeyError:
        raise TypeError(f"{type(record).__name__} is not a StemeDB record") from None
    validator(record, now=now, max_skew_seconds=max_skew_seconds)


def record_signatures(record: AnyRecord) -> Sequence[Signature]:
    """The signatures a record carries (none for a trust outcome)."""
    if isinstance(record, Vote | CoSignature):
        return (record.signature,)
    if isinstance(record, UNSIGNED_TYPES):
        return ()
    return record.signatures


def verify_record(
    record: AnyRecord,
    *,
    now: float | None = None,
    max_skew_seconds: int = SIGNATURE_MAX_SKEW_SECONDS,
) -> str:
    """Validate ``record``, compute its ID and verify every signature; return the ID.

    ``now`` defaults to the wall clock; the engine passes its own clock's reading.
    Raises ValidationError for a broken rule, SignatureError for a bad signature.
    Safe to call from worker threads (libsodium releases the GIL).
    """
    current = time.time() if now is None else now
    validate_record(record, now=current, max_skew_seconds=max_skew_seconds)
    rid = record_id(record)
    if type(record) is CoSignature:
        verify_well_formed_signature(record.assertion_id, record.signature, "signature")
    elif type(record) is Vote:
        verify_well_formed_signature(rid, record.signature, "signature")
    elif not isinstance(record, UNSIGNED_TYPES):
        for index, sig in enumerate(record_signatures(record)):
            verify_well_formed_signature(rid, sig, f"signatures[{index}]")
    return rid
