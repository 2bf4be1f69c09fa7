"""The store's reads: candidates, records, provenance, feed, stats and views."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import apsw

from stemedb.model.kinds import RecordKind
from stemedb.model.records import (
    Assertion,
)
from stemedb.store.base import (
    _ASSERTION_DECODER,
    _CANDIDATE_COLUMNS,
    _EPOCH_DECODER,
    _JSON_ENCODER,
    _SOURCE_DECODER,
    _SUPERSESSION_DECODER,
    LOOKUP_CHUNK_IDS,
    StoreBase,
    _agents,
    _hex,
    _translate,
    prefix_upper_bound,
    scalar,
)
from stemedb.store.cache import SubjectPredicate
from stemedb.store.rows import (
    CandidateRow,
    ChangeRow,
    EpochRow,
    SignatureRow,
    SourceRow,
    SupersessionRow,
    TrustRow,
    VoteRow,
)
from stemedb.store.trust import TRUST_INITIAL, relaxed_trust


class StoreReads(StoreBase):
    # -- reads ---------------------------------------------------------------------

    def candidates(
        self, subject: str, predicate: str | None, *, prefix: bool = False, limit: int = 0
    ) -> list[CandidateRow]:
        """Every assertion for ``subject`` (or subjects starting with it) and predicate."""
        where, args = self._subject_clause(subject, prefix)
        if predicate is not None:
            where += " AND a.predicate = ?"
            args.append(predicate)
        sql = f"SELECT {_CANDIDATE_COLUMNS} FROM assertions a WHERE {where}"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._reading("query") as conn:
            return [self._candidate(row) for row in conn.execute(sql, args)]

    def candidates_by_ids(self, ids: Sequence[str]) -> list[CandidateRow]:
        with self._reading("query") as conn:
            rows = []
            for record_id in ids:
                row = conn.execute(
                    f"SELECT {_CANDIDATE_COLUMNS} FROM assertions a WHERE a.id = ?",
                    (bytes.fromhex(record_id),),
                ).fetchone()
                if row is not None:
                    rows.append(self._candidate(row))
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
        """Distinct (subject, predicate) pairs in key order, after a keyset cursor."""
        where, args = self._subject_clause(subject, prefix)
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
        with self._reading("query") as conn:
            return [(s, p) for s, p in conn.execute(sql, args)]

    @staticmethod
    def _subject_clause(subject: str, prefix: bool) -> tuple[str, list[Any]]:
        if not prefix:
            return "a.subject = ?", [subject]
        if not subject:
            return "1", []
        # A byte-range scan on the index: [prefix, least string above every extension).
        upper = prefix_upper_bound(subject)
        if upper is None:
            return "a.subject >= ?", [subject]
        return "a.subject >= ? AND a.subject < ?", [subject, upper]

    @staticmethod
    def _candidate(row: Sequence[Any]) -> CandidateRow:
        return CandidateRow(
            lsn=row[0],
            id=row[1].hex(),
            subject=row[2],
            predicate=row[3],
            value_key=row[4],
            confidence=row[5],
            timestamp=row[6],
            source_class=row[7],
            source_hash=_hex(row[8]),
            epoch=_hex(row[9]),
            lifecycle=row[10],
            valid_from=row[11],
            valid_to=row[12],
            tainted_by=_hex(row[13]),
            superseded_lsn=row[14],
            signers=_agents(row[15]),
            vote_weight=row[16],
        )

    def signers_at(
        self, assertion_lsns: Sequence[int], lsn_bound: int
    ) -> dict[int, tuple[str, ...]]:
        """Signers of each assertion counting only signatures committed by ``lsn_bound``."""
        out: dict[int, list[str]] = {}
        with self._reading("query") as conn:
            for target in assertion_lsns:
                for agent, _ in conn.execute(
                    "SELECT agent, lsn FROM signatures WHERE assertion_lsn = ? AND lsn <= ?"
                    " ORDER BY lsn",
                    (target, lsn_bound),
                ):
                    out.setdefault(target, []).append(agent.hex())
        return {k: tuple(v) for k, v in out.items()}

    def vote_weights_at(self, assertion_lsns: Sequence[int], lsn_bound: int) -> dict[int, float]:
        """Summed latest vote per agent, counting only votes committed by ``lsn_bound``."""
        out: dict[int, float] = {}
        with self._reading("query") as conn:
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

    def assertion(self, record_id: str) -> tuple[int, Assertion, float] | None:
        """(lsn, assertion as first written, committed_at) or None."""
        with self._reading("get") as conn:
            row = conn.execute(
                "SELECT a.lsn, a.record, c.committed_at FROM assertions a"
                " JOIN changes c ON c.lsn = a.lsn WHERE a.id = ?",
                (bytes.fromhex(record_id),),
            ).fetchone()
        if row is None:
            return None
        return row[0], _ASSERTION_DECODER.decode(row[1]), row[2]

    def assertions_by_lsn(self, lsns: Sequence[int]) -> dict[int, Assertion]:
        """The stored assertions at ``lsns`` (one query per chunk, not one per LSN)."""
        out: dict[int, Assertion] = {}
        decode = _ASSERTION_DECODER.decode
        with self._reading("get") as conn:
            for start in range(0, len(lsns), LOOKUP_CHUNK_IDS):
                chunk = lsns[start : start + LOOKUP_CHUNK_IDS]
                rows = conn.execute(
                    "SELECT lsn, record FROM assertions"
                    " WHERE lsn IN (SELECT value FROM json_each(?))",
                    (_JSON_ENCODER.encode(chunk).decode(),),
                )
                for lsn, blob in rows:
                    out[lsn] = decode(blob)
        return out

    def signatures(self, assertion_lsn: int) -> list[SignatureRow]:
        with self._reading("get") as conn:
            return [
                SignatureRow(agent.hex(), sig.hex(), signed_at, lsn)
                for agent, sig, signed_at, lsn in conn.execute(
                    "SELECT agent, signature, signed_at, lsn FROM signatures"
                    " WHERE assertion_lsn = ? ORDER BY lsn, agent",
                    (assertion_lsn,),
                )
            ]

    def votes(self, assertion_lsn: int) -> list[VoteRow]:
        with self._reading("get") as conn:
            return [
                VoteRow(vid.hex(), agent.hex(), weight, timestamp, lsn)
                for vid, agent, weight, timestamp, lsn in conn.execute(
                    "SELECT id, agent, weight, timestamp, lsn FROM votes"
                    " WHERE assertion_lsn = ? ORDER BY lsn",
                    (assertion_lsn,),
                )
            ]

    def supersessions_of(self, record_id: str) -> list[SupersessionRow]:
        """Supersessions naming ``record_id`` as old or new."""
        blob = bytes.fromhex(record_id)
        with self._reading("get") as conn:
            rows: list[Any] = conn.execute(
                "SELECT lsn, id, record FROM supersessions WHERE old = ? OR new = ? ORDER BY lsn",
                (blob, blob),
            ).fetchall()
        return [self._supersession_row(lsn, sid, rec) for lsn, sid, rec in rows]

    @staticmethod
    def _supersession_row(lsn: int, sid: bytes, blob: bytes) -> SupersessionRow:
        s = _SUPERSESSION_DECODER.decode(blob)
        return SupersessionRow(
            sid.hex(), lsn, s.old, s.new, s.reason, s.timestamp,
            tuple(sig.agent_id for sig in s.signatures),
        )  # fmt: skip

    def children(self, record_id: str) -> list[str]:
        with self._reading("get") as conn:
            return [
                row[0].hex()
                for row in conn.execute(
                    "SELECT id FROM assertions WHERE parent = ? ORDER BY lsn",
                    (bytes.fromhex(record_id),),
                )
            ]

    def source(self, source_hash: str, *, with_content: bool = False) -> SourceRow | None:
        with self._reading("get") as conn:
            row = conn.execute(
                "SELECT lsn, id, record, retraction_lsn, retracted_reason FROM sources"
                " WHERE source_hash = ?",
                (bytes.fromhex(source_hash),),
            ).fetchone()
        return None if row is None else self._source_row(row, with_content)

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
        with self._reading("list") as conn:
            return [self._source_row(row, False) for row in conn.execute(sql, args)]

    @staticmethod
    def _source_row(row: Sequence[Any], with_content: bool) -> SourceRow:
        lsn, sid, blob, retraction_lsn, reason = row
        s = _SOURCE_DECODER.decode(blob)
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

    def retracted_sources(self) -> dict[str, int]:
        """source_hash -> LSN of its retraction."""
        return self._retracted

    def superseded_epochs(self) -> dict[str, int]:
        """epoch id -> LSN of the first `replace` epoch that superseded it."""
        return self._superseded_epochs

    def epochs(self) -> list[EpochRow]:
        return self._epochs("", ())

    def epoch(self, epoch_id: str) -> EpochRow | None:
        found = self._epochs("WHERE id = ?", (bytes.fromhex(epoch_id),))
        return found[0] if found else None

    def _epochs(self, where: str, args: Sequence[Any]) -> list[EpochRow]:
        with self._reading("list") as conn:
            rows: list[Any] = conn.execute(
                f"SELECT lsn, id, record FROM epochs {where} ORDER BY lsn", args
            ).fetchall()
            superseded_by: dict[str, list[str]] = {}
            for _, eid, _ in rows:
                for (new,) in conn.execute(
                    "SELECT new FROM epoch_supersedes WHERE old = ? ORDER BY lsn", (eid,)
                ):
                    superseded_by.setdefault(eid.hex(), []).append(new.hex())
        return [self._epoch_row(lsn, eid, rec, superseded_by) for lsn, eid, rec in rows]

    @staticmethod
    def _epoch_row(
        lsn: int, eid: bytes, blob: bytes, superseded_by: dict[str, list[str]]
    ) -> EpochRow:
        e = _EPOCH_DECODER.decode(blob)
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

    def trust(self, agent_id: str, now: float) -> float:
        current = self._trust.get(agent_id)
        if current is None:
            return TRUST_INITIAL
        return relaxed_trust(current[0], current[1], now)

    def trust_row(self, agent_id: str) -> TrustRow | None:
        with self._reading("get") as conn:
            row = conn.execute(
                "SELECT score, updated_at, outcomes FROM trust WHERE agent = ?",
                (bytes.fromhex(agent_id),),
            ).fetchone()
        return None if row is None else TrustRow(agent_id, row[0], row[1], row[2])

    def agent_counts(self, agent_id: str) -> dict[str, int]:
        agent = bytes.fromhex(agent_id)
        with self._reading("get") as conn:
            signed = scalar(conn, "SELECT count(*) FROM signatures WHERE agent = ?", (agent,))
            authored = scalar(
                conn,
                "SELECT count(*) FROM signatures WHERE agent = ? AND lsn = assertion_lsn",
                (agent,),
            )
            votes = scalar(conn, "SELECT count(*) FROM votes WHERE agent = ?", (agent,))
        return {"assertions": authored, "cosignatures": signed - authored, "votes": votes}

    def changes(self, after: int, limit: int) -> list[ChangeRow]:
        with self._reading("feed") as conn:
            return [
                ChangeRow(lsn, kind, ref.hex(), at)
                for lsn, kind, ref, at in conn.execute(
                    "SELECT lsn, kind, ref, committed_at FROM changes WHERE lsn > ?"
                    " ORDER BY lsn LIMIT ?",
                    (after, limit),
                )
            ]

    def record_blob(self, kind: int, ref: str, lsn: int) -> bytes | None:
        """The stored msgpack of the record a change row points at."""
        sql = {
            RecordKind.ASSERTION: "SELECT record FROM assertions WHERE lsn = ?",
            RecordKind.VOTE: "SELECT record FROM votes WHERE lsn = ?",
            RecordKind.EPOCH: "SELECT record FROM epochs WHERE lsn = ?",
            RecordKind.SUPERSESSION: "SELECT record FROM supersessions WHERE lsn = ?",
            RecordKind.SOURCE: "SELECT record FROM sources WHERE lsn = ?",
        }.get(RecordKind(kind), "SELECT record FROM changes WHERE lsn = ?")
        with self._reading("feed") as conn:
            row = conn.execute(sql, (lsn,)).fetchone()
        return None if row is None else bytes(row[0])

    def lsn_at(self, at: float) -> int:
        """The last LSN committed at or before ``at`` (transaction time)."""
        with self._reading("query") as conn:
            return int(
                scalar(conn, "SELECT max(lsn) FROM changes WHERE committed_at <= ?", (at,)) or 0
            )

    def state_hash(self, from_lsn: int = 1) -> tuple[int, str]:
        """(last LSN, SHA-256 over every change ``lsn:kind:id`` from ``from_lsn`` in LSN
        order; from a later LSN: the part of history a WAL still holds once archived
        segments were deleted)."""
        digest = hashlib.sha256()
        last = 0
        with self._reading("verify") as conn:
            for lsn, kind, ref in conn.execute(
                "SELECT lsn, kind, ref FROM changes WHERE lsn >= ? ORDER BY lsn", (from_lsn,)
            ):
                digest.update(f"{lsn}:{kind}:{ref.hex()}\n".encode())
                last = lsn
        return last, digest.hexdigest()

    def counts(self) -> dict[str, int]:
        with self._reading("stats") as conn:
            return {
                table: int(scalar(conn, f"SELECT count(*) FROM {table}"))
                for table in ("assertions", "signatures", "votes", "epochs", "sources")
            }

    def assertion_count(self) -> int:
        with self._reading("stats") as conn:
            return int(scalar(conn, "SELECT count(*) FROM assertions"))

    def disk_bytes(self) -> int:
        total = 0
        for path in (self.path, self.audit_path):
            for suffix in ("", "-wal", "-shm"):
                candidate = path.with_name(path.name + suffix)
                if candidate.exists():
                    total += candidate.stat().st_size
        return total

    # -- materialized views ----------------------------------------------------------

    def put_views(self, views: Sequence[tuple[str, str, int, float, bytes]]) -> None:
        """Store default-lens results: (subject, predicate, lsn, computed_at, result)."""
        try:
            with self._write_lock, self._writer:
                self._writer.executemany(
                    "INSERT OR REPLACE INTO views VALUES (?, ?, ?, ?, ?)", views
                )
        except apsw.Error as exc:
            raise _translate(exc, "views") from exc

    def view(self, subject: str, predicate: str) -> tuple[int, float, bytes] | None:
        with self._reading("view") as conn:
            row = conn.execute(
                "SELECT lsn, computed_at, result FROM views WHERE subject = ? AND predicate = ?",
                (subject, predicate),
            ).fetchone()
        return None if row is None else (row[0], row[1], bytes(row[2]))
