"""Opaque pagination cursors.

A cursor pins the snapshot (the LSN bound and the ``now`` the lens used) and the
position, and carries a digest of the query so it cannot be replayed against another
one. Encoding: base64url(msgpack). Anything that does not decode is a ValidationError.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import msgspec

from stemedb.errors import ValidationError

CURSOR_VERSION = 1


class Cursor(msgspec.Struct, frozen=True, array_like=True):
    version: int
    digest: str
    lsn_bound: int
    now: float
    offset: int = 0
    after_subject: str | None = None
    after_predicate: str | None = None


_DECODER = msgspec.msgpack.Decoder(Cursor)


def query_digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def encode_cursor(cursor: Cursor) -> str:
    return base64.urlsafe_b64encode(msgspec.msgpack.encode(cursor)).decode().rstrip("=")


def decode_cursor(text: str, digest: str) -> Cursor:
    bad = ValidationError("cursor", "is not a cursor returned by this query", code="bad_cursor")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        cursor = _DECODER.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise bad from None
    if cursor.version != CURSOR_VERSION or cursor.digest != digest:
        raise bad
    if cursor.offset < 0 or cursor.lsn_bound < 0:
        raise bad
    return cursor
