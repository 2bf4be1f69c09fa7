"""The registries: sources (evidence) and epochs (paradigms) as read.

The store keeps its own row structs (``store.rows``) with the same fields; the query
layer converts at its boundary, so a store change does not change the wire.
"""

from __future__ import annotations

import msgspec


class SourceRow(msgspec.Struct, frozen=True):
    source_hash: str
    id: str
    lsn: int
    uri: str
    title: str
    source_class: str | None
    published_at: int | None
    timestamp: int
    registered_by: tuple[str, ...]
    retracted: bool
    retracted_reason: str | None
    retraction_lsn: int | None
    content: str | None = None


class SourceList(msgspec.Struct, kw_only=True):
    sources: list[SourceRow]
    next_cursor: str | None


class EpochRow(msgspec.Struct, frozen=True):
    id: str
    lsn: int
    name: str
    description: str
    kind: str
    timestamp: int
    supersedes: tuple[str, ...]
    superseded_by: tuple[str, ...]
    signers: tuple[str, ...]


class EpochList(msgspec.Struct):
    epochs: list[EpochRow]


__all__ = ["EpochList", "EpochRow", "SourceList", "SourceRow"]
