"""The reads of the embedded store's search index (ADR 0014, ``docs/design/search.md``);
its rows are written by ``search_rows``.

Tables (``schema.SEARCH_SCHEMA``): ``search_keys`` (one row per (subject, predicate),
with its claim count), ``search_docs`` behind the FTS5 table ``search_fts`` (a key's
subject and predicate, each distinct text value of a key, each registered source a key
cites), ``search_names`` behind the trigram table ``search_names_fts`` (distinct subjects
and predicates, for "did you mean").
"""

from __future__ import annotations

import re
from typing import Any, Final

import apsw

from stemedb.errors import ValidationError
from stemedb.store.claim_keys import prefix_upper_bound
from stemedb.store.rows import PredicateRow, SearchRow, SubjectRow
from stemedb.store.sqlite.database import Database, scalar

NAME_KINDS: Final = {"subject": 0, "predicate": 1}

FIELDS: Final = ("subject", "predicate", "object", "source_title", "source_uri")
"""The FTS columns, in the order of ``search_fts`` and of their weights."""
FIELD_WEIGHTS: Final = (10.0, 6.0, 3.0, 2.0, 1.0)
RANK: Final = f"bm25({', '.join(map(str, FIELD_WEIGHTS))})"
SNIPPET_TOKENS: Final = 12
MARK_OPEN: Final = "\x02"
MARK_CLOSE: Final = "\x03"
HIGHLIGHT: Final = "**"
SUGGEST_TEXT_MAX_CHARS: Final = 128
RARE_TRIGRAMS: Final = 8  # of a misspelt name, the ones its candidates are found by
_WORD: Final = re.compile(r"\w")


def words_query(text: str) -> str | None:
    """The FTS5 expression of ``text`` read as words: each whitespace-separated part a
    quoted phrase (so no character is FTS syntax), all of them required; None when
    no part has a word character (nothing can match)."""
    parts = [p for p in text.split() if _WORD.search(p)]
    if not parts:
        return None
    return " ".join('"' + part.replace('"', '""') + '"' for part in parts)


def trigrams(text: str) -> list[str]:
    """The distinct trigrams of ``text``, case folded as the trigram tokenizer does."""
    text = text[:SUGGEST_TEXT_MAX_CHARS].lower()
    return list(dict.fromkeys(text[i : i + 3] for i in range(len(text) - 2)))


def _any_of(terms: list[str]) -> str:
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


def _snippet(raw: str) -> str:
    return raw.replace(MARK_OPEN, HIGHLIGHT).replace(MARK_CLOSE, HIGHLIGHT)


def _hit(row: Any) -> SearchRow:
    doc_id, score, subject, predicate, claims, *snippets = row
    field = next((i for i, s in enumerate(snippets) if s and MARK_OPEN in s), None)
    if field is None:  # an FTS query that matched without a phrase (e.g. only NOT)
        field = next((i for i, s in enumerate(snippets) if s), 0)
    return SearchRow(
        doc_id=doc_id,
        subject=subject,
        predicate=predicate,
        matched_field=FIELDS[field],
        snippet=_snippet(snippets[field] or ""),
        claims=claims,
        score=score,
    )


_SNIPPETS: Final = ", ".join(
    f"snippet(search_fts, {i}, :open, :close, '…', {SNIPPET_TOKENS})" for i in range(len(FIELDS))
)
RANKED_SQL: Final = (
    "SELECT rowid, -rank FROM search_fts"
    f" WHERE search_fts MATCH :match AND rank MATCH '{RANK}' AND rowid <= :bound"
    " ORDER BY rank LIMIT :limit OFFSET :offset"
)
"""Phase 1: the page's documents and scores, ranked inside FTS5 (no join, no snippet
for the matches that do not make the page)."""
HIT_SQL: Final = (
    f"SELECT f.rowid, :score, k.subject, k.predicate, k.claims, {_SNIPPETS}"
    " FROM search_fts f CROSS JOIN search_docs d ON d.id = f.rowid"
    " CROSS JOIN search_keys k ON k.id = d.key_id"
    " WHERE search_fts MATCH :match AND f.rowid = :rowid"
)
"""Phase 2, per document of the page: its key, claims and snippets."""
CHECK_SQL: Final = "SELECT 1 FROM search_fts WHERE search_fts MATCH ? LIMIT 1"


