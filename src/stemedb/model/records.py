"""The records of StemeDB (ARCHITECTURE §2) as msgspec structs.

These are the wire and WAL shapes. Field rules are enforced by ``model.validation``;
content IDs by ``model.ids``; signatures by ``model.signing``.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from stemedb.model.canonical import MAX_SAFE_INTEGER, exact_double

SourceClass = Literal["regulatory", "clinical", "observational", "expert", "community", "anecdotal"]
Lifecycle = Literal["proposed", "under_review", "approved", "deprecated", "rejected"]
ObjectType = Literal["text", "number", "boolean", "ref", "json"]
EpochKind = Literal["replace", "refine"]

SOURCE_CLASSES: Final[tuple[SourceClass, ...]] = (
    "regulatory",
    "clinical",
    "observational",
    "expert",
    "community",
    "anecdotal",
)
SOURCE_CLASS_TIER: Final[dict[str, int]] = {name: tier for tier, name in enumerate(SOURCE_CLASSES)}
DEFAULT_SOURCE_CLASS: Final[SourceClass] = "expert"
LIFECYCLES: Final[tuple[Lifecycle, ...]] = (
    "proposed",
    "under_review",
    "approved",
    "deprecated",
    "rejected",
)


JsonObjectValue = dict[str, Any] | list[Any]
"""The value of a ``json`` object: a JSON object or array, kept as decoded (ADR 0019)."""
BareValue = str | int | float | bool | JsonObjectValue
"""What ``model.signing.make_object`` turns into an ``ObjectValue`` (str → text …)."""


class ObjectValue(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The claimed value: ``{"type": "text"|"number"|"boolean"|"ref"|"json", "value": ...}``.

    A ``number`` is held in the form its canonical JSON (the signed bytes) has: an
    integral value within ±(2**53 - 1) as an ``int`` (``3`` and ``3.0`` are both the
    JSON number ``3``), any other as a ``float`` (ADR 0019). A ``json`` value is a
    ``dict`` or ``list`` kept as decoded."""

    type: ObjectType
    value: BareValue

    def __post_init__(self) -> None:
        if self.type != "number":
            return
        value: Any = self.value
        if type(value) is float:
            if value.is_integer() and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                msgspec.structs.force_setattr(self, "value", int(value))
        elif type(value) is int and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            # Beyond the range JSON carries exactly, a float, as every number was before;
            # an integer no double equals stays an int, refused by model.validation.
            as_float = exact_double(value)
            if as_float is not None:
                msgspec.structs.force_setattr(self, "value", as_float)


class Signature(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Ed25519 over ``stemedb/sig/v1:{id_hex}:{signed_at}`` by ``agent_id`` (hex public key)."""

    agent_id: str
    signature: str
    signed_at: int


class Assertion(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One signed claim. Immutable; identified by the hash of everything but signatures."""

    subject: str
    predicate: str
    object: ObjectValue
    confidence: float
    timestamp: int
    signatures: tuple[Signature, ...]
    source_hash: str | None = None
    source_class: SourceClass | None = None
    epoch: str | None = None
    parent: str | None = None
    lifecycle: Lifecycle = "proposed"
    valid_from: int | None = None
    valid_to: int | None = None


class CoSignature(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An extra signature appended to an existing assertion (multi-signature consensus)."""

    assertion_id: str
    signature: Signature


class Vote(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One agent's endorsement of an assertion; the latest vote of an agent counts."""

    assertion_id: str
    weight: float
    timestamp: int
    signature: Signature


class Epoch(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A named paradigm; assertions in a superseded epoch drop out of epoch-aware reads."""

    name: str
    timestamp: int
    signatures: tuple[Signature, ...]
    description: str = ""
    supersedes: tuple[str, ...] = ()
    kind: EpochKind = "replace"


class Supersession(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A signed statement that assertion ``new`` replaces ``old``; nothing is deleted."""

    old: str
    new: str
    reason: str
    timestamp: int
    signatures: tuple[Signature, ...]


class Source(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A registry entry for a piece of evidence, named by ``source_hash``."""

    source_hash: str
    uri: str
    timestamp: int
    signatures: tuple[Signature, ...]
    title: str = ""
    source_class: SourceClass | None = None
    published_at: int | None = None
    content: str | None = None


class Retraction(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Retracts a registered source: every assertion citing it (or descending from one
    that does) is flagged and excluded from lens resolution by default."""

    source_hash: str
    reason: str
    timestamp: int
    signatures: tuple[Signature, ...]


class TrustOutcome(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """An accuracy outcome for an agent (admin API or gold-standard check); unsigned."""

    agent_id: str
    accurate: bool
    timestamp: int


QUARANTINE_REASONS: Final[tuple[str, ...]] = (
    "near_duplicate",
    "untrusted_confidence",
    "fresh_key_burst",
)
QUARANTINE_DECISIONS: Final[tuple[str, ...]] = ("approve", "reject")


class Quarantine(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The screening step's decision to hold an assertion back from every lens and view
    until an admin reviews it (unsigned: written by the node, in the WAL, ADR 0023)."""

    assertion_id: str
    reason: str  # one of QUARANTINE_REASONS
    detail: str
    timestamp: int


class QuarantineReview(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """An admin's release (``approve``) or final ``reject`` of a quarantined assertion
    (unsigned: admin API, audited by the key id in ``reviewer``)."""

    assertion_id: str
    decision: str  # one of QUARANTINE_DECISIONS
    reviewer: str
    timestamp: int
    note: str = ""


Record = (
    Assertion
    | CoSignature
    | Vote
    | Epoch
    | Supersession
    | Source
    | Retraction
    | TrustOutcome
    | Quarantine
    | QuarantineReview
)
