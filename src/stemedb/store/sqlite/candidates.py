"""Candidate reads: the rows candidate selection filters and the lens weighs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from stemedb.model.records import Assertion
from stemedb.store.cache import SubjectPredicate
from stemedb.store.claim_keys import prefix_upper_bound
from stemedb.store.rows import CandidateRow
from stemedb.store.sqlite.blobs import ASSERTION_DECODER, JSON_ENCODER, agents_of, hex_or_none
from stemedb.store.sqlite.database import Database, scalar

LOOKUP_CHUNK_IDS: Final = 4096  # ids bound as one JSON array per query

# CandidateRow's fields are columns of ``assertions`` of the same names, in its order.
CANDIDATE_COLUMNS: Final = ", ".join(f"a.{name}" for name in CandidateRow.__struct_fields__)


def subject_clause(subject: str, prefix: bool) -> tuple[str, list[Any]]:
    """The WHERE clause on ``a.subject``: equal, or the byte range of a prefix."""
    if not prefix:
        return "a.subject = ?", [subject]
    if not subject:
        return "1", []
    # A byte-range scan on the index: [prefix, least string above every extension).
    upper = prefix_upper_bound(subject)
    if upper is None:
        return "a.subject >= ?", [subject]
    return "a.subject >= ? AND a.subject < ?", [subject, upper]


def candidate_row(row: Sequence[Any]) -> CandidateRow:
    """A ``CandidateRow`` from the columns of ``CANDIDATE_COLUMNS``."""
    return CandidateRow(
        lsn=row[0],
        id=row[1].hex(),
        subject=row[2],
        predicate=row[3],
        value_key=row[4],
        confidence=row[5],
        timestamp=row[6],
        source_class=row[7],
        source_hash=hex_or_none(row[8]),
        epoch=hex_or_none(row[9]),
        lifecycle=row[10],
        valid_from=row[11],
        valid_to=row[12],
        tainted_by=hex_or_none(row[13]),
        superseded_lsn=row[14],
        signers=agents_of(row[15]),
        vote_weight=row[16],
        quarantine_lsn=row[17],
        released_lsn=row[18],
    )


class CandidateReads:
    def __init__(self, db: Database) -> None:
        self._db = db

    def candidates(
        self, subject: str, predicate: str | None, *, prefix: bool, limit: int
    ) -> list[CandidateRow]:
        where, args = subject_clause(subject, prefix)
        if predicate is not None:
            where += " AND a.predicate = ?"
            args.append(predicate)
        sql = f"SELECT {CANDIDATE_COLUMNS} FROM assertions a WHERE {where}"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._db.reading("query") as conn:
            return [candidate_row(row) for row in conn.execute(sql, args)]

    def candidates_by_ids(self, ids: Sequence[str]) -> list[CandidateRow]:
        with self._db.reading("query") as conn:
            rows = []
            for record_id in ids:
                row = conn.execute(
                    f"SELECT {CANDIDATE_COLUMNS} FROM assertions a WHERE a.id = ?",
                    (bytes.fromhex(record_id),),
                ).fetchone()
                if row is not None:
                    rows.append(candidate_row(row))
            return rows

    def subject_predicates(
        self,
        subject: str,
        predicate: str | None,
        *,
        prefix: bool,
        after: tuple[str, str] | None,
        limit: int,
    ) -> list[SubjectPredicate]:
        where, args = subject_clause(subject, prefix)
        if predicate is not None:
            where += " AND a.predicate = ?"
            args.append(predicate)
        if after is not None:
            where += " AND (a.subject, a.predicate) > (?, ?)"
            args.extend(after)
        sql = (
            f"SELECT DISTINCT a.subject, a.predicate FROM assertions a WHERE {where}"
            f" ORDER BY a.subject, a.predicate LIMIT {int(limit)}"
        )
        with self._db.reading("query") as conn:
            return [(s, p) for s, p in conn.execute(sql, args)]

    def signers_at(
        self, assertion_lsns: Sequence[int], lsn_bound: int
    ) -> dict[int, tuple[str, ...]]:
        out: dict[int, list[str]] = {}
        with self._db.reading("query") as conn:
            for target in assertion_lsns:
                for agent, _ in conn.execute(
                    "SELECT agent, lsn FROM signatures WHERE assertion_lsn = ? AND lsn <= ?"
                    " ORDER BY lsn",
                    (target, lsn_bound),
                ):
                    out.setdefault(target, []).append(agent.hex())
        return {k: tuple(v) for k, v in out.items()}

    def vote_weights_at(self, assertion_lsns: Sequence[int], lsn_bound: int) -> dict[int, float]:
        out: dict[int, float] = {}
        with self._db.reading("query") as conn:
            for target in assertion_lsns:
                latest: dict[bytes, tuple[int, int, float]] = {}
                for agent, timestamp, lsn, weight in conn.execute(
                    "SELECT agent, timestamp, lsn, weight FROM votes"
                    " WHERE assertion_lsn = ? AND lsn <= ?",
                    (target, lsn_bound),
                ):
                    if agent not in latest or (timestamp, lsn) >= latest[agent][:2]:
                        latest[agent] = (timestamp, lsn, weight)
                out[target] = sum(w for _, _, w in latest.values())
        return out

    def lsn_at(self, at: float) -> int:
        with self._db.reading("query") as conn:
            return int(
                scalar(conn, "SELECT max(lsn) FROM changes WHERE committed_at <= ?", (at,)) or 0
            )

    def assertions_by_lsn(self, lsns: Sequence[int]) -> dict[int, Assertion]:
        """One query per chunk of LSNs, not one per LSN."""
        out: dict[int, Assertion] = {}
        decode = ASSERTION_DECODER.decode
        with self._db.reading("get") as conn:
            for start in range(0, len(lsns), LOOKUP_CHUNK_IDS):
                chunk = lsns[start : start + LOOKUP_CHUNK_IDS]
                rows = conn.execute(
                    "SELECT lsn, record FROM assertions"
                    " WHERE lsn IN (SELECT value FROM json_each(?))",
                    (JSON_ENCODER.encode(chunk).decode(),),
                )
                for lsn, blob in rows:
                    out[lsn] = decode(blob)
        return out
