"""The SQLite schema of the embedded store (ARCHITECTURE §5).

Every table is derived from the WAL and can be rebuilt from it. Ids and agent keys are
stored as 32-byte BLOBs; ``lsn`` is the WAL LSN of the record that created the row.
"""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = 3
"""1: the tables below without the search index; 2: with it (ADR 0014). A version-1
store is upgraded on open: the index is built from its rows (``store.sqlite.search``).
3: the quarantine (ADR 0023): two columns of ``assertions`` and the ``quarantine``
table; a version-2 store gets them on open (empty: no WAL before it has quarantines)."""

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value
) WITHOUT ROWID;

-- One row per WAL record: the change feed and the as_of (transaction time) clock.
CREATE TABLE IF NOT EXISTS changes (
    lsn INTEGER PRIMARY KEY,
    kind INTEGER NOT NULL,
    ref BLOB NOT NULL,
    committed_at REAL NOT NULL,
    record BLOB  -- only for kinds without a table of their own (co-signature, retraction, trust)
);
CREATE INDEX IF NOT EXISTS changes_by_time ON changes (committed_at);

CREATE TABLE IF NOT EXISTS assertions (
    lsn INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    predicate TEXT NOT NULL,
    value_key TEXT NOT NULL,
    confidence REAL NOT NULL,
    source_hash BLOB,
    source_class_raw TEXT,
    source_class TEXT NOT NULL,
    epoch BLOB,
    parent BLOB,
    lifecycle TEXT NOT NULL,
    valid_from INTEGER,
    valid_to INTEGER,
    timestamp INTEGER NOT NULL,
    tainted_by BLOB,
    superseded_lsn INTEGER,
    signers BLOB NOT NULL,
    vote_weight REAL NOT NULL,
    record BLOB NOT NULL,
    quarantine_lsn INTEGER,
    released_lsn INTEGER
);
CREATE INDEX IF NOT EXISTS assertions_by_subject ON assertions (subject, predicate, lsn);
CREATE INDEX IF NOT EXISTS assertions_by_predicate ON assertions (predicate, lsn);
CREATE INDEX IF NOT EXISTS assertions_by_source ON assertions (source_hash)
    WHERE source_hash IS NOT NULL;
CREATE INDEX IF NOT EXISTS assertions_by_epoch ON assertions (epoch) WHERE epoch IS NOT NULL;
CREATE INDEX IF NOT EXISTS assertions_by_parent ON assertions (parent) WHERE parent IS NOT NULL;

