"""The search index's rows, written in the transaction of the batch they index, and
its reset and its build from existing rows (the version-1 upgrade; ADR 0014).

``SearchRows`` collects a batch's rows and inserts them, and their FTS5 rows, with
``executemany``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from typing import Any, Final

import apsw

from stemedb.model.records import Assertion

KIND_KEY: Final = 0
KIND_OBJECT: Final = 1
KIND_SOURCE: Final = 2
BUILD_CHUNK_ROWS: Final = 10_000

UPSERT_KEY: Final = (
    "INSERT INTO search_keys (subject, predicate, claims) VALUES (?, ?, ?)"
    " ON CONFLICT (subject, predicate) DO UPDATE SET claims = claims + excluded.claims"
    " RETURNING id, claims"
)
INSERT_KEY_DOC: Final = (
    "INSERT INTO search_docs (key_id, kind, ref, subject, predicate)"
    f" VALUES (?, {KIND_KEY}, x'', ?, ?) RETURNING id, subject, predicate"
)
INSERT_OBJECT_DOC: Final = (
    "INSERT OR IGNORE INTO search_docs (key_id, kind, ref, object)"
    f" VALUES (?, {KIND_OBJECT}, ?, ?) RETURNING id, object"
)
_SOURCE_DOC: Final = (
    "INSERT OR IGNORE INTO search_docs (key_id, kind, ref, source_title, source_uri)"
    f" SELECT DISTINCT k.id, {KIND_SOURCE}, s.source_hash, s.title, s.uri"
)
INSERT_SOURCE_DOC: Final = (
    f"{_SOURCE_DOC} FROM search_keys k, sources s"
    " WHERE k.subject = ? AND k.predicate = ? AND s.source_hash = ?"
    " RETURNING id, source_title, source_uri"
)
INDEX_SOURCE_CITERS: Final = (
    f"{_SOURCE_DOC} FROM assertions a"
    " JOIN search_keys k ON k.subject = a.subject AND k.predicate = a.predicate"
    " JOIN sources s ON s.source_hash = a.source_hash WHERE a.source_hash = ?"
    " RETURNING id, source_title, source_uri"
)
INSERT_NAME: Final = (
    "INSERT OR IGNORE INTO search_names (kind, name) VALUES (?, ?) RETURNING id, name"
)
FTS_KEY: Final = "INSERT INTO search_fts (rowid, subject, predicate) VALUES (?, ?, ?)"
FTS_OBJECT: Final = "INSERT INTO search_fts (rowid, object) VALUES (?, ?)"
FTS_SOURCE: Final = "INSERT INTO search_fts (rowid, source_title, source_uri) VALUES (?, ?, ?)"
FTS_NAME: Final = "INSERT INTO search_names_fts (rowid, name) VALUES (?, ?)"
SEARCH_TABLES: Final = ("search_keys", "search_docs", "search_names")
FTS_TABLES: Final = ("search_fts", "search_names_fts")


def indexed_text(a: Assertion) -> str | None:
    """The assertion's value when the index holds it (a text), else None."""
    value = a.object.value
    return value if a.object.type == "text" and type(value) is str else None


def text_ref(text: str) -> bytes:
    """What tells two text values of one key apart in ``search_docs`` (8 bytes)."""
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


