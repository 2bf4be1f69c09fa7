"""The change feed and what is counted over it: changes, record blobs, the state hash."""

from __future__ import annotations

import hashlib
from typing import Final

from stemedb.model.kinds import RecordKind
from stemedb.store.rows import ChangeRow
from stemedb.store.sqlite.database import Database, scalar

COUNTED_TABLES: Final = ("assertions", "signatures", "votes", "epochs", "sources")
_RECORD_OF_KIND: Final = {
    RecordKind.ASSERTION: "SELECT record FROM assertions WHERE lsn = ?",
    RecordKind.VOTE: "SELECT record FROM votes WHERE lsn = ?",
    RecordKind.EPOCH: "SELECT record FROM epochs WHERE lsn = ?",
    RecordKind.SUPERSESSION: "SELECT record FROM supersessions WHERE lsn = ?",
    RecordKind.SOURCE: "SELECT record FROM sources WHERE lsn = ?",
}
_RECORD_OF_CHANGE: Final = "SELECT record FROM changes WHERE lsn = ?"


class FeedReads:
    def __init__(self, db: Database) -> None:
        self._db = db

    def changes(self, after: int, limit: int) -> list[ChangeRow]:
        with self._db.reading("feed") as conn:
            return [
                ChangeRow(lsn, kind, ref.hex(), at)
                for lsn, kind, ref, at in conn.execute(
                    "SELECT lsn, kind, ref, committed_at FROM changes WHERE lsn > ?"
                    " ORDER BY lsn LIMIT ?",
                    (after, limit),
                )
            ]

    def record_blob(self, kind: int, lsn: int) -> bytes | None:
        """Records of kinds with a table of their own are there, the others in ``changes``."""
        sql = _RECORD_OF_KIND.get(RecordKind(kind), _RECORD_OF_CHANGE)
        with self._db.reading("feed") as conn:
            row = conn.execute(sql, (lsn,)).fetchone()
        return None if row is None else bytes(row[0])

    def state_hash(self, from_lsn: int) -> tuple[int, str]:
        digest = hashlib.sha256()
        last = 0
        with self._db.reading("verify") as conn:
            for lsn, kind, ref in conn.execute(
                "SELECT lsn, kind, ref FROM changes WHERE lsn >= ? ORDER BY lsn", (from_lsn,)
            ):
                digest.update(f"{lsn}:{kind}:{ref.hex()}\n".encode())
                last = lsn
        return last, digest.hexdigest()

    def counts(self) -> dict[str, int]:
        with self._db.reading("stats") as conn:
            return {
                table: int(scalar(conn, f"SELECT count(*) FROM {table}"))
                for table in COUNTED_TABLES
            }

    def assertion_count(self) -> int:
        with self._db.reading("stats") as conn:
            return int(scalar(conn, "SELECT count(*) FROM assertions"))
