"""Search and discovery (API.md ``GET /v1/search``, ``GET /v1/subjects``,
``GET /v1/subjects/{subject}/predicates``) and the "did you mean" suggestions of reads
that matched nothing."""

from __future__ import annotations

import msgspec


class Suggestion(msgspec.Struct, kw_only=True):
    """A stored (subject, predicate) close to what was asked (``predicate`` None: a
    subject), with its number of stored assertions."""

    subject: str
    predicate: str | None
    claims: int


class SearchHit(msgspec.Struct, kw_only=True):
    """One match: the (subject, predicate) to query, which text matched (``subject``,
    ``predicate``, ``object``, ``source_title`` or ``source_uri``), that text around the
    match with the matched words between ``**``, the key's stored assertions, and the
    relevance (BM25, higher is better)."""

    subject: str
    predicate: str
    matched_field: str
    snippet: str
    claims: int
    score: float


class SearchResponse(msgspec.Struct, kw_only=True):
    hits: list[SearchHit]
    next_cursor: str | None = None
    suggestions: list[Suggestion] | msgspec.UnsetType = msgspec.UNSET
    """Only when nothing matched: stored subjects and predicates close to the words."""


class SubjectSummary(msgspec.Struct, kw_only=True):
    subject: str
    predicates: int
    claims: int


class SubjectList(msgspec.Struct, kw_only=True):
    subjects: list[SubjectSummary]
    next_cursor: str | None = None


class PredicateSummary(msgspec.Struct, kw_only=True):
    predicate: str
    claims: int


class PredicateList(msgspec.Struct, kw_only=True):
    subject: str
    predicates: list[PredicateSummary]
    next_cursor: str | None = None


__all__ = [
    "PredicateList",
    "PredicateSummary",
    "SearchHit",
    "SearchResponse",
    "SubjectList",
    "SubjectSummary",
    "Suggestion",
]
