"""The audit log tables (``audit.sqlite``): query records and the claims they used."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apsw

from stemedb.store.protocol import AuditRow
from stemedb.store.sqlite.database import Database, translate_error


class AuditTables:
    """Written by the audit thread on its own connection; read per thread."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def write_audit(self, rows: Sequence[AuditRow], claims: Sequence[tuple[str, str]]) -> None:
        """Append audit rows (query_id, at, agent, endpoint, lens, subject, predicate,
        winner, duration_ms, record) and their (assertion_id, query_id) links."""
        try:
            with self._db.audit_writer:
                self._db.audit_writer.executemany(
                    "INSERT OR IGNORE INTO audit_queries (query_id, at, agent, endpoint, lens,"
                    " subject, predicate, winner, duration_ms, record)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.audit_writer.executemany(
                    "INSERT OR IGNORE INTO audit_claims SELECT ?, seq FROM audit_queries"
                    " WHERE query_id = ?",
                    claims,
                )
        except apsw.Error as exc:
            raise translate_error(exc, "audit") from exc

    def expired_audit(self, before: float, limit: int) -> list[tuple[int, bytes]]:
        """The oldest audit rows (seq, record) of queries asked before ``before``."""
        try:
            return [
                (int(r[0]), bytes(r[1]))
                for r in self._db.audit_writer.execute(
                    "SELECT seq, record FROM audit_queries WHERE at < ? ORDER BY at LIMIT ?",
                    (before, limit),
                )
            ]
        except apsw.Error as exc:
            raise translate_error(exc, "audit") from exc

    def delete_audit(self, seqs: Sequence[int], claims: Sequence[tuple[str, int]]) -> None:
        """Delete audit rows and their (assertion_id, seq) links in one transaction."""
        try:
            with self._db.audit_writer:
                self._db.audit_writer.executemany(
                    "DELETE FROM audit_claims WHERE assertion_id = ? AND seq = ?", claims
                )
                self._db.audit_writer.executemany(
                    "DELETE FROM audit_queries WHERE seq = ?", [(seq,) for seq in seqs]
                )
        except apsw.Error as exc:
            raise translate_error(exc, "audit") from exc

    def audit_queries(
        self, *, agent: str | None, since: float | None, until: float | None, limit: int
    ) -> list[bytes]:
        clauses: list[str] = []
        args: list[Any] = []
        if agent is not None:
            clauses.append("agent = ?")
            args.append(agent)
        if since is not None:
            clauses.append("at >= ?")
            args.append(since)
        if until is not None:
            clauses.append("at <= ?")
            args.append(until)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT record FROM audit_queries {where} ORDER BY seq DESC LIMIT {int(limit)}"
        try:
            return [bytes(r[0]) for r in self._db.audit_reader().execute(sql, args)]
        except apsw.Error as exc:
            raise translate_error(exc, "audit") from exc

    def audit_query(self, query_id: str) -> bytes | None:
        row = (
            self._db.audit_reader()
            .execute("SELECT record FROM audit_queries WHERE query_id = ?", (query_id,))
            .fetchone()
        )
        return None if row is None else bytes(row[0])

    def audit_queries_using(self, assertion_id: str, limit: int) -> list[str]:
        return [
            r[0]
            for r in self._db.audit_reader().execute(
                "SELECT q.query_id FROM audit_claims c JOIN audit_queries q ON q.seq = c.seq"
                " WHERE c.assertion_id = ? ORDER BY c.seq DESC LIMIT ?",
                (assertion_id, limit),
            )
        ]
