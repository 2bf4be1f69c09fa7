"""Reads of the quarantine (ADR 0023): the admin listing, one item, the counts."""

from __future__ import annotations

from typing import Any, Final

from stemedb.store.rows import QuarantineRow
from stemedb.store.sqlite.database import Database

SELECT: Final = (
    "SELECT q.lsn, a.id, q.reason, q.detail, q.agent, a.subject, a.predicate,"
    " q.quarantined_at, q.status, q.reviewer, q.review_lsn"
    " FROM quarantine q JOIN assertions a ON a.lsn = q.assertion_lsn"
)


def quarantine_row(row: Any) -> QuarantineRow:
    return QuarantineRow(
        lsn=row[0],
        id=bytes(row[1]).hex(),
        reason=row[2],
        detail=row[3],
        agent_id=bytes(row[4]).hex(),
        subject=row[5],
        predicate=row[6],
        quarantined_at=row[7],
        status=row[8],
        reviewer=row[9],
        review_lsn=row[10],
    )


def listing_query(
    mark: str, status: str | None, reason: str | None, agent_id: str | None, after: int, limit: int
) -> tuple[str, list[Any]]:
    """The listing's SQL and arguments, with ``mark`` the driver's placeholder (the
    PostgreSQL store runs the same query with ``%s``)."""
    where: list[str] = [f"q.lsn > {mark}"]
    args: list[Any] = [after]
    for column, value in (("q.status", status), ("q.reason", reason)):
        if value is not None:
            where.append(f"{column} = {mark}")
            args.append(value)
    if agent_id is not None:
        where.append(f"q.agent = {mark}")
        args.append(bytes.fromhex(agent_id))
    return f"{SELECT} WHERE {' AND '.join(where)} ORDER BY q.lsn LIMIT {int(limit)}", args


class QuarantineReads:
    def __init__(self, db: Database) -> None:
        self._db = db

    def quarantined(
        self,
        *,
        status: str | None,
        reason: str | None,
        agent_id: str | None,
        after: int,
        limit: int,
    ) -> list[QuarantineRow]:
        sql, args = listing_query("?", status, reason, agent_id, after, limit)
        with self._db.reading("quarantine") as conn:
            return [quarantine_row(row) for row in conn.execute(sql, args)]

    def quarantine_item(self, assertion_id: str) -> QuarantineRow | None:
        with self._db.reading("quarantine") as conn:
            row = conn.execute(f"{SELECT} WHERE a.id = ?", (bytes.fromhex(assertion_id),))
            found = row.fetchone()
        return None if found is None else quarantine_row(found)

    def quarantine_counts(self) -> dict[tuple[str, str], int]:
        """(reason, status) -> number of quarantined assertions."""
        with self._db.reading("quarantine") as conn:
            return {
                (reason, status): count
                for reason, status, count in conn.execute(
                    "SELECT reason, status, count(*) FROM quarantine GROUP BY reason, status"
                )
            }
