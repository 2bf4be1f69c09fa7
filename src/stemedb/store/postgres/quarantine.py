"""The quarantine in the PostgreSQL store (ADR 0023): applying the decisions and reviews
in a batch transaction, and the reads; the SQL and answers are the embedded store's
(``store/sqlite/apply.py``, ``store/sqlite/quarantine.py``)."""

from __future__ import annotations

from typing import Any

import psycopg

from stemedb.model.records import Quarantine, QuarantineReview
from stemedb.store.cache import SubjectPredicate
from stemedb.store.postgres.connection import Conn
from stemedb.store.rows import QuarantineRow
from stemedb.store.sqlite.quarantine import SELECT, listing_query, quarantine_row


def apply_quarantine(
    cur: psycopg.Cursor[Any],
    lsn: int,
    q: Quarantine,
    committed_at: float,
    touched: set[SubjectPredicate],
) -> None:
    row = cur.execute(
        "UPDATE assertions SET quarantine_lsn = %s WHERE id = %s AND quarantine_lsn IS NULL"
        " RETURNING lsn, subject, predicate, signers",
        (lsn, bytes.fromhex(q.assertion_id)),
    ).fetchone()
    if row is None:
        return
    target, subject, predicate, signers = row
    cur.execute(
        "INSERT INTO quarantine VALUES (%s, %s, %s, %s, %s, %s, 'pending', NULL, NULL)",
        (lsn, target, q.reason, q.detail, bytes(signers)[:32], committed_at),
    )
    touched.add((subject, predicate))


def apply_review(
    cur: psycopg.Cursor[Any], lsn: int, r: QuarantineReview, touched: set[SubjectPredicate]
) -> None:
    status = "approved" if r.decision == "approve" else "rejected"
    row = cur.execute(
        "UPDATE quarantine SET status = %s, review_lsn = %s, reviewer = %s"
        " WHERE assertion_lsn = (SELECT lsn FROM assertions WHERE id = %s)"
        " AND status = 'pending' RETURNING assertion_lsn",
        (status, lsn, r.reviewer, bytes.fromhex(r.assertion_id)),
    ).fetchone()
    if row is None:
        return
    if status == "approved":
        cur.execute("UPDATE assertions SET released_lsn = %s WHERE lsn = %s", (lsn, row[0]))
    key = cur.execute("SELECT subject, predicate FROM assertions WHERE lsn = %s", (row[0],))
    found = key.fetchone()
    if found is not None:
        touched.add((found[0], found[1]))


def quarantined(
    conn: Conn,
    *,
    status: str | None,
    reason: str | None,
    agent_id: str | None,
    after: int,
    limit: int,
) -> list[QuarantineRow]:
    sql, args = listing_query("%s", status, reason, agent_id, after, limit)
    return [quarantine_row(row) for row in conn.execute(sql, args)]


def quarantine_item(conn: Conn, assertion_id: str) -> QuarantineRow | None:
    found = conn.execute(f"{SELECT} WHERE a.id = %s", (bytes.fromhex(assertion_id),)).fetchone()
    return None if found is None else quarantine_row(found)


def quarantine_counts(conn: Conn) -> dict[tuple[str, str], int]:
    return {
        (reason, status): int(count)
        for reason, status, count in conn.execute(
            "SELECT reason, status, count(*) FROM quarantine GROUP BY reason, status"
        )
    }
