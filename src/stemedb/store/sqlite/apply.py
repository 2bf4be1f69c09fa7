"""The write path: one batch of WAL entries in one transaction (writer thread only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import apsw

from stemedb.model.kinds import Entry, RecordKind
from stemedb.model.records import (
    Assertion,
    CoSignature,
    Epoch,
    Quarantine,
    QuarantineReview,
    Retraction,
    Source,
    Supersession,
    TrustOutcome,
    Vote,
)
from stemedb.store.cache import SubjectPredicate
from stemedb.store.protocol import StoreDelta
from stemedb.store.sqlite.assertion_rows import INSERT_CHANGE, AssertionRows
from stemedb.store.sqlite.blobs import RECORD_ENCODER
from stemedb.store.sqlite.database import Database, translate_error
from stemedb.store.sqlite.memory import MemoryState
from stemedb.store.sqlite.search_rows import SearchRows, index_source, indexed_text, reset_index
from stemedb.store.trust import TRUST_INITIAL, apply_outcome

KINDS_WITH_TABLE: Final = frozenset(
    {
        RecordKind.ASSERTION,
        RecordKind.VOTE,
        RecordKind.EPOCH,
        RecordKind.SUPERSESSION,
        RecordKind.SOURCE,
    }
)
DERIVED_TABLES: Final = (
    "changes",
    "assertions",
    "signatures",
    "votes",
    "votes_latest",
    "epochs",
    "epoch_supersedes",
    "supersessions",
    "sources",
    "trust",
    "views",
    "quarantine",
)


class BatchApplier:
    """Applies batches on the writer connection and resets the tables."""

    def __init__(self, db: Database, memory: MemoryState) -> None:
        self._db = db
        self._memory = memory

    def apply(self, entries: Sequence[Entry], *, drop_views: bool) -> StoreDelta | None:
        """Apply ``entries`` (in LSN order) in one transaction with ``applied_lsn``;
        the delta of what changed, or None for no entries. ``drop_views`` deletes the
        materialized views of touched keys (replay, where no one refreshes them)."""
        if not entries:
            return None
        conn = self._db.writer
        batch = _Batch(conn, self._memory)
        touched = batch.touched
        rows = batch.rows
        search = batch.search
        try:
            with self._db.write_lock, conn:
                for entry in entries:
                    record = entry.record
                    if type(record) is Assertion and not record.source_hash and not record.parent:
                        # The common case needs no lookups: collect its rows and insert
                        # them with executemany (one prepared statement per table).
                        touched.add((record.subject, record.predicate))
                        rows.add(entry, record, record.source_class)
                        search.add(record.subject, record.predicate, indexed_text(record))
                        continue
                    batch.flush()  # later records may look earlier ones up
                    batch.apply(entry)
                batch.flush()
                if drop_views:
                    conn.executemany(
                        "DELETE FROM views WHERE subject = ? AND predicate = ?", touched
                    )
                conn.execute(
                    "UPDATE meta SET value = ? WHERE key = 'applied_lsn'", (entries[-1].lsn,)
                )
        except apsw.Error as exc:
            raise translate_error(exc, "apply") from exc
        return StoreDelta(entries[-1].lsn, touched, batch.trust, batch.retracted, batch.epochs)

    def reset(self) -> None:
        """Drop every derived row and set ``applied_lsn`` to 0."""
        conn = self._db.writer
        with self._db.write_lock, conn:
            for table in DERIVED_TABLES:
                conn.execute(f"DELETE FROM {table}")
            reset_index(conn)
            conn.execute("UPDATE meta SET value = 0 WHERE key = 'applied_lsn'")


class _Batch:
    """One batch being applied: its rows so far and what it changed besides them."""

    __slots__ = ("conn", "epochs", "memory", "retracted", "rows", "search", "touched", "trust")

    def __init__(self, conn: apsw.Connection, memory: MemoryState) -> None:
        self.conn = conn
        self.memory = memory
        self.rows = AssertionRows()
        self.search = SearchRows()
        self.touched: set[SubjectPredicate] = set()
        self.trust: dict[str, tuple[float, float]] = {}
        self.retracted: dict[str, int] = {}
        self.epochs: dict[str, int] = {}

    def flush(self) -> None:
        """Insert the collected rows (before anything looks them up)."""
        self.rows.flush(self.conn)
        self.search.flush(self.conn)

    def apply(self, entry: Entry) -> None:
        """One record that needs lookups (``flush`` first)."""
        record = entry.record
        ref = bytes.fromhex(entry.record_id)
        lsn = entry.lsn
        if isinstance(record, Assertion):
            self.touched.add((record.subject, record.predicate))
            self._assertion(entry, record)
            return  # its change row is one of its rows
        if isinstance(record, CoSignature):
            self._cosignature(lsn, record)
        elif isinstance(record, Vote):
            self._vote(lsn, ref, record)
        elif isinstance(record, Epoch):
            self._epoch(lsn, ref, record)
        elif isinstance(record, Supersession):
            self._supersession(lsn, ref, record)
        elif isinstance(record, Source):
            self._source(lsn, ref, record)
        elif isinstance(record, Retraction):
            self._retraction(lsn, record)
        elif isinstance(record, TrustOutcome):
            self._trust_outcome(record, entry.committed_at)
        elif isinstance(record, Quarantine):
            self._quarantine(lsn, record, entry.committed_at)
        elif isinstance(record, QuarantineReview):
            self._quarantine_review(lsn, record)
        own_table = entry.kind in KINDS_WITH_TABLE
        self.conn.execute(
            INSERT_CHANGE,
            (
                lsn,
                int(entry.kind),
                ref,
                entry.committed_at,
                None if own_table else RECORD_ENCODER.encode(record),
            ),
        )

    def _assertion(self, entry: Entry, a: Assertion) -> None:
        conn = self.conn
        source = bytes.fromhex(a.source_hash) if a.source_hash else None
        source_class = a.source_class
        tainted: bytes | None = None
        registered = False
        if source is not None:
            row = conn.execute(
                "SELECT source_class, retraction_lsn FROM sources WHERE source_hash = ?", (source,)
            ).fetchone()
            if row is not None:
                registered = True
                source_class = source_class or row[0]
                if row[1] is not None:
                    tainted = source
        parent = bytes.fromhex(a.parent) if a.parent else None
        if tainted is None and parent is not None:
            row = conn.execute(
                "SELECT tainted_by FROM assertions WHERE id = ?", (parent,)
            ).fetchone()
            if row is not None:
                tainted = row[0]
        self.rows.add(entry, a, source_class, source, parent, tainted)
        self.search.add(a.subject, a.predicate, indexed_text(a))
        if registered:
            assert source is not None
            self.search.cite(a.subject, a.predicate, source)

    def _cosignature(self, lsn: int, c: CoSignature) -> None:
        conn = self.conn
        row = conn.execute(
            "SELECT lsn, subject, predicate, signers FROM assertions WHERE id = ?",
            (bytes.fromhex(c.assertion_id),),
        ).fetchone()
        if row is None:
            return
        target, subject, predicate, signers = row
        agent = bytes.fromhex(c.signature.agent_id)
        changed = conn.execute(
            "INSERT OR IGNORE INTO signatures VALUES (?, ?, ?, ?, ?) RETURNING 1",
            (target, agent, bytes.fromhex(c.signature.signature), c.signature.signed_at, lsn),
        ).fetchone()
        if changed:
            conn.execute(
                "UPDATE assertions SET signers = ? WHERE lsn = ?", (bytes(signers) + agent, target)
            )
            self.touched.add((subject, predicate))

    def _vote(self, lsn: int, ref: bytes, v: Vote) -> None:
        conn = self.conn
        row = conn.execute(
            "SELECT lsn, subject, predicate FROM assertions WHERE id = ?",
            (bytes.fromhex(v.assertion_id),),
        ).fetchone()
        if row is None:
            return
        target, subject, predicate = row
        agent = bytes.fromhex(v.signature.agent_id)
        conn.execute(
            "INSERT INTO votes VALUES (?, ?, ?, ?, ?, ?, ?)",
            (lsn, ref, target, agent, v.weight, v.timestamp, RECORD_ENCODER.encode(v)),
        )
        conn.execute(
            "INSERT INTO votes_latest VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (assertion_lsn, agent) DO UPDATE SET weight = excluded.weight,"
            " timestamp = excluded.timestamp, lsn = excluded.lsn"
            " WHERE excluded.timestamp >= votes_latest.timestamp",
            (target, agent, v.weight, v.timestamp, lsn),
        )
        conn.execute(
            "UPDATE assertions SET vote_weight ="
            " (SELECT total(weight) FROM votes_latest WHERE assertion_lsn = ?) WHERE lsn = ?",
            (target, target),
        )
        self.touched.add((subject, predicate))

    def _epoch(self, lsn: int, ref: bytes, e: Epoch) -> None:
        conn = self.conn
        conn.execute(
            "INSERT INTO epochs VALUES (?, ?, ?, ?, ?, ?)",
            (lsn, ref, e.name, e.kind, e.timestamp, RECORD_ENCODER.encode(e)),
        )
        for old in e.supersedes:
            conn.execute(
                "INSERT OR IGNORE INTO epoch_supersedes VALUES (?, ?, ?)",
                (bytes.fromhex(old), ref, lsn),
            )
            if e.kind == "replace":
                self.epochs.setdefault(old, lsn)
                self._touch_keys_where("epoch = ?", bytes.fromhex(old))

    def _supersession(self, lsn: int, ref: bytes, s: Supersession) -> None:
        old = bytes.fromhex(s.old)
        self.conn.execute(
            "INSERT INTO supersessions VALUES (?, ?, ?, ?, ?)",
            (lsn, ref, old, bytes.fromhex(s.new), RECORD_ENCODER.encode(s)),
        )
        self.conn.execute(
            "UPDATE assertions SET superseded_lsn = ? WHERE id = ? AND superseded_lsn IS NULL",
            (lsn, old),
        )
        self._touch_keys_where("id = ?", old)

    def _source(self, lsn: int, ref: bytes, s: Source) -> None:
        source = bytes.fromhex(s.source_hash)
        self.conn.execute(
            "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?)",
            (
                source,
                lsn,
                ref,
                s.uri,
                s.title,
                s.source_class,
                s.published_at,
                s.timestamp,
                int(s.content is not None),
                RECORD_ENCODER.encode(s),
            ),
        )
        index_source(self.conn, source)
        if s.source_class is not None:
            self.conn.execute(
                "UPDATE assertions SET source_class = ?"
                " WHERE source_hash = ? AND source_class_raw IS NULL",
                (s.source_class, source),
            )
            self._touch_keys_where("source_hash = ?", source)

    def _retraction(self, lsn: int, r: Retraction) -> None:
        source = bytes.fromhex(r.source_hash)
        self.conn.execute(
            "UPDATE sources SET retraction_lsn = ?, retracted_reason = ?"
            " WHERE source_hash = ? AND retraction_lsn IS NULL",
            (lsn, r.reason, source),
        )
        self.retracted.setdefault(r.source_hash, lsn)
        # The invalidation cascade: citing assertions and their descendants via `parent`.
        rows: list[Any] = self.conn.execute(
            "WITH RECURSIVE tainted(id) AS ("
            " SELECT id FROM assertions WHERE source_hash = ?"
            " UNION SELECT a.id FROM assertions a JOIN tainted t ON a.parent = t.id)"
            " UPDATE assertions SET tainted_by = ? WHERE id IN (SELECT id FROM tainted)"
            " AND tainted_by IS NULL RETURNING subject, predicate",
            (source, source),
        ).fetchall()
        self.touched.update((subject, predicate) for subject, predicate in rows)

    def _trust_outcome(self, t: TrustOutcome, committed_at: float) -> None:
        current = self.trust.get(t.agent_id) or self.memory.trust.get(t.agent_id)
        score, updated = current if current else (TRUST_INITIAL, committed_at)
        at = max(float(t.timestamp), updated)
        new_score = apply_outcome(score, updated, t.accurate, at)
        self.conn.execute(
            "INSERT INTO trust VALUES (?, ?, ?, 1) ON CONFLICT (agent) DO UPDATE SET"
            " score = excluded.score, updated_at = excluded.updated_at, outcomes = outcomes + 1",
            (bytes.fromhex(t.agent_id), new_score, at),
        )
        self.trust[t.agent_id] = (new_score, at)

    def _quarantine(self, lsn: int, q: Quarantine, committed_at: float) -> None:
        """Hide the assertion from every lens and view until an admin approves it."""
        row = self.conn.execute(
            "UPDATE assertions SET quarantine_lsn = ? WHERE id = ? AND quarantine_lsn IS NULL"
            " RETURNING lsn, subject, predicate, signers",
            (lsn, bytes.fromhex(q.assertion_id)),
        ).fetchone()
        if row is None:  # unknown, or quarantined already: the first decision counts
            return
        target, subject, predicate, signers = row
        self.conn.execute(
            "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?, 'pending', NULL, NULL)",
            (lsn, target, q.reason, q.detail, bytes(signers)[:32], committed_at),
        )
        self.touched.add((subject, predicate))

    def _quarantine_review(self, lsn: int, r: QuarantineReview) -> None:
        """Approve (visible from this LSN on) or reject (hidden for good) a pending one."""
        status = "approved" if r.decision == "approve" else "rejected"
        row = self.conn.execute(
            "UPDATE quarantine SET status = ?, review_lsn = ?, reviewer = ?"
            " WHERE assertion_lsn = (SELECT lsn FROM assertions WHERE id = ?)"
            " AND status = 'pending' RETURNING assertion_lsn",
            (status, lsn, r.reviewer, bytes.fromhex(r.assertion_id)),
        ).fetchone()
        if row is None:
            return
        if status == "approved":
            self.conn.execute("UPDATE assertions SET released_lsn = ? WHERE lsn = ?", (lsn, row[0]))
        self._touch_keys_where("lsn = ?", row[0])

    def _touch_keys_where(self, where: str, arg: object) -> None:
        sql = f"SELECT DISTINCT subject, predicate FROM assertions WHERE {where}"
        self.touched.update((s, p) for s, p in self.conn.execute(sql, (arg,)))
