"""Writes: the answer to a stored record, the batch envelope and its per-item outcomes,
and the body of a source retraction."""

from __future__ import annotations

from typing import Literal

import msgspec

from stemedb.model.records import Assertion, Signature
from stemedb.wire.errors import ErrorBody


class WriteResult(msgspec.Struct, frozen=True):
    # A stored record: ``created`` (201) or ``exists`` (200, the same content ID).
    id: str
    lsn: int
    status: Literal["created", "exists"]


class BatchBody(msgspec.Struct, forbid_unknown_fields=True):
    """What ``POST /v1/assert/batch`` decodes first: items are decoded one by one so a
    malformed item fails alone."""

    assertions: list[msgspec.Raw]


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /v1/assert/batch`` (documentation shape of ``BatchBody``)."""

    assertions: list[Assertion]


class BatchItem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One item's outcome: ``created``/``exists`` with id and lsn, or ``error``."""

    index: int
    status: Literal["created", "exists", "error"]
    id: str | None = None
    lsn: int | None = None
    error: ErrorBody | None = None


class BatchResponse(msgspec.Struct, kw_only=True):
    results: list[BatchItem]
    created: int
    exists: int
    failed: int


class RetractBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/sources/{hash}/retract``: a Retraction without its source hash."""

    reason: str
    timestamp: int
    signatures: tuple[Signature, ...]


__all__ = ["BatchBody", "BatchItem", "BatchRequest", "BatchResponse", "RetractBody", "WriteResult"]
