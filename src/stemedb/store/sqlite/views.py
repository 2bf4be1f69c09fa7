"""Materialized default-lens views (``views`` table), written by the view refresher."""

from __future__ import annotations

from collections.abc import Sequence

import apsw

from stemedb.store.protocol import ViewRow
from stemedb.store.sqlite.database import Database, translate_error


class Views:
    def __init__(self, db: Database) -> None:
        self._db = db

    def put_views(self, views: Sequence[ViewRow]) -> None:
        """On the writer connection, behind its lock (the group commit uses it too). A
        view never replaces one computed at a later LSN: the HTTP processes of a node
        share the table, and one's refresher may finish after another's newer one."""
        try:
            with self._db.write_lock, self._db.writer:
                self._db.writer.executemany(
                    "INSERT INTO views VALUES (?, ?, ?, ?, ?) ON CONFLICT (subject, predicate)"
                    " DO UPDATE SET lsn = excluded.lsn, computed_at = excluded.computed_at,"
                    " result = excluded.result WHERE excluded.lsn >= views.lsn",
                    views,
                )
        except apsw.Error as exc:
            raise translate_error(exc, "views") from exc

    def view(self, subject: str, predicate: str) -> tuple[int, float, bytes] | None:
        with self._db.reading("view") as conn:
            row = conn.execute(
                "SELECT lsn, computed_at, result FROM views WHERE subject = ? AND predicate = ?",
                (subject, predicate),
            ).fetchone()
        return None if row is None else (row[0], row[1], bytes(row[2]))
