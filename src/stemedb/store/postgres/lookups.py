"""The lookups of the commit-time checks (``engine.checks``), on a given connection:
a batch's own (under the LSN lock) or a pooled one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from stemedb.model.kinds import RecordKind
from stemedb.store.postgres import records
from stemedb.store.postgres.connection import Conn
from stemedb.store.postgres.records import SOURCE_COLUMNS, source_row
from stemedb.store.rows import ChangeRow, SourceRow

_TABLE_AND_KEY: Final = {
    RecordKind.ASSERTION: ("assertions", "id"),
    RecordKind.VOTE: ("votes", "id"),
    RecordKind.EPOCH: ("epochs", "id"),
    RecordKind.SUPERSESSION: ("supersessions", "id"),
    RecordKind.SOURCE: ("sources", "source_hash"),
}


class Lookups:
    @staticmethod
    def assertion_lsns(conn: Conn, ids: Sequence[str]) -> dict[str, int]:
        """One query for every id (an array parameter)."""
        if not ids:
            return {}
        rows = conn.execute(
            "SELECT id, lsn FROM assertions WHERE id = ANY(%s)",
            ([bytes.fromhex(i) for i in ids],),
        )
        return {bytes(blob).hex(): int(lsn) for blob, lsn in rows}

    @staticmethod
    def record_lsn(conn: Conn, kind: RecordKind, record_id: str) -> int | None:
        table, key = _TABLE_AND_KEY[kind]
        row = conn.execute(
            f"SELECT lsn FROM {table} WHERE {key} = %s", (bytes.fromhex(record_id),)
        ).fetchone()
        return None if row is None else int(row[0])

    @staticmethod
    def cosignature_lsn(conn: Conn, assertion_id: str, agent_id: str) -> int | None:
        row = conn.execute(
            "SELECT s.lsn FROM signatures s JOIN assertions a ON a.lsn = s.assertion_lsn"
            " WHERE a.id = %s AND s.agent = %s",
            (bytes.fromhex(assertion_id), bytes.fromhex(agent_id)),
        ).fetchone()
        return None if row is None else int(row[0])

    @staticmethod
    def source(conn: Conn, source_hash: str, with_content: bool) -> SourceRow | None:
        row = conn.execute(
            f"SELECT {SOURCE_COLUMNS} FROM sources WHERE source_hash = %s",
            (bytes.fromhex(source_hash),),
        ).fetchone()
        return None if row is None else source_row(row, with_content)

    @staticmethod
    def changes(conn: Conn, after: int, limit: int) -> list[ChangeRow]:
        return records.changes(conn, after, limit)
