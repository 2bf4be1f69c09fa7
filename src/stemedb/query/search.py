"""Search and discovery (API.md ``GET /v1/search``, ``GET /v1/subjects``,
``GET /v1/subjects/{subject}/predicates``) and "did you mean" for reads that matched
nothing. Functions of a store's ``SearchReads``, used by the API routes and the MCP
server alike (``docs/design/search.md``)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Final, Literal, TypeVar

from stemedb.errors import ValidationError
from stemedb.query.cursor import CURSOR_VERSION, PageToken, decode_token, encode_token, query_digest
from stemedb.query.params import MAX_PREDICATE_BYTES, MAX_SUBJECT_BYTES, check_text
from stemedb.store.protocol import SearchReads
from stemedb.store.rows import PredicateRow
from stemedb.wire import (
    PredicateList,
    PredicateSummary,
    SearchHit,
    SearchResponse,
    SubjectList,
    SubjectSummary,
    Suggestion,
)

_Row = TypeVar("_Row")
SearchMode = Literal["words", "fts"]
SEARCH_MODES: Final = ("words", "fts")
SEARCH_DEFAULT_LIMIT: Final = 10
SEARCH_MAX_LIMIT: Final = 100
LISTING_DEFAULT_LIMIT: Final = 100
LISTING_MAX_LIMIT: Final = 1000
MAX_QUERY_BYTES: Final = 1024
MAX_SUGGESTIONS: Final = 5
SIMILAR_CANDIDATES: Final = 10  # names the store proposes, re-ranked here
PREDICATES_COMPARED: Final = 1000  # of one subject, for the closest predicate


def _check_limit(limit: int, maximum: int) -> None:
    if not 1 <= limit <= maximum:
        raise ValidationError(
            "limit", f"must be between 1 and {maximum}", code="limit_out_of_range"
        )


def search(
    store: SearchReads,
    q: str,
    mode: str = "words",
    limit: int = SEARCH_DEFAULT_LIMIT,
    cursor: str | None = None,
) -> SearchResponse:
    """Ranked matches of ``q`` (words, all required; ``mode="fts"``: the store's
    full-text query language), ``limit`` per page (1..100), paged by ``cursor``; when
    nothing matches, subjects close to ``q`` as ``suggestions``. Bad input, an FTS
    syntax error included, is a ``ValidationError``."""
    if not q.strip():
        raise ValidationError("q", "required", "q must have at least one word")
    check_text("q", q, MAX_QUERY_BYTES)
    if mode not in SEARCH_MODES:
        raise ValidationError("mode", "one_of", f"mode must be one of {', '.join(SEARCH_MODES)}")
    _check_limit(limit, SEARCH_MAX_LIMIT)
    digest = query_digest("search", q, mode)
    token = decode_token(cursor, digest) if cursor else None
    rows, bound = store.search(
        q,
        fts=mode == "fts",
        bound=token.bound if token else None,
        offset=token.offset if token else 0,
        limit=limit + 1,
    )
    offset = token.offset if token else 0
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_token(PageToken(CURSOR_VERSION, digest, bound, offset + limit))
    hits = [
        SearchHit(
            subject=r.subject,
            predicate=r.predicate,
            matched_field=r.matched_field,
            snippet=r.snippet,
            claims=r.claims,
            score=r.score,
        )
        for r in rows
    ]
    response = SearchResponse(hits=hits, next_cursor=next_cursor)
    if not hits and token is None:
        response.suggestions = similar_subjects(store, q)
    return response


def _after(cursor: str | None, digest: str) -> str | None:
    return decode_token(cursor, digest).after if cursor else None


def _keyset_page(
    rows: list[_Row], limit: int, digest: str, name: Callable[[_Row], str]
) -> tuple[list[_Row], str | None]:
    """At most ``limit`` of ``rows`` (``limit + 1`` read) and the cursor after the last."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_token(PageToken(CURSOR_VERSION, digest, after=name(rows[-1])))