CREATE TABLE IF NOT EXISTS signatures (
    assertion_lsn INTEGER NOT NULL,
    agent BLOB NOT NULL,
    signature BLOB NOT NULL,
    signed_at INTEGER NOT NULL,
    lsn INTEGER NOT NULL,
    PRIMARY KEY (assertion_lsn, agent)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS signatures_by_agent ON signatures (agent, assertion_lsn);

CREATE TABLE IF NOT EXISTS votes (
    lsn INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    assertion_lsn INTEGER NOT NULL,
    agent BLOB NOT NULL,
    weight REAL NOT NULL,
    timestamp INTEGER NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS votes_by_assertion ON votes (assertion_lsn, agent, timestamp, lsn);
CREATE TABLE IF NOT EXISTS votes_latest (
    assertion_lsn INTEGER NOT NULL,
    agent BLOB NOT NULL,
    weight REAL NOT NULL,
    timestamp INTEGER NOT NULL,
    lsn INTEGER NOT NULL,
    PRIMARY KEY (assertion_lsn, agent)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS epochs (
    lsn INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    record BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS epoch_supersedes (
    old BLOB NOT NULL,
    new BLOB NOT NULL,
    lsn INTEGER NOT NULL,
    PRIMARY KEY (old, new)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS supersessions (
    lsn INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    old BLOB NOT NULL,
    new BLOB NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS supersessions_by_old ON supersessions (old);
CREATE INDEX IF NOT EXISTS supersessions_by_new ON supersessions (new);

CREATE TABLE IF NOT EXISTS sources (
    source_hash BLOB PRIMARY KEY,
    lsn INTEGER NOT NULL,
    id BLOB NOT NULL,
    uri TEXT NOT NULL,
    title TEXT NOT NULL,
    source_class TEXT,
    published_at INTEGER,
    timestamp INTEGER NOT NULL,
    has_content INTEGER NOT NULL,
    retraction_lsn INTEGER,
    retracted_reason TEXT,
    record BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS trust (
    agent BLOB PRIMARY KEY,
    score REAL NOT NULL,
    updated_at REAL NOT NULL,
    outcomes INTEGER NOT NULL
) WITHOUT ROWID;

-- Default-lens results per (subject, predicate), refreshed after each batch.
CREATE TABLE IF NOT EXISTS views (
    subject TEXT NOT NULL,
    predicate TEXT NOT NULL,
    lsn INTEGER NOT NULL,
    computed_at REAL NOT NULL,
    result BLOB NOT NULL,
    PRIMARY KEY (subject, predicate)
) WITHOUT ROWID;
"""

# The search index (ADR 0014, docs/design/search.md). ``search_keys``: one row per
# (subject, predicate) with its number of stored assertions. ``search_docs``: what the
# full-text index holds, one row per key (kind 0: its subject and predicate), per
# distinct text value of a key (kind 1, ``ref`` a hash of the text) and per registered
# source a key's assertions cite (kind 2, ``ref`` the source hash). ``search_names``:
# distinct subjects (kind 0) and predicates (kind 1), in a trigram index for "did you
# mean". ``store.sqlite.search_rows`` inserts each row and its full-text row together
# (no triggers: an FTS5 insert from a trigger costs ~5x one from a prepared statement).
SEARCH_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS search_keys (
    id INTEGER PRIMARY KEY,
    subject TEXT NOT NULL,
    predicate TEXT NOT NULL,
    claims INTEGER NOT NULL,
    UNIQUE (subject, predicate)
);
CREATE TABLE IF NOT EXISTS search_docs (
    id INTEGER PRIMARY KEY,
    key_id INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    ref BLOB NOT NULL,
    subject TEXT,
    predicate TEXT,
    object TEXT,
    source_title TEXT,
    source_uri TEXT,
    UNIQUE (key_id, kind, ref)
);
CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(
    subject, predicate, object, source_title, source_uri,
    content = 'search_docs', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS search_names (
    id INTEGER PRIMARY KEY,
    kind INTEGER NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (kind, name)
);
CREATE VIRTUAL TABLE IF NOT EXISTS search_names_fts USING fts5(
    name, content = 'search_names', content_rowid = 'id', tokenize = 'trigram'
);
CREATE VIRTUAL TABLE IF NOT EXISTS search_names_vocab USING fts5vocab(search_names_fts, row);
"""

# The quarantine (ADR 0023): one row per quarantined assertion; ``assertions`` carries
# ``quarantine_lsn`` / ``released_lsn`` so candidate reads need no join.
QUARANTINE_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS quarantine (
    lsn INTEGER PRIMARY KEY,
    assertion_lsn INTEGER NOT NULL UNIQUE,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    agent BLOB NOT NULL,
    quarantined_at REAL NOT NULL,
    status TEXT NOT NULL,
    review_lsn INTEGER,
    reviewer TEXT
);
CREATE INDEX IF NOT EXISTS quarantine_by_status ON quarantine (status, lsn);
"""
QUARANTINE_COLUMNS: Final = ("quarantine_lsn", "released_lsn")

AUDIT_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS audit_queries (
    seq INTEGER PRIMARY KEY,
    query_id TEXT NOT NULL UNIQUE,
    at REAL NOT NULL,
    agent TEXT,
    endpoint TEXT NOT NULL,
    lens TEXT NOT NULL,
    subject TEXT,
    predicate TEXT,
    winner TEXT,
    duration_ms REAL NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_agent ON audit_queries (agent, at);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit_queries (at);
CREATE TABLE IF NOT EXISTS audit_claims (
    assertion_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (assertion_id, seq)
) WITHOUT ROWID;
"""