class SearchReads:
    """The index's reads, on this thread's read connection."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def search(
        self, text: str, *, fts: bool, bound: int | None, offset: int, limit: int
    ) -> tuple[list[SearchRow], int]:
        match = text if fts else words_query(text)
        with self._db.reading("search") as conn:
            if bound is None:
                bound = int(scalar(conn, "SELECT max(id) FROM search_docs") or 0)
            if match is None:
                return [], bound
            args = {
                "match": match,
                "bound": bound,
                "limit": limit,
                "offset": offset,
                "open": MARK_OPEN,
                "close": MARK_CLOSE,
            }
            try:
                ranked: list[Any] = conn.execute(RANKED_SQL, args).fetchall()
                if fts and not ranked:  # FTS5 may skip parsing when nothing can match
                    conn.execute(CHECK_SQL, (match,)).fetchall()
                rows: list[Any] = []
                for rowid, score in ranked:
                    hit = {"match": match, "rowid": rowid, "score": score}
                    rows.extend(conn.execute(HIT_SQL, {**args, **hit}).fetchall())
            except apsw.SQLError as exc:
                if not fts:
                    raise
                raise ValidationError(
                    "q",
                    "fts_syntax",
                    f"q is not a valid full-text query: {exc}",
                    code="bad_fts_query",
                ) from None
        return [_hit(row) for row in rows], bound

    def list_subjects(self, prefix: str, *, after: str | None, limit: int) -> list[SubjectRow]:
        where = ["subject >= ?"]
        args: list[Any] = [prefix]
        upper = prefix_upper_bound(prefix) if prefix else None
        if upper is not None:
            where.append("subject < ?")
            args.append(upper)
        if after is not None:
            where.append("subject > ?")
            args.append(after)
        sql = (
            "SELECT subject, count(*), sum(claims) FROM search_keys"
            f" WHERE {' AND '.join(where)} GROUP BY subject ORDER BY subject LIMIT ?"
        )
        with self._db.reading("list_subjects") as conn:
            rows: list[Any] = conn.execute(sql, (*args, limit)).fetchall()
        return [SubjectRow(subject=s, predicates=n, claims=c) for s, n, c in rows]

    def list_predicates(self, subject: str, *, after: str | None, limit: int) -> list[PredicateRow]:
        with self._db.reading("list_predicates") as conn:
            rows: list[Any] = conn.execute(
                "SELECT predicate, claims FROM search_keys WHERE subject = ?"
                " AND (?2 IS NULL OR predicate > ?2) ORDER BY predicate LIMIT ?3",
                (subject, after, limit),
            ).fetchall()
        return [PredicateRow(predicate=p, claims=c) for p, c in rows]

    def similar_names(self, field: str, text: str, limit: int) -> list[str]:
        kind = NAME_KINDS[field]
        grams = trigrams(text)
        rows: list[Any]
        with self._db.reading("similar_names") as conn:
            if not grams:  # under three characters: names starting with it
                upper = prefix_upper_bound(text)
                rows = conn.execute(
                    "SELECT name FROM search_names WHERE kind = ? AND name >= ?"
                    " AND (? IS NULL OR name < ?) ORDER BY name LIMIT ?",
                    (kind, text, upper, upper, limit),
                ).fetchall()
                return [str(name) for (name,) in rows]
            # The rarest of its trigrams that some name has: common ones ("s/d", "ug")
            # would make every name a candidate.
            marks = ", ".join("?" * len(grams))
            found: list[Any] = conn.execute(
                f"SELECT term, doc FROM search_names_vocab WHERE term IN ({marks})", grams
            ).fetchall()
            counts: dict[str, int] = dict(found)
            rare = sorted((g for g in grams if g in counts), key=lambda g: (counts[g], g))
            if not rare:
                return []
            rows = conn.execute(
                "SELECT n.name FROM search_names_fts f"
                " CROSS JOIN search_names n ON n.id = f.rowid"
                " WHERE search_names_fts MATCH ? AND n.kind = ? ORDER BY f.rank LIMIT ?",
                (_any_of(rare[:RARE_TRIGRAMS]), kind, limit),
            ).fetchall()
        return [str(name) for (name,) in rows]
