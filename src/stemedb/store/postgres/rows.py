"""An assertion's rows, defined once for both backends: ``AssertionRows`` and
``ASSERTION_COLUMNS`` of ``store/sqlite/assertion_rows.py`` collect them; here they are
sent with binary ``COPY`` (the columns the embedded store binds, with their PostgreSQL
types; the others take the schema's defaults: ``superseded_lsn`` NULL, ``vote_weight``
0.0)."""

from __future__ import annotations

from typing import Any, Final

import psycopg

from stemedb.model.kinds import Entry
from stemedb.store.sqlite.assertion_rows import ASSERTION_COLUMNS, BOUND, AssertionRows

_TYPES: Final = {
    "lsn": "int8",
    "id": "bytea",
    "subject": "text",
    "predicate": "text",
    "value_key": "text",
    "confidence": "float8",
    "source_hash": "bytea",
    "source_class_raw": "text",
    "source_class": "text",
    "epoch": "bytea",
    "parent": "bytea",
    "lifecycle": "text",
    "valid_from": "int8",
    "valid_to": "int8",
    "timestamp": "int8",
    "tainted_by": "bytea",
    "signers": "bytea",
    "record": "bytea",
}
COPY_COLUMNS: Final = (
    ("assertions", tuple((n, _TYPES[n]) for n, value in ASSERTION_COLUMNS if value == BOUND)),
    (
        "signatures",
        (
            ("assertion_lsn", "int8"),
            ("agent", "bytea"),
            ("signature", "bytea"),
            ("signed_at", "int8"),
            ("lsn", "int8"),
        ),
    ),
    (
        "changes",
        (
            ("lsn", "int8"),
            ("kind", "int2"),
            ("ref", "bytea"),
            ("committed_at", "float8"),
            ("record", "bytea"),
        ),
    ),
)
_COPY_SQL: Final = tuple(
    (
        f"COPY {table} ({', '.join(n for n, _ in columns)}) FROM STDIN (FORMAT BINARY)",
        [t for _, t in columns],
    )
    for table, columns in COPY_COLUMNS
)


def change_row(entry: Entry, record: bytes | None) -> tuple[Any, ...]:
    return (entry.lsn, int(entry.kind), bytes.fromhex(entry.record_id), entry.committed_at, record)


def copy_rows(cur: psycopg.Cursor[Any], rows: AssertionRows) -> None:
    """Send the collected rows (three ``COPY``s) and empty ``rows``."""
    if not rows.assertions:
        return
    for (sql, types), data in zip(
        _COPY_SQL, (rows.assertions, rows.signatures, rows.changes), strict=True
    ):
        with cur.copy(sql) as copy:
            copy.set_types(types)
            for row in data:
                copy.write_row(row)
    rows.assertions, rows.signatures, rows.changes = [], [], []


__all__ = ["AssertionRows", "change_row", "copy_rows"]
