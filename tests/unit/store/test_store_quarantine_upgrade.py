"""A store of schema version 2 (before the quarantine, ADR 0023) gets the quarantine
columns and table on open, keeps its rows, and quarantines from then on."""

from __future__ import annotations

from pathlib import Path

import apsw

from stemedb.model.ids import record_id
from stemedb.model.kinds import Entry, RecordKind
from stemedb.model.records import Quarantine
from stemedb.model.signing import AgentKey, sign_assertion
from stemedb.store.sqlite import SqliteStore
from stemedb.store.sqlite.database import STORE_FILE
from stemedb.store.sqlite.schema import SCHEMA_VERSION

T0 = 1_700_000_000


def test_a_version_two_store_gets_the_quarantine_on_open(tmp_path: Path) -> None:
    claim = sign_assertion(
        AgentKey.from_seed(b"\x01" * 32),
        subject="s",
        predicate="p",
        object="v",
        confidence=0.5,
        timestamp=T0,
    )
    store = SqliteStore(tmp_path)
    store.apply([Entry(1, RecordKind.ASSERTION, record_id(claim), claim, float(T0))])
    store.close()
    conn = apsw.Connection(str(tmp_path / STORE_FILE))
    conn.execute("DROP TABLE quarantine")
    conn.execute("ALTER TABLE assertions DROP COLUMN quarantine_lsn")
    conn.execute("ALTER TABLE assertions DROP COLUMN released_lsn")
    conn.execute("UPDATE meta SET value = 2 WHERE key = 'schema_version'")
    conn.close()
    store = SqliteStore(tmp_path)
    try:
        conn = apsw.Connection(str(tmp_path / STORE_FILE))
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        conn.close()
        assert version == (SCHEMA_VERSION,) and SCHEMA_VERSION == 3
        (row,) = store.candidates("s", "p")
        assert (row.id, row.quarantine_lsn) == (record_id(claim), None)
        decision = Quarantine(
            assertion_id=record_id(claim), reason="near_duplicate", detail="d", timestamp=T0
        )
        store.apply([Entry(2, RecordKind.QUARANTINE, record_id(decision), decision, float(T0))])
        assert store.candidates("s", "p")[0].quarantine_lsn == 2
        assert [r.id for r in store.quarantined()] == [record_id(claim)]
    finally:
        store.close()
