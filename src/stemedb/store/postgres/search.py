"""The search index of the PostgreSQL store (``SearchReads``; ADR 0020,
``docs/design/search.md``): the embedded store's tables with a ``tsvector`` per
document (GIN) for FTS5 and ``pg_trgm`` (GiST) for the trigram table
(``migrations/0005_search.sql``).

``index_batch`` writes a batch's rows, set-based from the rows the batch has just
stored, in its transaction. The reads parse the query in Python (``query_text``: the
words of ``mode=words``, or the small query language of ``mode=fts``, the same on both
stores: words, ``"phrases"``, ``prefix*``, ``AND``, ``OR``, ``NOT``, parentheses),
fold the words with the index's own SQL function, rank with ``ts_rank`` (subject >
predicate > text value > source title and URI) and mark the snippet here.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Final

from stemedb.errors import ValidationError
from stemedb.store.claim_keys import prefix_upper_bound
from stemedb.store.postgres.connection import Conn
from stemedb.store.rows import PredicateRow, SearchRow, SubjectRow

SEARCH_TABLES: Final = ("search_keys", "search_docs", "search_names")
FIELDS: Final = ("subject", "predicate", "object", "source_title", "source_uri")
RANK_WEIGHTS: Final = "{0.1, 0.3, 0.6, 1.0}"  # D (sources), C (values), B (predicate), A
SNIPPET_TOKENS: Final = 12
HIGHLIGHT: Final = "**"
SUGGEST_TEXT_MAX_CHARS: Final = 128
NAME_KINDS: Final = {"subject": 0, "predicate": 1}
_WORD: Final = re.compile(r"\w")
_TOKEN: Final = re.compile(r"[^\W_]+")
_FTS_TOKEN: Final = re.compile(r'\s*(?:(")|(\()|(\))|([^\s"()]+))')

# -- writing: a batch's rows, from the rows it stored ------------------------------------

_IN_BATCH: Final = "lsn BETWEEN %(first)s AND %(last)s"
INDEX_BATCH: Final = (
    # new keys: their key document and their names
    "WITH new AS (INSERT INTO search_keys (subject, predicate, claims)"
    f" SELECT subject, predicate, 0 FROM assertions WHERE {_IN_BATCH}"
    " GROUP BY subject, predicate ORDER BY min(lsn)"
    " ON CONFLICT (subject, predicate) DO NOTHING RETURNING id, subject, predicate),"
    " names AS (INSERT INTO search_names (kind, name)"
    " SELECT 0, subject FROM new UNION SELECT 1, predicate FROM new ON CONFLICT DO NOTHING)"
    " INSERT INTO search_docs (key_id, kind, ref, subject, predicate, words)"
    " SELECT id, 0, '\\x'::bytea, subject, predicate,"
    " stemedb_words(subject, 'A') || stemedb_words(predicate, 'B') FROM new ORDER BY id",
    # every key's claim count
    "UPDATE search_keys k SET claims = k.claims + b.n FROM"
    f" (SELECT subject, predicate, count(*) AS n FROM assertions WHERE {_IN_BATCH}"
    " GROUP BY subject, predicate) b WHERE k.subject = b.subject AND k.predicate = b.predicate",
    # each distinct text value of a key, once
    "INSERT INTO search_docs (key_id, kind, ref, object, words)"
    " SELECT k.id, 1, decode(md5(t.body), 'hex'), t.body, stemedb_words(t.body, 'C') FROM"
    " (SELECT subject, predicate, substr(value_key, 6) AS body, min(lsn) AS first"
    f" FROM assertions WHERE {_IN_BATCH} AND value_key >= 'text:' AND value_key < 'text;'"
    " GROUP BY subject, predicate, substr(value_key, 6)) t"
    " JOIN search_keys k ON k.subject = t.subject AND k.predicate = t.predicate"
    " ORDER BY t.first ON CONFLICT DO NOTHING",
    # registered sources the batch's claims cite, and sources it registers that stored
    # claims cite
    "INSERT INTO search_docs (key_id, kind, ref, source_title, source_uri, words)"
    " SELECT k.id, 2, s.source_hash, s.title, s.uri,"
    " stemedb_words(s.title, 'D') || stemedb_words(s.uri, 'D') FROM"
    " (SELECT subject, predicate, source_hash, min(lsn) AS first FROM assertions"
    f" WHERE {_IN_BATCH} AND source_hash IS NOT NULL GROUP BY subject, predicate, source_hash"
    " UNION ALL SELECT a.subject, a.predicate, a.source_hash, max(s.lsn) FROM sources s"
    " JOIN assertions a ON a.source_hash = s.source_hash"
    f" WHERE s.{_IN_BATCH} GROUP BY a.subject, a.predicate, a.source_hash) a"
    " JOIN search_keys k ON k.subject = a.subject AND k.predicate = a.predicate"
    " JOIN sources s ON s.source_hash = a.source_hash"
    " ORDER BY a.first ON CONFLICT DO NOTHING",
)


def index_batch(conn: Conn, first_lsn: int, last_lsn: int) -> None:
    """Index the assertions and sources stored at LSNs ``first_lsn``..``last_lsn`` (in
    the batch's transaction, after its rows)."""
    args = {"first": first_lsn, "last": last_lsn}
    for statement in INDEX_BATCH:
        conn.execute(statement, args)


def reset_index(conn: Conn) -> None:
    """Empty the index, its document ids starting again at 1 (in the caller's transaction)."""
    conn.execute(f"TRUNCATE {', '.join(SEARCH_TABLES)} RESTART IDENTITY")


# -- the query ---------------------------------------------------------------------------


def _bad_query(why: str) -> ValidationError:
    return ValidationError(
        "q", "fts_syntax", f"q is not a valid full-text query: {why}", code="bad_fts_query"
    )


class _Words:
    """The raw words of a query, folded in one round trip by the index's function."""

    def __init__(self) -> None:
        self.raw: list[str] = []

    def add(self, text: str) -> int:
        self.raw.append(text)
        return len(self.raw) - 1

    def fold(self, conn: Conn) -> list[list[str]]:
        if not self.raw:
            return []
        rows = conn.execute(
            "SELECT coalesce(array_agg(word ORDER BY at) FILTER (WHERE word IS NOT NULL), '{}')"
            " FROM unnest(%s::text[])"
            " WITH ORDINALITY AS w(body, n) LEFT JOIN LATERAL unnest(string_to_array(trim("
            " regexp_replace(lower(unaccent(body)), '[^[:alnum:]]+', ' ', 'g')), ' '))"
            " WITH ORDINALITY AS t(word, at) ON word <> '' GROUP BY n ORDER BY n",
            (self.raw,),
        ).fetchall()
        return [[str(word) for word in words] for (words,) in rows]


def _phrase(words: list[str], prefix: bool) -> str:
    quoted = [f"'{w}'" for w in words]
    if prefix:
        quoted[-1] += ":*"
    return quoted[0] if len(quoted) == 1 else "(" + " <-> ".join(quoted) + ")"


class _FtsParser:
    """``expr := and (OR and)*``; ``and := unary ((AND | NOT)? unary)*``; ``unary :=
    "phrase" | word[*] | ( expr )``; a word that folds to nothing matches nothing."""

    def __init__(self, text: str, words: _Words) -> None:
        self._tokens: list[tuple[str, str]] = []
        self._words = words
        position = 0
        while position < len(text):
            match = _FTS_TOKEN.match(text, position)
            if match is None or not match.group(0).strip():
                break
            position = match.end()
            if match.group(1):
                end = text.find('"', position)
                if end < 0:
                    raise _bad_query("unterminated string")
                self._tokens.append(("phrase", text[position:end]))
                position = end + 1
            elif match.group(2) or match.group(3):
                self._tokens.append(("paren", match.group(0).strip()))
            else:
                self._tokens.append(("word", match.group(4)))
        self._at = 0

    def parse(self) -> list[Any]:
        if not self._tokens:
            return []
        tree = self._or()
        if self._at < len(self._tokens):
            raise _bad_query(f"unexpected {self._tokens[self._at][1]!r}")
        return tree

    def _peek(self) -> tuple[str, str] | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _or(self) -> list[Any]:
        parts = [self._and()]
        while self._peek() == ("word", "OR"):
            self._at += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else ["|", *parts]

    def _and(self) -> list[Any]:
        tree = self._unary()
        while (token := self._peek()) is not None and token != ("paren", ")"):
            if token == ("word", "OR"):
                break
            operator = "&"
            if token in (("word", "AND"), ("word", "NOT")):
                operator = "&!" if token[1] == "NOT" else "&"
                self._at += 1
            tree = [operator, tree, self._unary()]
        return tree

    def _unary(self) -> list[Any]:
        token = self._peek()
        if token is None:
            raise _bad_query("the query ends after an operator")
        self._at += 1
        kind, value = token
        if kind == "paren":
            if value == ")":
                raise _bad_query("unexpected ')'")
            tree = self._or()
            if self._peek() != ("paren", ")"):
                raise _bad_query("unbalanced '('")
            self._at += 1
            return tree
        if kind == "word" and value in ("AND", "OR", "NOT"):
            raise _bad_query(f"{value} needs a term on each side")
        prefix = kind == "word" and value.endswith("*")
        return ["term", self._words.add(value.rstrip("*") if prefix else value), prefix]


def _render(tree: list[Any], folded: list[list[str]]) -> str:
    """The ``to_tsquery`` text of a parsed tree ("" for a term that folds to nothing)."""
    if tree[0] == "term":
        words = folded[tree[1]]
        return _phrase(words, tree[2]) if words else ""
    parts = [_render(part, folded) for part in tree[1:]]
    if tree[0] == "|":
        kept = [p for p in parts if p]
        return "(" + " | ".join(kept) + ")" if kept else ""
    left, right = parts
    if not left or not right:
        return "" if tree[0] == "&" or not left else left
    return f"({left} & !{right})" if tree[0] == "&!" else f"({left} & {right})"


def query_text(conn: Conn, text: str, *, fts: bool) -> tuple[str, list[tuple[str, bool]]]:
    """(the ``to_tsquery`` text, its words with their prefix flags) of ``text``; "" when
    nothing can match. ``fts`` False: the whitespace-separated parts with a word
    character, each a phrase, all required."""
    words = _Words()
    if fts:
        tree = _FtsParser(text, words).parse()
    else:
        terms: list[Any] = [
            ["term", words.add(part), False] for part in text.split() if _WORD.search(part)
        ]
        tree = terms[0] if len(terms) == 1 else ["&all", *terms] if terms else []
    if not tree:
        return "", []
    folded = words.fold(conn)
    if tree[0] == "&all":
        rendered = [_render(term, folded) for term in tree[1:]]
        query = "" if not all(rendered) else " & ".join(rendered)
    else:
        query = _render(tree, folded)
    return query, _terms(tree, folded)


def _terms(tree: list[Any], folded: list[list[str]]) -> list[tuple[str, bool]]:
    if tree[0] == "term":
        words = folded[tree[1]]
        return [(w, tree[2] and i == len(words) - 1) for i, w in enumerate(words)]
    return [t for part in tree[1:] for t in _terms(part, folded)]


# -- snippets ----------------------------------------------------------------------------


def _fold(token: str) -> str:
    decomposed = unicodedata.normalize("NFKD", token)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _matches(token: str, marks: list[tuple[str, bool]]) -> bool:
    folded = _fold(token)
    return any(folded.startswith(w) if prefix else folded == w for w, prefix in marks)


def snippet(text: str, marks: list[tuple[str, bool]]) -> str | None:
    """``text`` around its first matched word (at most ``SNIPPET_TOKENS`` words, ``…``
    where cut), matched words between ``**``; None when no word of it matches."""
    spans = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
    hits = [i for i, (a, b) in enumerate(spans) if _matches(text[a:b], marks)]
    if not hits:
        return None
    start = max(0, min(hits[0] - 3, len(spans) - SNIPPET_TOKENS))
    end = min(len(spans), start + SNIPPET_TOKENS)
    out = ["…" if start > 0 else text[: spans[start][0]]]
    at = spans[start][0]
    for i in range(start, end):
        a, b = spans[i]
        out.append(text[at:a])
        out.append(HIGHLIGHT + text[a:b] + HIGHLIGHT if i in hits else text[a:b])
        at = b
    out.append(text[at:] if end == len(spans) else text[at : spans[end][0]].rstrip() + "…")
    return "".join(out)


# -- reads -------------------------------------------------------------------------------

SEARCH_SQL: Final = (
    f"SELECT d.id, ts_rank('{RANK_WEIGHTS}', d.words, q.query), k.subject, k.predicate,"
    " k.claims, d.subject, d.predicate, d.object, d.source_title, d.source_uri"
    " FROM (SELECT to_tsquery('simple', %(query)s) AS query) q"
    " CROSS JOIN search_docs d JOIN search_keys k ON k.id = d.key_id"
    " WHERE d.words @@ q.query AND d.id <= %(bound)s"
    " ORDER BY 2 DESC, d.id LIMIT %(limit)s OFFSET %(offset)s"
)


def _hit(row: Any, marks: list[tuple[str, bool]]) -> SearchRow:
    doc_id, score, subject, predicate, claims, *texts = row
    found = [(i, snippet(t, marks)) for i, t in enumerate(texts) if t]
    field, marked = next(((i, s) for i, s in found if s is not None), (found[0][0], None))
    return SearchRow(
        doc_id=int(doc_id),
        subject=subject,
        predicate=predicate,
        matched_field=FIELDS[field],
        snippet=marked if marked is not None else texts[field],
        claims=int(claims),
        score=float(score),
    )


def search(
    conn: Conn, text: str, fts: bool, bound: int | None, offset: int, limit: int
) -> tuple[list[SearchRow], int]:
    if bound is None:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM search_docs").fetchone()
        bound = int(row[0]) if row else 0
    query, marks = query_text(conn, text, fts=fts)
    if not query:
        return [], bound
    args = {"query": query, "bound": bound, "limit": limit, "offset": offset}
    return [_hit(row, marks) for row in conn.execute(SEARCH_SQL, args)], bound


def list_subjects(conn: Conn, prefix: str, after: str | None, limit: int) -> list[SubjectRow]:
    upper = prefix_upper_bound(prefix) if prefix else None
    rows = conn.execute(
        "SELECT subject, count(*), sum(claims) FROM search_keys"
        " WHERE subject >= %s AND (%s::text IS NULL OR subject < %s)"
        " AND (%s::text IS NULL OR subject > %s)"
        " GROUP BY subject ORDER BY subject LIMIT %s",
        (prefix, upper, upper, after, after, limit),
    )
    return [SubjectRow(subject=s, predicates=int(n), claims=int(c)) for s, n, c in rows]


def list_predicates(conn: Conn, subject: str, after: str | None, limit: int) -> list[PredicateRow]:
    rows = conn.execute(
        "SELECT predicate, claims FROM search_keys WHERE subject = %s"
        " AND (%s::text IS NULL OR predicate > %s) ORDER BY predicate LIMIT %s",
        (subject, after, after, limit),
    )
    return [PredicateRow(predicate=p, claims=int(c)) for p, c in rows]


def similar_names(conn: Conn, field: str, text: str, limit: int) -> list[str]:
    """Names sharing the most trigrams with ``text`` (``pg_trgm``'s word similarity, at
    least its threshold, 0.6 by default); under three characters: names starting with it."""
    kind = NAME_KINDS[field]
    text = text[:SUGGEST_TEXT_MAX_CHARS]
    if len(text) < 3:
        upper = prefix_upper_bound(text)
        rows = conn.execute(
            "SELECT name FROM search_names WHERE kind = %s AND name >= %s"
            " AND (%s::text IS NULL OR name < %s) ORDER BY name LIMIT %s",
            (kind, text, upper, upper, limit),
        )
    else:
        rows = conn.execute(
            "SELECT name FROM search_names WHERE kind = %s AND %s <%% name"
            " ORDER BY %s <<-> name, name LIMIT %s",
            (kind, text, text, limit),
        )
    return [str(name) for (name,) in rows]
