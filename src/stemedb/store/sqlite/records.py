"""Single records and their trace data: what provenance and the registries read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stemedb.model.records import Assertion
from stemedb.store.rows import (
    EpochRow,
    SignatureRow,
    SourceRow,
    SupersessionRow,
    TrustRow,
    VoteRow,
)
from stemedb.store.sqlite.blobs import (
    ASSERTION_DECODER,
    EPOCH_DECODER,
    SOURCE_DECODER,
    SUPERSESSION_DECODER,
)
from stemedb.store.sqlite.database import Database, scalar


class RecordReads:
    def __init__(self, db: Database) -> None:
        self._db = db

    def assertion(self, record_id: str) -> tuple[int, Assertion, float] | None:
        with self._db.reading("get") as conn:
            row = conn.execute(
                "SELECT a.lsn, a.record, c.committed_at FROM assertions a"
                " JOIN changes c ON c.lsn = a.lsn WHERE a.id = ?",
                (bytes.fromhex(record_id),),
            ).fetchone()
        if row is None:
            return None
        return row[0], ASSERTION_DECODER.decode(row[1]), row[2]

    def signatures(self, assertion_lsn: int) -> list[SignatureRow]:
        with self._db.reading("get") as conn:
            return [
                SignatureRow(agent.hex(), sig.hex(), signed_at, lsn)
                for agent, sig, signed_at, lsn in conn.execute(
                    "SELECT agent, signature, signed_at, lsn FROM signatures"
                    " WHERE assertion_lsn = ? ORDER BY lsn, agent",
                    (assertion_lsn,),
                )
            ]

    def votes(self, assertion_lsn: int) -> list[VoteRow]:
        with self._db.reading("get") as conn:
            return [
                VoteRow(vid.hex(), agent.hex(), weight, timestamp, lsn)
                for vid, agent, weight, timestamp, lsn in conn.execute(
                    "SELECT id, agent, weight, timestamp, lsn FROM votes"
                    " WHERE assertion_lsn = ? ORDER BY lsn",
                    (assertion_lsn,),
                )
            ]

    def supersessions_of(self, record_id: str) -> list[SupersessionRow]:
        blob = bytes.fromhex(record_id)
        with self._db.reading("get") as conn:
            rows: list[Any] = conn.execute(
                "SELECT lsn, id, record FROM supersessions WHERE old = ? OR new = ? ORDER BY lsn",
                (blob, blob),
            ).fetchall()
        return [_supersession_row(lsn, sid, rec) for lsn, sid, rec in rows]

    def children(self, record_id: str) -> list[str]:
        with self._db.reading("get") as conn:
            return [
                row[0].hex()
                for row in conn.execute(
                    "SELECT id FROM assertions WHERE parent = ? ORDER BY lsn",
                    (bytes.fromhex(record_id),),
                )
            ]

    def citing(self, source_hash: str, limit: int) -> list[str]:
        with self._db.reading("get") as conn:
            return [
                row[0].hex()
                for row in conn.execute(
                    "SELECT id FROM assertions WHERE source_hash = ? ORDER BY lsn LIMIT ?",
                    (bytes.fromhex(source_hash), limit),
                )
            ]

    def source(self, source_hash: str, *, with_content: bool) -> SourceRow | None:
        with self._db.reading("get") as conn:
            row = conn.execute(
                "SELECT lsn, id, record, retraction_lsn, retracted_reason FROM sources"
                " WHERE source_hash = ?",
                (bytes.fromhex(source_hash),),
            ).fetchone()
        return None if row is None else _source_row(row, with_content)

    def sources(self, *, after: str | None, limit: int) -> list[SourceRow]:
        args: list[Any] = []
        where = ""
        if after:
            where = "WHERE source_hash > ?"
            args.append(bytes.fromhex(after))
        sql = (
            "SELECT lsn, id, record, retraction_lsn, retracted_reason FROM sources"
            f" {where} ORDER BY source_hash LIMIT {int(limit)}"
        )
        with self._db.reading("list") as conn:
            return [_source_row(row, False) for row in conn.execute(sql, args)]

    def epochs(self, where: str = "", args: Sequence[Any] = ()) -> list[EpochRow]:
        """Epochs in LSN order (``where``: a clause on the ``epochs`` table)."""
        with self._db.reading("list") as conn:
            rows: list[Any] = conn.execute(
                f"SELECT lsn, id, record FROM epochs {where} ORDER BY lsn", args
            ).fetchall()
            superseded_by: dict[str, list[str]] = {}
            for _, eid, _ in rows:
                for (new,) in conn.execute(
                    "SELECT new FROM epoch_supersedes WHERE old = ? ORDER BY lsn", (eid,)
                ):
                    superseded_by.setdefault(eid.hex(), []).append(new.hex())
        return [_epoch_row(lsn, eid, rec, superseded_by) for lsn, eid, rec in rows]

    def epoch(self, epoch_id: str) -> EpochRow | None:
        found = self.epochs("WHERE id = ?", (bytes.fromhex(epoch_id),))
        return found[0] if found else None

    def trust_row(self, agent_id: str) -> TrustRow | None:
        with self._db.reading("get") as conn:
            row = conn.execute(
                "SELECT score, updated_at, outcomes FROM trust WHERE agent = ?",
                (bytes.fromhex(agent_id),),
            ).fetchone()
        return None if row is None else TrustRow(agent_id, row[0], row[1], row[2])

    def agent_counts(self, agent_id: str) -> dict[str, int]:
        agent = bytes.fromhex(agent_id)
        with self._db.reading("get") as conn:
            signed = scalar(conn, "SELECT count(*) FROM signatures WHERE agent = ?", (agent,))
            authored = scalar(
                conn,
                "SELECT count(*) FROM signatures WHERE agent = ? AND lsn = assertion_lsn",
                (agent,),
            )
            votes = scalar(conn, "SELECT count(*) FROM votes WHERE agent = ?", (agent,))
        return {"assertions": authored, "cosignatures": signed - authored, "votes": votes}

    def recent_signers(self, after: int, limit: int) -> list[tuple[str, int]]:
        # "+agent": read the primary key's range of the last assertions, not the whole
        # signatures_by_agent index in agent order (what the planner picks without stats:
        # 150 ms at a million signatures, against under 1 ms)
        sql = (
            "SELECT agent, count(*) AS n FROM signatures WHERE assertion_lsn > ?"
            " GROUP BY +agent ORDER BY n DESC, agent LIMIT ?"
        )
        with self._db.reading("get") as conn:
            return [(bytes(a).hex(), int(n)) for a, n in conn.execute(sql, (after, limit))]


def _supersession_row(lsn: int, sid: bytes, blob: bytes) -> SupersessionRow:
    s = SUPERSESSION_DECODER.decode(blob)
    signers = tuple(sig.agent_id for sig in s.signatures)
    return SupersessionRow(sid.hex(), lsn, s.old, s.new, s.reason, s.timestamp, signers)


def _source_row(row: Sequence[Any], with_content: bool) -> SourceRow:
    lsn, sid, blob, retraction_lsn, reason = row
    s = SOURCE_DECODER.decode(blob)
    return SourceRow(
        source_hash=s.source_hash,
        id=sid.hex(),
        lsn=lsn,
        uri=s.uri,
        title=s.title,
        source_class=s.source_class,
        published_at=s.published_at,
        timestamp=s.timestamp,
        registered_by=tuple(sig.agent_id for sig in s.signatures),
        retracted=retraction_lsn is not None,
        retracted_reason=reason,
        retraction_lsn=retraction_lsn,
        content=s.content if with_content else None,
    )


def _epoch_row(lsn: int, eid: bytes, blob: bytes, superseded_by: dict[str, list[str]]) -> EpochRow:
    e = EPOCH_DECODER.decode(blob)
    return EpochRow(
        id=eid.hex(),
        lsn=lsn,
        name=e.name,
        description=e.description,
        kind=e.kind,
        timestamp=e.timestamp,
        supersedes=e.supersedes,
        superseded_by=tuple(superseded_by.get(eid.hex(), ())),
        signers=tuple(sig.agent_id for sig in e.signatures),
    )
