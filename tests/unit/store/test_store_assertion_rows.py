"""The one definition of an assertion's row matches the schema, column by column, on
the plain path (no lookups) and the looked-up path (source, parent) alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apsw

from stemedb.model.ids import record_id
from stemedb.model.kinds import Entry, RecordKind
from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey, add_signature, sign_assertion, sign_source
from stemedb.store.sqlite import SqliteStore
from stemedb.store.sqlite.assertion_rows import ASSERTION_COLUMNS, BOUND, AssertionRows
from stemedb.store.sqlite.schema import SCHEMA

T0 = 1_700_000_000
ALICE, BOB = (AgentKey.from_seed(bytes([i]) * 32) for i in (1, 2))


def test_the_assertion_columns_are_the_schemas_columns_in_order() -> None:
    conn = apsw.Connection(":memory:")
    conn.execute(SCHEMA)
    names = [row[1] for row in conn.execute("PRAGMA table_info(assertions)")]
    assert [name for name, _ in ASSERTION_COLUMNS] == names


def test_add_binds_one_value_per_bound_column() -> None:
    claim = sign_assertion(ALICE, subject="s", predicate="p", object="v", confidence=0.5)
    rows = AssertionRows()
    rows.add(Entry(1, RecordKind.ASSERTION, record_id(claim), claim, 1.0), claim, None)
    (row,) = rows.assertions
    assert len(row) == sum(1 for _, value in ASSERTION_COLUMNS if value == BOUND)


def _stored(store: SqliteStore, lsn: int) -> dict[str, Any]:
    columns = ", ".join(name for name, _ in ASSERTION_COLUMNS)
    row = (
        store._db.reader()
        .execute(f"SELECT {columns} FROM assertions WHERE lsn = ?", (lsn,))
        .fetchone()
    )
    return dict(zip((name for name, _ in ASSERTION_COLUMNS), row, strict=True))


def _entry(lsn: int, record: Any) -> Entry:
    kind = RecordKind.SOURCE if not isinstance(record, Assertion) else RecordKind.ASSERTION
    return Entry(lsn, kind, record_id(record), record, float(T0 + lsn))


def test_both_paths_store_every_column_of_an_assertion(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    try:
        epoch = "ee" * 32
        plain = add_signature(
            sign_assertion(
                ALICE,
                subject="s",
                predicate="p",
                object=2,
                confidence=0.5,
                timestamp=T0,
                epoch=epoch,
                lifecycle="approved",
                valid_from=T0 - 1,
                valid_to=T0 + 1,
            ),
            BOB,
            signed_at=T0,
        )
        source = sign_source(ALICE, uri="doi:x", content="x", source_class="clinical")
        looked_up = sign_assertion(
            ALICE,
            subject="s",
            predicate="q",
            object="v",
            confidence=0.25,
            timestamp=T0,
            source_hash=source.source_hash,
            parent=record_id(plain),
        )
        store.apply([_entry(1, plain), _entry(2, source), _entry(3, looked_up)])
        assert _stored(store, 1) == {
            "lsn": 1,
            "id": bytes.fromhex(record_id(plain)),
            "subject": "s",
            "predicate": "p",
            "value_key": "number:2.0",
            "confidence": 0.5,
            "source_hash": None,
            "source_class_raw": None,
            "source_class": "expert",
            "epoch": bytes.fromhex(epoch),
            "parent": None,
            "lifecycle": "approved",
            "valid_from": T0 - 1,
            "valid_to": T0 + 1,
            "timestamp": T0,
            "tainted_by": None,
            "superseded_lsn": None,
            "signers": bytes.fromhex(ALICE.agent_id + BOB.agent_id),
            "vote_weight": 0.0,
            "record": _stored(store, 1)["record"],
            "quarantine_lsn": None,
            "released_lsn": None,
        }
        assert store.assertions_by_lsn([1, 3]) == {1: plain, 3: looked_up}
        third = _stored(store, 3)
        assert third["source_hash"] == bytes.fromhex(source.source_hash)
        assert (third["source_class_raw"], third["source_class"]) == (None, "clinical")
        assert third["parent"] == bytes.fromhex(record_id(plain))
        assert third["signers"] == bytes.fromhex(ALICE.agent_id)
        assert [c.lsn for c in store.changes(0, 10)] == [1, 2, 3]
        assert [s.lsn for s in store.signatures(1)] == [1, 1]
    finally:
        store.close()
