"""Opaque pagination cursors.

A cursor pins the snapshot (the LSN bound and the ``now`` the lens used) and the
position, and carries a digest of the query so it cannot be replayed against another
one. Encoding: base64url(msgpack). Anything that does not decode is a ValidationError.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import TypeVar

import msgspec

from stemedb.errors import ValidationError

CURSOR_VERSION = 1
_T = TypeVar("_T")


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


def _encode(value: msgspec.Struct) -> str:
    return base64.urlsafe_b64encode(msgspec.msgpack.encode(value)).decode().rstrip("=")


def _decode(text: str, decoder: msgspec.msgpack.Decoder[_T], what: str) -> _T:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return decoder.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise _bad(what) from None


def _bad(what: str) -> ValidationError:
    return ValidationError("cursor", f"is not a cursor returned by this {what}", code="bad_cursor")


def encode_cursor(cursor: Cursor) -> str:
    return _encode(cursor)


def decode_cursor(text: str, digest: str) -> Cursor:
    cursor = _decode(text, _DECODER, "query")
    if cursor.version != CURSOR_VERSION or cursor.digest != digest:
        raise _bad("query")
    if cursor.offset < 0 or cursor.lsn_bound < 0:
        raise _bad("query")
    return cursor


class PageToken(msgspec.Struct, frozen=True, array_like=True):
    """The cursor of a listing or a search: what it pages (``digest``), the snapshot it
    is bound to (``bound``: a search's last indexed document; 0 for listings) and the
    position (an ``offset`` into ranked hits, or the last name listed)."""

    version: int
    digest: str
    bound: int = 0
    offset: int = 0
    after: str | None = None


_TOKEN_DECODER = msgspec.msgpack.Decoder(PageToken)


def encode_token(token: PageToken) -> str:
    return _encode(token)


def decode_token(text: str, digest: str) -> PageToken:
    """The token of ``text``, which must come from the listing ``digest`` names."""
    token = _decode(text, _TOKEN_DECODER, "listing")
    if (
        token.version != CURSOR_VERSION
        or token.digest != digest
        or min(token.offset, token.bound) < 0
    ):
        raise _bad("listing")
    return token
