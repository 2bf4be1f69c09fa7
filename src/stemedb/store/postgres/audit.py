"""The audit log's rows in PostgreSQL (shared by every node; ``seq`` is cluster-wide)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stemedb.store.postgres.connection import Conn
from stemedb.store.protocol import AuditRow


def write_audit(conn: Conn, rows: Sequence[AuditRow], claims: Sequence[tuple[str, str]]) -> None:
    with conn.transaction():
        cur = conn.cursor()
        if rows:
            cur.executemany(
                "INSERT INTO audit_queries (query_id, at, agent, endpoint, lens, subject,"
                " predicate, winner, duration_ms, record)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (query_id) DO NOTHING",
                rows,
            )
        if claims:
            cur.executemany(
                "INSERT INTO audit_claims SELECT %s, seq FROM audit_queries WHERE query_id = %s"
                " ON CONFLICT DO NOTHING",
                claims,
            )


def expired_audit(conn: Conn, before: float, limit: int) -> list[tuple[int, bytes]]:
    return [
        (int(seq), bytes(record))
        for seq, record in conn.execute(
            "SELECT seq, record FROM audit_queries WHERE at < %s ORDER BY at, seq LIMIT %s",
            (before, limit),
        )
    ]


def delete_audit(conn: Conn, seqs: Sequence[int], claims: Sequence[tuple[str, int]]) -> None:
    with conn.transaction():
        cur = conn.cursor()
        if claims:
            cur.executemany("DELETE FROM audit_claims WHERE assertion_id = %s AND seq = %s", claims)
        if seqs:
            cur.execute("DELETE FROM audit_queries WHERE seq = ANY(%s)", (list(seqs),))


def audit_queries(
    conn: Conn, agent: str | None, since: float | None, until: float | None, limit: int
) -> list[bytes]:
    clauses: list[str] = []
    args: list[Any] = []
    if agent is not None:
        clauses.append("agent = %s")
        args.append(agent)
    if since is not None:
        clauses.append("at >= %s")
        args.append(since)
    if until is not None:
        clauses.append("at <= %s")
        args.append(until)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT record FROM audit_queries {where} ORDER BY seq DESC LIMIT {int(limit)}"
    return [bytes(r[0]) for r in conn.execute(sql, args)]


def audit_query(conn: Conn, query_id: str) -> bytes | None:
    row = conn.execute(
        "SELECT record FROM audit_queries WHERE query_id = %s", (query_id,)
    ).fetchone()
    return None if row is None else bytes(row[0])


def audit_queries_using(conn: Conn, assertion_id: str, limit: int) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT q.query_id FROM audit_claims c JOIN audit_queries q ON q.seq = c.seq"
            " WHERE c.assertion_id = %s ORDER BY c.seq DESC LIMIT %s",
            (assertion_id, limit),
        )
    ]
