"""The lookups of the writer's commit-time checks (``engine.checks``): is it stored?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from stemedb.model.kinds import RecordKind
from stemedb.store.sqlite.blobs import JSON_ENCODER
from stemedb.store.sqlite.candidates import LOOKUP_CHUNK_IDS
from stemedb.store.sqlite.database import Database

_TABLE_AND_KEY: Final = {
    RecordKind.ASSERTION: ("assertions", "id"),
    RecordKind.VOTE: ("votes", "id"),
    RecordKind.EPOCH: ("epochs", "id"),
    RecordKind.SUPERSESSION: ("supersessions", "id"),
    RecordKind.SOURCE: ("sources", "source_hash"),
}


class Lookups:
    def __init__(self, db: Database) -> None:
        self._db = db

    def assertion_lsns(self, ids: Sequence[str]) -> dict[str, int]:
        """One query per chunk of ids (the writer thread's reader, no fault seam)."""
        found: dict[str, int] = {}
        conn = self._db.reader()
        for start in range(0, len(ids), LOOKUP_CHUNK_IDS):
            chunk = ids[start : start + LOOKUP_CHUNK_IDS]
            if len(chunk) == 1:
                rows: Any = conn.execute(
                    "SELECT id, lsn FROM assertions WHERE id = ?", (bytes.fromhex(chunk[0]),)
                )
            else:
                rows = conn.execute(
                    "SELECT id, lsn FROM assertions"
                    " WHERE id IN (SELECT unhex(value) FROM json_each(?))",
                    (JSON_ENCODER.encode(chunk).decode(),),
                )
            for blob, lsn in rows:
                found[blob.hex()] = lsn
        return found

    def record_lsn(self, kind: RecordKind, record_id: str) -> int | None:
        table, key = _TABLE_AND_KEY[kind]
        with self._db.reading("lookup") as conn:
            row = conn.execute(
                f"SELECT lsn FROM {table} WHERE {key} = ?", (bytes.fromhex(record_id),)
            ).fetchone()
        return None if row is None else int(row[0])

    def cosignature_lsn(self, assertion_id: str, agent_id: str) -> int | None:
        with self._db.reading("lookup") as conn:
            row = conn.execute(
                "SELECT s.lsn FROM signatures s JOIN assertions a ON a.lsn = s.assertion_lsn"
                " WHERE a.id = ? AND s.agent = ?",
                (bytes.fromhex(assertion_id), bytes.fromhex(agent_id)),
            ).fetchone()
        return None if row is None else int(row[0])
