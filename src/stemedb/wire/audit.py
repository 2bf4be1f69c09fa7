"""The query audit log as read: who asked what, which claims contributed how much.

``AuditRecord`` is also the msgpack row of ``audit.sqlite`` (``query.audit``): its
fields are part of that file's format.
"""

from __future__ import annotations

import msgspec


class Contribution(msgspec.Struct, array_like=True):
    assertion_id: str
    weight: float


class AuditRecord(msgspec.Struct, kw_only=True):
    query_id: str
    at: float
    agent_id: str | None
    endpoint: str
    lens: str
    subject: str | None
    predicate: str | None
    parameters: dict[str, object]
    winner: str | None
    contributions: list[Contribution]
    duration_ms: float


class AuditList(msgspec.Struct):
    queries: list[AuditRecord]


__all__ = ["AuditList", "AuditRecord", "Contribution"]