class SearchRows:
    """The search rows of one batch, collected until ``flush`` (flush before anything
    reads ``search_keys``: a source registered later in the batch looks its citers up).

    Each row and its full-text row are inserted by prepared statements, not triggers
    (an FTS5 insert from a trigger costs about five times more); ``RETURNING`` tells
    which rows are new."""

    __slots__ = ("cited", "keys", "objects")

    def __init__(self) -> None:
        self.keys: Counter[tuple[str, str]] = Counter()
        self.objects: dict[tuple[str, str, bytes], str] = {}
        self.cited: set[tuple[str, str, bytes]] = set()

    def add(self, subject: str, predicate: str, text: str | None) -> None:
        """One assertion on (subject, predicate); ``text``: its value, if a text."""
        self.keys[subject, predicate] += 1
        if text is not None:
            self.objects.setdefault((subject, predicate, text_ref(text)), text)

    def cite(self, subject: str, predicate: str, source: bytes) -> None:
        """An assertion of the key cites ``source``, a registered source."""
        self.cited.add((subject, predicate, source))

    def flush(self, conn: apsw.Connection) -> None:
        if self.keys:
            counts = list(self.keys.items())
            ids: dict[tuple[str, str], int] = {}
            new: list[tuple[int, str, str]] = []
            returned = conn.executemany(UPSERT_KEY, [(s, p, n) for (s, p), n in counts])
            for ((subject, predicate), n), (key_id, claims) in zip(counts, returned, strict=True):
                ids[subject, predicate] = key_id
                if claims == n:
                    new.append((key_id, subject, predicate))
            if new:
                _index(conn, FTS_KEY, conn.executemany(INSERT_KEY_DOC, new))
                names = {(0, s) for _, s, _ in new} | {(1, p) for _, _, p in new}
                _index(conn, FTS_NAME, conn.executemany(INSERT_NAME, sorted(names)))
            if self.objects:
                docs = [(ids[s, p], ref, text) for (s, p, ref), text in self.objects.items()]
                _index(conn, FTS_OBJECT, conn.executemany(INSERT_OBJECT_DOC, docs))
            self.keys = Counter()
            self.objects = {}
        if self.cited:
            _index(conn, FTS_SOURCE, conn.executemany(INSERT_SOURCE_DOC, self.cited))
            self.cited = set()


def _index(conn: apsw.Connection, fts_insert: str, rows: Iterable[Any]) -> None:
    """Insert the full-text rows of the rows an ``INSERT … RETURNING`` inserted."""
    conn.executemany(fts_insert, list(rows))


def index_source(conn: apsw.Connection, source: bytes) -> None:
    """A source was registered: index it for every key whose assertions cite it."""
    _index(conn, FTS_SOURCE, conn.execute(INDEX_SOURCE_CITERS, (source,)))


def reset_index(conn: apsw.Connection) -> None:
    """Empty the index (inside the caller's transaction)."""
    for table in SEARCH_TABLES:
        conn.execute(f"DELETE FROM {table}")
    for table in FTS_TABLES:
        conn.execute(f"INSERT INTO {table} ({table}) VALUES ('delete-all')")


def build_index(conn: apsw.Connection) -> None:
    """Index every stored assertion and cited source (the version-1 upgrade; inside the
    caller's transaction, on an empty index): the rows by set operations, then each
    full-text table in one pass (FTS5 ``rebuild``)."""
    conn.execute(
        "INSERT INTO search_keys (subject, predicate, claims)"
        " SELECT subject, predicate, count(*) FROM assertions GROUP BY subject, predicate"
    )
    conn.execute(
        "INSERT INTO search_docs (key_id, kind, ref, subject, predicate)"
        f" SELECT id, {KIND_KEY}, x'', subject, predicate FROM search_keys ORDER BY id"
    )
    conn.execute(
        "INSERT INTO search_names (kind, name)"
        " SELECT DISTINCT 0, subject FROM search_keys UNION SELECT DISTINCT 1, predicate"
        " FROM search_keys"
    )
    cursor = conn.cursor()
    values: Iterable[Any] = cursor.execute(
        "SELECT k.id, substr(a.value_key, 6) FROM assertions a"
        " JOIN search_keys k ON k.subject = a.subject AND k.predicate = a.predicate"
        " WHERE a.value_key >= 'text:' AND a.value_key < 'text;' ORDER BY a.lsn"
    )
    chunk: list[tuple[int, bytes, str]] = []
    for key_id, text in values:
        chunk.append((key_id, text_ref(text), text))
        if len(chunk) >= BUILD_CHUNK_ROWS:
            conn.executemany(INSERT_OBJECT_DOC, chunk).fetchall()
            chunk = []
    conn.executemany(INSERT_OBJECT_DOC, chunk).fetchall()
    conn.execute(
        f"{_SOURCE_DOC} FROM assertions a"
        " JOIN search_keys k ON k.subject = a.subject AND k.predicate = a.predicate"
        " JOIN sources s ON s.source_hash = a.source_hash"
    )
    for table in FTS_TABLES:
        conn.execute(f"INSERT INTO {table} ({table}) VALUES ('rebuild')")
