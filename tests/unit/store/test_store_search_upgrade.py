"""A store written before the search index (schema version 1) gets it on open."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest
from store_contract.history import PREDICATE, SUBJECT, History, source_hash_of

from stemedb.errors import StorageError
from stemedb.store.sqlite import STORE_FILE, SqliteStore
from stemedb.store.sqlite.schema import SCHEMA_VERSION

SEARCH_OBJECTS = (
    ("TABLE", "search_names_vocab"),
    ("TABLE", "search_fts"),
    ("TABLE", "search_names_fts"),
    ("TABLE", "search_docs"),
    ("TABLE", "search_names"),
    ("TABLE", "search_keys"),
)


def _as_version_one(path: Path) -> None:
    """What a store of version 1 holds: the same tables without the search index."""
    conn = apsw.Connection(str(path))
    with conn:
        for kind, name in SEARCH_OBJECTS:
            conn.execute(f"DROP {kind} {name}")
        conn.execute("UPDATE meta SET value = 1 WHERE key = 'schema_version'")
    conn.close()


def _version(path: Path) -> object:
    conn = apsw.Connection(str(path))
    try:
        return conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    finally:
        conn.close()


def test_a_new_store_is_created_at_the_current_version(tmp_path: Path) -> None:
    SqliteStore(tmp_path).close()
    assert _version(tmp_path / STORE_FILE) == SCHEMA_VERSION == 3


def test_a_version_one_store_is_indexed_from_its_rows_on_open(tmp_path: Path) -> None:
    history = History()
    source = history.source("paper", title="Cohort study")
    history.assertion("gastric emptying", source_hash=source_hash_of(source))
    history.assertion("gastric emptying", subject="drugs/other", confidence=0.5)
    history.assertion(3.0, subject="drugs/other", predicate="dose")
    store = SqliteStore(tmp_path)
    store.apply(history.entries)
    expected = (
        store.search("gastric", fts=False, bound=None, offset=0, limit=10)[0],
        store.search("cohort", fts=False, bound=None, offset=0, limit=10)[0],
        store.list_subjects("", after=None, limit=10),
        store.similar_names("subject", "drugs/othr", 5),
    )
    store.close()
    _as_version_one(tmp_path / STORE_FILE)
    store = SqliteStore(tmp_path)
    try:
        assert _version(tmp_path / STORE_FILE) == SCHEMA_VERSION
        got = (
            store.search("gastric", fts=False, bound=None, offset=0, limit=10)[0],
            store.search("cohort", fts=False, bound=None, offset=0, limit=10)[0],
            store.list_subjects("", after=None, limit=10),
            store.similar_names("subject", "drugs/othr", 5),
        )
        assert [(h.subject, h.predicate, h.matched_field) for h in got[1]] == [
            (SUBJECT, PREDICATE, "source_title")
        ]
        assert [(h.subject, h.predicate, h.matched_field, h.snippet) for h in got[0]] == [
            (h.subject, h.predicate, h.matched_field, h.snippet) for h in expected[0]
        ]
        assert got[2:] == expected[2:]
    finally:
        store.close()


def test_a_store_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    SqliteStore(tmp_path).close()
    conn = apsw.Connection(str(tmp_path / STORE_FILE))
    conn.execute("UPDATE meta SET value = 4 WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(StorageError) as caught:
        SqliteStore(tmp_path)
    assert caught.value.code == "schema_mismatch"