def subjects(
    store: SearchReads,
    prefix: str = "",
    limit: int = LISTING_DEFAULT_LIMIT,
    cursor: str | None = None,
) -> SubjectList:
    """Subjects starting with ``prefix`` (bytes), in byte order, with their numbers of
    predicates and stored assertions, ``limit`` per page (1..1000)."""
    check_text("prefix", prefix, MAX_SUBJECT_BYTES, allow_empty=True)
    _check_limit(limit, LISTING_MAX_LIMIT)
    digest = query_digest("subjects", prefix)
    rows = store.list_subjects(prefix, after=_after(cursor, digest), limit=limit + 1)
    rows, next_cursor = _keyset_page(rows, limit, digest, lambda r: r.subject)
    return SubjectList(
        subjects=[
            SubjectSummary(subject=r.subject, predicates=r.predicates, claims=r.claims)
            for r in rows
        ],
        next_cursor=next_cursor,
    )


def predicates(
    store: SearchReads,
    subject: str,
    limit: int = LISTING_DEFAULT_LIMIT,
    cursor: str | None = None,
) -> PredicateList:
    """The subject's predicates in byte order with their stored assertions, ``limit``
    per page (1..1000); an unknown subject has none."""
    check_text("subject", subject, MAX_SUBJECT_BYTES)
    _check_limit(limit, LISTING_MAX_LIMIT)
    digest = query_digest("predicates", subject)
    rows = store.list_predicates(subject, after=_after(cursor, digest), limit=limit + 1)
    rows, next_cursor = _keyset_page(rows, limit, digest, lambda r: r.predicate)
    return PredicateList(
        subject=subject,
        predicates=[PredicateSummary(predicate=r.predicate, claims=r.claims) for r in rows],
        next_cursor=next_cursor,
    )


# -- did you mean ----------------------------------------------------------------------


def _distance(a: str, b: str) -> float:
    """0 for equal strings, up to 1 for nothing in common (case ignored)."""
    return 1.0 - difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio()


def _subject_claims(store: SearchReads, subject: str) -> int:
    rows = store.list_subjects(subject, after=None, limit=1)
    return rows[0].claims if rows and rows[0].subject == subject else 0


def similar_subjects(store: SearchReads, text: str) -> list[Suggestion]:
    """Stored subjects closest to ``text``, at most five."""
    names = store.similar_names("subject", text, SIMILAR_CANDIDATES)
    ranked = sorted(names, key=lambda name: (_distance(text, name), name))[:MAX_SUGGESTIONS]
    return [Suggestion(subject=s, predicate=None, claims=_subject_claims(store, s)) for s in ranked]


def _closest_predicate(rows: list[PredicateRow], predicate: str) -> tuple[float, PredicateRow]:
    return min(((_distance(predicate, r.predicate), r) for r in rows), key=lambda x: x[0])


def suggestions(
    store: SearchReads, subject: str | None, predicate: str | None, *, prefix: bool = False
) -> list[Suggestion]:
    """ "Did you mean": for a read of (``subject``, ``predicate``) — or of a subject
    ``prefix`` — that has no stored assertion, the closest stored keys, at most five;
    none when the subject and predicate are stored (the read's filters left nothing)."""
    if subject is None:
        return []
    if prefix:
        if store.list_subjects(subject, after=None, limit=1):
            return []
        return similar_subjects(store, subject) if subject else []
    known = store.list_predicates(subject, after=None, limit=PREDICATES_COMPARED)
    if known:
        if predicate is None or any(r.predicate == predicate for r in known):
            return []
        check_text("predicate", predicate, MAX_PREDICATE_BYTES)
        ranked = sorted(known, key=lambda r: (_distance(predicate, r.predicate), r.predicate))
        return [
            Suggestion(subject=subject, predicate=r.predicate, claims=r.claims)
            for r in ranked[:MAX_SUGGESTIONS]
        ]
    scored: list[tuple[float, str, Suggestion]] = []
    for name in store.similar_names("subject", subject, SIMILAR_CANDIDATES):
        rows = store.list_predicates(name, after=None, limit=PREDICATES_COMPARED)
        if not rows:
            continue
        distance = _distance(subject, name)
        if predicate is None:
            total = sum(r.claims for r in rows)
            scored.append((distance, name, Suggestion(subject=name, predicate=None, claims=total)))
            continue
        gap, best = _closest_predicate(rows, predicate)
        suggestion = Suggestion(subject=name, predicate=best.predicate, claims=best.claims)
        scored.append((distance + gap, name, suggestion))
    scored.sort(key=lambda x: (x[0], x[1]))
    return [s for _, _, s in scored[:MAX_SUGGESTIONS]]
