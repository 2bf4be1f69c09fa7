"""Ed25519 agent keys, the signature message, and signature verification.

A signature is Ed25519 over the ASCII message ``stemedb/sig/v1:{id_hex}:{signed_at}``
(``docs/design/signing.md``). An agent's identity *is* its hex public key. libsodium
releases the GIL while verifying, so callers verify in a thread pool.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path
from typing import Final, TypeVar

import msgspec
import nacl.bindings
import nacl.exceptions
import nacl.signing

from stemedb.errors import SignatureError, ValidationError
from stemedb.model.ids import record_id
from stemedb.model.records import (
    Assertion,
    BareValue,
    CoSignature,
    Epoch,
    EpochKind,
    Lifecycle,
    ObjectValue,
    Retraction,
    Signature,
    Source,
    SourceClass,
    Supersession,
    Vote,
)

SIGNATURE_MESSAGE_PREFIX: Final[str] = "stemedb/sig/v1:"
SEED_BYTES: Final[int] = 32
KEY_FILE_MODE: Final[int] = 0o600

HEX64: Final[re.Pattern[str]] = re.compile(r"[0-9a-f]{64}")
HEX128: Final[re.Pattern[str]] = re.compile(r"[0-9a-f]{128}")


def signature_message(record_id: str, signed_at: int) -> bytes:
    """The exact bytes an agent signs: ``stemedb/sig/v1:{record_id}:{signed_at}``."""
    return f"{SIGNATURE_MESSAGE_PREFIX}{record_id}:{signed_at}".encode("ascii")


def is_hex64(value: object) -> bool:
    """True for a string of exactly 64 lowercase hex characters (an ID or public key)."""
    return type(value) is str and HEX64.fullmatch(value) is not None


def check_signature_shape(sig: Signature, field: str = "signature") -> None:
    """Raise ValidationError unless ``sig`` is well formed (hex lengths, int ``signed_at``)."""
    if not is_hex64(sig.agent_id):
        raise ValidationError(
            f"{field}.agent_id",
            "hex_format",
            f"{field}.agent_id must be an Ed25519 public key as 64 lowercase hex characters",
        )
    if type(sig.signature) is not str or HEX128.fullmatch(sig.signature) is None:
        raise ValidationError(
            f"{field}.signature",
            "hex_format",
            f"{field}.signature must be an Ed25519 signature as 128 lowercase hex characters",
        )
    if type(sig.signed_at) is not int:
        raise ValidationError(
            f"{field}.signed_at", "type", f"{field}.signed_at must be an integer (unix seconds)"
        )


def verify_signature(record_id: str, sig: Signature, field: str = "signature") -> None:
    """Check ``sig`` over ``record_id``; raise SignatureError if it does not verify.

    Malformed hex or lengths raise ValidationError (field e.g. ``signatures[1].agent_id``).
    """
    check_signature_shape(sig, field)
    if not is_hex64(record_id):
        raise ValidationError("id", "hex_format", "a record ID is 64 lowercase hex characters")
    verify_well_formed_signature(record_id, sig, field)


def verify_well_formed_signature(record_id: str, sig: Signature, field: str = "signature") -> None:
    """``verify_signature`` without the shape checks, for callers that already did them."""
    signed = bytes.fromhex(sig.signature) + signature_message(record_id, sig.signed_at)
    try:
        nacl.bindings.crypto_sign_open(signed, bytes.fromhex(sig.agent_id))
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        raise SignatureError(
            f"signature by agent {sig.agent_id} does not verify for record {record_id}",
            details={"field": field, "agent_id": sig.agent_id, "record_id": record_id},
        ) from None


class AgentKey:
    """An agent's Ed25519 signing key. ``agent_id`` is the hex public key."""

    __slots__ = ("_signing_key", "agent_id")

    def __init__(self, signing_key: nacl.signing.SigningKey) -> None:
        self._signing_key = signing_key
        self.agent_id: str = bytes(signing_key.verify_key).hex()

    @classmethod
    def generate(cls) -> AgentKey:
        """A fresh random key."""
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> AgentKey:
        """The key for a 32-byte seed (deterministic)."""
        if type(seed) is not bytes or len(seed) != SEED_BYTES:
            raise ValidationError("seed", "length", "an Ed25519 seed is exactly 32 bytes")
        return cls(nacl.signing.SigningKey(seed))

    @classmethod
    def from_hex(cls, seed_hex: str) -> AgentKey:
        """The key for a seed given as 64 hex characters."""
        text = seed_hex.strip().lower()
        if not is_hex64(text):
            raise ValidationError("seed", "hex_format", "a seed is 64 hex characters (32 bytes)")
        return cls.from_seed(bytes.fromhex(text))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AgentKey:
        """Read a key file written by ``save`` (the hex seed on one line)."""
        return cls.from_hex(Path(path).read_text(encoding="ascii"))

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the hex seed to ``path`` with mode 0600. Refuses to replace an existing
        file unless ``overwrite`` (raises FileExistsError): losing a key loses an identity.

        This is the SDK's writer (the SDK may not import ``stemedb.sys``), so it calls
        the OS itself; the server's tools write key files through ``stemedb.sys``
        (``stemedb keygen``), with the same bytes (``encode_key_file``)."""
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        fd = os.open(path, flags, KEY_FILE_MODE)
        try:
            os.fchmod(fd, KEY_FILE_MODE)
            os.write(fd, encode_key_file(self))
            os.fsync(fd)
        finally:
            os.close(fd)

    def seed_hex(self) -> str:
        """The secret seed as hex. Handle with care."""
        return bytes(self._signing_key).hex()

    def sign(self, record_id: str, signed_at: int) -> Signature:
        """Sign ``record_id`` (a 64-hex content ID) at ``signed_at`` (unix seconds)."""
        if not is_hex64(record_id):
            raise ValidationError("id", "hex_format", "a record ID is 64 lowercase hex characters")
        if type(signed_at) is not int:
            raise ValidationError("signed_at", "type", "signed_at must be an integer")
        raw = self._signing_key.sign(signature_message(record_id, signed_at)).signature
        return Signature(agent_id=self.agent_id, signature=raw.hex(), signed_at=signed_at)

    def __repr__(self) -> str:
        return f"AgentKey(agent_id={self.agent_id!r})"


def encode_key_file(key: AgentKey) -> bytes:
    """The bytes of a key file (``AgentKey.load`` reads them): the hex seed, one line."""
    return (key.seed_hex() + "\n").encode("ascii")


# --- builders for the SDK and tests -------------------------------------------------


def _now() -> int:
    return int(time.time())


def make_object(value: ObjectValue | BareValue) -> ObjectValue:
    """An ``ObjectValue`` from a bare value: bool → boolean, int/float → number, str → text,
    dict/list → json. Pass ``ObjectValue("ref", "subject/…")`` for a reference."""
    if isinstance(value, ObjectValue):
        return value
    if isinstance(value, bool):
        return ObjectValue(type="boolean", value=value)
    if isinstance(value, int | float):
        return ObjectValue(type="number", value=value)
    if isinstance(value, dict | list):
        return ObjectValue(type="json", value=value)
    return ObjectValue(type="text", value=value)


def sign_assertion(
    key: AgentKey,
    *,
    subject: str,
    predicate: str,
    object: ObjectValue | BareValue,
    confidence: float,
    timestamp: int | None = None,
    signed_at: int | None = None,
    source_hash: str | None = None,
    source_class: SourceClass | None = None,
    epoch: str | None = None,
    parent: str | None = None,
    lifecycle: Lifecycle = "proposed",
    valid_from: int | None = None,
    valid_to: int | None = None,
) -> Assertion:
    """A new assertion signed by ``key`` (``timestamp`` and ``signed_at`` default to now)."""
    ts = _now() if timestamp is None else timestamp
    unsigned = Assertion(
        subject=subject,
        predicate=predicate,
        object=make_object(object),
        confidence=confidence,
        timestamp=ts,
        signatures=(),
        source_hash=source_hash,
        source_class=source_class,
        epoch=epoch,
        parent=parent,
        lifecycle=lifecycle,
        valid_from=valid_from,
        valid_to=valid_to,
    )
    return add_signature(unsigned, key, signed_at=ts if signed_at is None else signed_at)


_Multi = TypeVar("_Multi", Assertion, Epoch, Supersession, Source, Retraction)


def add_signature(record: _Multi, key: AgentKey, *, signed_at: int | None = None) -> _Multi:
    """A copy of ``record`` with one more signature by ``key`` over its content ID."""
    at = _now() if signed_at is None else signed_at
    sig = key.sign(record_id(record), at)
    return msgspec.structs.replace(record, signatures=(*record.signatures, sig))


def sign_vote(
    key: AgentKey,
    *,
    assertion_id: str,
    weight: float,
    timestamp: int | None = None,
    signed_at: int | None = None,
) -> Vote:
    """A vote by ``key`` (the vote's ID covers the voter, so it is signed in one go)."""
    ts = _now() if timestamp is None else timestamp
    at = ts if signed_at is None else signed_at
    placeholder = Signature(agent_id=key.agent_id, signature="", signed_at=at)
    unsigned = Vote(assertion_id=assertion_id, weight=weight, timestamp=ts, signature=placeholder)
    return msgspec.structs.replace(unsigned, signature=key.sign(record_id(unsigned), at))


def sign_epoch(
    key: AgentKey,
    *,
    name: str,
    description: str = "",
    supersedes: tuple[str, ...] = (),
    kind: EpochKind = "replace",
    timestamp: int | None = None,
    signed_at: int | None = None,
) -> Epoch:
    """A new epoch signed by ``key``."""
    ts = _now() if timestamp is None else timestamp
    unsigned = Epoch(
        name=name,
        description=description,
        supersedes=tuple(supersedes),
        kind=kind,
        timestamp=ts,
        signatures=(),
    )
    return add_signature(unsigned, key, signed_at=ts if signed_at is None else signed_at)


def sign_supersession(
    key: AgentKey,
    *,
    old: str,
    new: str,
    reason: str,
    timestamp: int | None = None,
    signed_at: int | None = None,
) -> Supersession:
    """A supersession (``new`` replaces ``old``) signed by ``key``."""
    ts = _now() if timestamp is None else timestamp
    unsigned = Supersession(old=old, new=new, reason=reason, timestamp=ts, signatures=())
    return add_signature(unsigned, key, signed_at=ts if signed_at is None else signed_at)


def sign_source(
    key: AgentKey,
    *,
    uri: str,
    content: str | None = None,
    source_hash: str | None = None,
    title: str = "",
    source_class: SourceClass | None = None,
    published_at: int | None = None,
    timestamp: int | None = None,
    signed_at: int | None = None,
) -> Source:
    """A source registration signed by ``key``; ``source_hash`` defaults to sha256(content)."""
    if source_hash is None:
        if content is None:
            raise ValidationError("source_hash", "required", "give source_hash or content")
        source_hash = hashlib.sha256(content.encode("utf-8")).hexdigest()
    ts = _now() if timestamp is None else timestamp
    unsigned = Source(
        source_hash=source_hash,
        uri=uri,
        title=title,
        source_class=source_class,
        published_at=published_at,
        content=content,
        timestamp=ts,
        signatures=(),
    )
    return add_signature(unsigned, key, signed_at=ts if signed_at is None else signed_at)


def sign_retraction(
    key: AgentKey,
    *,
    source_hash: str,
    reason: str,
    timestamp: int | None = None,
    signed_at: int | None = None,
) -> Retraction:
    """A retraction of source ``source_hash`` signed by ``key``."""
    ts = _now() if timestamp is None else timestamp
    unsigned = Retraction(source_hash=source_hash, reason=reason, timestamp=ts, signatures=())
    return add_signature(unsigned, key, signed_at=ts if signed_at is None else signed_at)


def cosign(key: AgentKey, assertion_id: str, *, signed_at: int | None = None) -> CoSignature:
    """A co-signature by ``key`` of an existing assertion (signs the assertion's ID)."""
    at = _now() if signed_at is None else signed_at
    return CoSignature(assertion_id=assertion_id, signature=key.sign(assertion_id, at))
