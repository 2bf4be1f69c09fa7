"""The write path: one batch transaction under the lock of the LSN row.

``Batch`` is the ``SharedBatch`` of ``store/protocol.py``: it holds one connection in
an open transaction that locked ``stemedb_lsn`` (``FOR UPDATE``), answers the lookups
of the commit-time checks on that connection, and inserts records the way the embedded
store's ``BatchApplier`` does (same rows, same rules: first retraction, first
supersession, first ``replace`` epoch win; the invalidation cascade over ``parent``).
Assertions without a source or parent, the common case, are collected and sent with
binary ``COPY`` (three tables), the others after their lookups.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import psycopg

from stemedb.errors import StorageError
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
from stemedb.store.postgres.connection import Conn, translate_error
from stemedb.store.postgres.lookups import Lookups
from stemedb.store.postgres.quarantine import apply_quarantine, apply_review
from stemedb.store.postgres.rows import AssertionRows, change_row, copy_rows
from stemedb.store.postgres.search import index_batch, reset_index
from stemedb.store.protocol import StoreDelta
from stemedb.store.rows import ChangeRow, SourceRow
from stemedb.store.sqlite.apply import DERIVED_TABLES, KINDS_WITH_TABLE
from stemedb.store.sqlite.blobs import RECORD_ENCODER
from stemedb.store.trust import TRUST_INITIAL, apply_outcome

LOCK_LSN_ROW: Final = "SELECT last_lsn, last_committed_at FROM stemedb_lsn WHERE id = 1 FOR UPDATE"
NOTIFY_CHANNEL: Final = "stemedb_commit"
T = TypeVar("T")


def sqlite_total(values: Sequence[float]) -> float:
    """``total()`` as SQLite computes it (Kahan-Babuska-Neumaier), so the stored
    ``vote_weight`` is the embedded store's to the last bit."""
    total = 0.0
    error = 0.0
    for value in values:
        t = total + value
        if abs(total) > abs(value):
            error += (total - t) + value
        else:
            error += (value - t) + total
        total = t
    return total + error


class Batch:
    """One open batch transaction (``SharedBatch``); made by ``PostgresStore.batch``."""

    def __init__(
        self, conn: Conn, lookups: Lookups, last_lsn: int, last_committed_at: float
    ) -> None:
        self._conn = conn
        self._lookups = lookups
        self._last_lsn = last_lsn
        self._last_committed_at = last_committed_at
        self._applied = False
        self._broken = False
        self.touched: set[SubjectPredicate] = set()
        self.trust: dict[str, tuple[float, float]] = {}
        self.retracted: dict[str, int] = {}
        self.epochs: dict[str, int] = {}
        self.drop_views: set[SubjectPredicate] = set()

    @property
    def last_lsn(self) -> int:
        return self._last_lsn

    @property
    def last_committed_at(self) -> float:
        return self._last_committed_at

    @property
    def applied(self) -> bool:
        return self._applied

    def delta(self) -> StoreDelta:
        return StoreDelta(self._last_lsn, self.touched, self.trust, self.retracted, self.epochs)

    # -- CommitLookups, on the transaction's connection -----------------------------

    def assertion_lsns(self, ids: Sequence[str]) -> dict[str, int]:
        return self._run("lookup", lambda: self._lookups.assertion_lsns(self._conn, ids))

    def record_lsn(self, kind: RecordKind, record_id: str) -> int | None:
        return self._run("lookup", lambda: self._lookups.record_lsn(self._conn, kind, record_id))

    def cosignature_lsn(self, assertion_id: str, agent_id: str) -> int | None:
        return self._run(
            "lookup", lambda: self._lookups.cosignature_lsn(self._conn, assertion_id, agent_id)
        )

    def source(self, source_hash: str, *, with_content: bool = False) -> SourceRow | None:
        return self._run(
            "lookup", lambda: self._lookups.source(self._conn, source_hash, with_content)
        )

    def changes(self, after: int, limit: int) -> list[ChangeRow]:
        return self._run("lookup", lambda: self._lookups.changes(self._conn, after, limit))

    def _run(self, operation: str, fn: Callable[[], T]) -> T:
        if self._broken:
            raise StorageError(
                "the batch transaction failed; roll it back", code="batch_failed", retryable=True
            )
        try:
            return fn()
        except psycopg.Error as exc:
            self._broken = True
            raise translate_error(exc, operation) from exc

    # -- apply -------------------------------------------------------------------------

    def apply(self, entries: Sequence[Entry], *, drop_views: bool = False) -> set[SubjectPredicate]:
        if entries:
            self._check_order(entries)
        return self.apply_history(entries, drop_views=drop_views)

    def apply_history(
        self, entries: Sequence[Entry], *, drop_views: bool = False
    ) -> set[SubjectPredicate]:
        """``apply`` without the order check: a history as the embedded store takes it
        (``Store.apply``); the LSN row is set to the last entry's LSN, an LSN already
        stored fails the batch."""
        if not entries:
            return set()
        touched: set[SubjectPredicate] = set()
        self._run("apply", lambda: self._apply(entries, touched))
        self._last_lsn = entries[-1].lsn
        self._last_committed_at = max(self._last_committed_at, entries[-1].committed_at)
        self._applied = True
        self.touched |= touched
        if drop_views:
            self.drop_views |= touched
        return touched

    def _check_order(self, entries: Sequence[Entry]) -> None:
        previous = self._last_lsn
        at = self._last_committed_at
        for entry in entries:
            if entry.lsn <= previous or entry.committed_at < at:
                raise StorageError(
                    f"entry at LSN {entry.lsn} (committed_at {entry.committed_at}) does not"
                    f" follow LSN {previous} (committed_at {at}): the LSNs of a batch must"
                    " increase from the database's last LSN, commit times must not decrease",
                    code="lsn_out_of_order",
                    retryable=False,
                )
            previous = entry.lsn
            at = entry.committed_at

    def _apply(self, entries: Sequence[Entry], touched: set[SubjectPredicate]) -> None:
        rows = AssertionRows()
        cur = self._conn.cursor()
        for entry in entries:
            record = entry.record
            if type(record) is Assertion and not record.source_hash and not record.parent:
                touched.add((record.subject, record.predicate))
                rows.add(entry, record, record.source_class)
                continue
            copy_rows(cur, rows)  # later records may look earlier ones up
            self._record(cur, entry, touched)
        copy_rows(cur, rows)
        index_batch(self._conn, entries[0].lsn, entries[-1].lsn)

    def finish(self) -> None:
        """Before COMMIT: drop views if asked, bump the LSN row, queue the notification."""
        if not self.applied:
            return

        def finish() -> None:
            cur = self._conn.cursor()
            if self.drop_views:
                cur.executemany(
                    "DELETE FROM views WHERE subject = %s AND predicate = %s",
                    list(self.drop_views),
                )
            cur.execute(
                "UPDATE stemedb_lsn SET last_lsn = %s, last_committed_at = %s WHERE id = 1",
                (self._last_lsn, self._last_committed_at),
            )
            cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(self._last_lsn)))

        self._run("commit", finish)

    # -- one record that needs lookups ---------------------------------------------------

    def _record(
        self, cur: psycopg.Cursor[Any], entry: Entry, touched: set[SubjectPredicate]
    ) -> None:
        record = entry.record
        ref = bytes.fromhex(entry.record_id)
        lsn = entry.lsn
        if isinstance(record, Assertion):
            touched.add((record.subject, record.predicate))
            self._assertion(cur, entry, record)
            return  # its change row is one of its rows
        if isinstance(record, CoSignature):
            self._cosignature(cur, lsn, record, touched)
        elif isinstance(record, Vote):
            self._vote(cur, lsn, ref, record, touched)
        elif isinstance(record, Epoch):
            self._epoch(cur, lsn, ref, record, touched)
        elif isinstance(record, Supersession):
            self._supersession(cur, lsn, ref, record, touched)
        elif isinstance(record, Source):
            self._source(cur, lsn, ref, record, touched)
        elif isinstance(record, Retraction):
            self._retraction(cur, lsn, record, touched)
        elif isinstance(record, TrustOutcome):
            self._trust_outcome(cur, record, entry.committed_at)
        elif isinstance(record, Quarantine):
            apply_quarantine(cur, lsn, record, entry.committed_at, touched)
        elif isinstance(record, QuarantineReview):
            apply_review(cur, lsn, record, touched)
        own_table = entry.kind in KINDS_WITH_TABLE
        cur.execute(
            "INSERT INTO changes VALUES (%s, %s, %s, %s, %s)",
            change_row(entry, None if own_table else RECORD_ENCODER.encode(record)),
        )

    def _assertion(self, cur: psycopg.Cursor[Any], entry: Entry, a: Assertion) -> None:
        source = bytes.fromhex(a.source_hash) if a.source_hash else None
        source_class = a.source_class
        tainted: bytes | None = None
        if source is not None:
            row = cur.execute(
                "SELECT source_class, retraction_lsn FROM sources WHERE source_hash = %s",
                (source,),
            ).fetchone()
            if row is not None:
                source_class = source_class or row[0]
                if row[1] is not None:
                    tainted = source
        parent = bytes.fromhex(a.parent) if a.parent else None
        if tainted is None and parent is not None:
            row = cur.execute(
                "SELECT tainted_by FROM assertions WHERE id = %s", (parent,)
            ).fetchone()
            if row is not None:
                tainted = row[0]
        rows = AssertionRows()
        rows.add(entry, a, source_class, source, parent, tainted)
        copy_rows(cur, rows)

    def _cosignature(
        self, cur: psycopg.Cursor[Any], lsn: int, c: CoSignature, touched: set[SubjectPredicate]
    ) -> None:
        row = cur.execute(
            "SELECT lsn, subject, predicate FROM assertions WHERE id = %s",
            (bytes.fromhex(c.assertion_id),),
        ).fetchone()
        if row is None:
            return
        target, subject, predicate = row
        agent = bytes.fromhex(c.signature.agent_id)
        changed = cur.execute(
            "INSERT INTO signatures VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
            (target, agent, bytes.fromhex(c.signature.signature), c.signature.signed_at, lsn),
        ).fetchone()
        if changed:
            cur.execute(
                "UPDATE assertions SET signers = signers || %s WHERE lsn = %s", (agent, target)
            )
            touched.add((subject, predicate))

    def _vote(
        self,
        cur: psycopg.Cursor[Any],
        lsn: int,
        ref: bytes,
        v: Vote,
        touched: set[SubjectPredicate],
    ) -> None:
        row = cur.execute(
            "SELECT lsn, subject, predicate FROM assertions WHERE id = %s",
            (bytes.fromhex(v.assertion_id),),
        ).fetchone()
        if row is None:
            return
        target, subject, predicate = row
        agent = bytes.fromhex(v.signature.agent_id)
        cur.execute(
            "INSERT INTO votes VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (lsn, ref, target, agent, v.weight, v.timestamp, RECORD_ENCODER.encode(v)),
        )
        cur.execute(
            "INSERT INTO votes_latest VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (assertion_lsn, agent) DO UPDATE SET weight = excluded.weight,"
            " timestamp = excluded.timestamp, lsn = excluded.lsn"
            " WHERE excluded.timestamp >= votes_latest.timestamp",
            (target, agent, v.weight, v.timestamp, lsn),
        )
        weights = [
            float(w)
            for (w,) in cur.execute(
                "SELECT weight FROM votes_latest WHERE assertion_lsn = %s ORDER BY agent",
                (target,),
            )
        ]
        cur.execute(
            "UPDATE assertions SET vote_weight = %s WHERE lsn = %s",
            (sqlite_total(weights), target),
        )
        touched.add((subject, predicate))

    def _epoch(
        self,
        cur: psycopg.Cursor[Any],
        lsn: int,
        ref: bytes,
        e: Epoch,
        touched: set[SubjectPredicate],
    ) -> None:
        cur.execute(
            "INSERT INTO epochs VALUES (%s, %s, %s, %s, %s, %s)",
            (lsn, ref, e.name, e.kind, e.timestamp, RECORD_ENCODER.encode(e)),
        )
        for old in e.supersedes:
            cur.execute(
                "INSERT INTO epoch_supersedes VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (bytes.fromhex(old), ref, lsn),
            )
            if e.kind == "replace":
                self.epochs.setdefault(old, lsn)
                _touch_keys_where(cur, touched, "epoch = %s", bytes.fromhex(old))

    def _supersession(
        self,
        cur: psycopg.Cursor[Any],
        lsn: int,
        ref: bytes,
        s: Supersession,
        touched: set[SubjectPredicate],
    ) -> None:
        old = bytes.fromhex(s.old)
        cur.execute(
            "INSERT INTO supersessions VALUES (%s, %s, %s, %s, %s)",
            (lsn, ref, old, bytes.fromhex(s.new), RECORD_ENCODER.encode(s)),
        )
        cur.execute(
            "UPDATE assertions SET superseded_lsn = %s WHERE id = %s AND superseded_lsn IS NULL",
            (lsn, old),
        )
        _touch_keys_where(cur, touched, "id = %s", old)

    def _source(
        self,
        cur: psycopg.Cursor[Any],
        lsn: int,
        ref: bytes,
        s: Source,
        touched: set[SubjectPredicate],
    ) -> None:
        source = bytes.fromhex(s.source_hash)
        cur.execute(
            "INSERT INTO sources VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, NULL, %s)",
            (
                source,
                lsn,
                ref,
                s.uri,
                s.title,
                s.source_class,
                s.published_at,
                s.timestamp,
                s.content is not None,
                RECORD_ENCODER.encode(s),
            ),
        )
        if s.source_class is not None:
            cur.execute(
                "UPDATE assertions SET source_class = %s"
                " WHERE source_hash = %s AND source_class_raw IS NULL",
                (s.source_class, source),
            )
            _touch_keys_where(cur, touched, "source_hash = %s", source)

    def _retraction(
        self, cur: psycopg.Cursor[Any], lsn: int, r: Retraction, touched: set[SubjectPredicate]
    ) -> None:
        source = bytes.fromhex(r.source_hash)
        first = cur.execute(
            "UPDATE sources SET retraction_lsn = %s, retracted_reason = %s"
            " WHERE source_hash = %s AND retraction_lsn IS NULL RETURNING 1",
            (lsn, r.reason, source),
        ).fetchone()
        if first:
            self.retracted.setdefault(r.source_hash, lsn)
        # The invalidation cascade: citing assertions and their descendants via `parent`.
        rows = cur.execute(
            "WITH RECURSIVE tainted(id) AS ("
            " SELECT id FROM assertions WHERE source_hash = %s"
            " UNION SELECT a.id FROM assertions a JOIN tainted t ON a.parent = t.id)"
            " UPDATE assertions SET tainted_by = %s WHERE id IN (SELECT id FROM tainted)"
            " AND tainted_by IS NULL RETURNING subject, predicate",
            (source, source),
        ).fetchall()
        touched.update((subject, predicate) for subject, predicate in rows)

    def _trust_outcome(
        self, cur: psycopg.Cursor[Any], t: TrustOutcome, committed_at: float
    ) -> None:
        agent = bytes.fromhex(t.agent_id)
        current = self.trust.get(t.agent_id)
        if current is None:
            row = cur.execute(
                "SELECT score, updated_at FROM trust WHERE agent = %s", (agent,)
            ).fetchone()
            current = (row[0], row[1]) if row is not None else None
        score, updated = current if current else (TRUST_INITIAL, committed_at)
        at = max(float(t.timestamp), updated)
        new_score = apply_outcome(score, updated, t.accurate, at)
        cur.execute(
            "INSERT INTO trust VALUES (%s, %s, %s, 1) ON CONFLICT (agent) DO UPDATE SET"
            " score = excluded.score, updated_at = excluded.updated_at,"
            " outcomes = trust.outcomes + 1",
            (agent, new_score, at),
        )
        self.trust[t.agent_id] = (new_score, at)


def _touch_keys_where(
    cur: psycopg.Cursor[Any], touched: set[SubjectPredicate], where: str, arg: object
) -> None:
    sql = f"SELECT DISTINCT subject, predicate FROM assertions WHERE {where}"
    touched.update((s, p) for s, p in cur.execute(sql, (arg,)))


def reset(conn: Conn) -> None:
    """Drop every derived row and set the LSN row to 0 (under its lock)."""
    with conn.transaction():
        conn.execute(LOCK_LSN_ROW)
        conn.execute(f"TRUNCATE {', '.join(DERIVED_TABLES)}")
        reset_index(conn)
        conn.execute("UPDATE stemedb_lsn SET last_lsn = 0, last_committed_at = 0.0 WHERE id = 1")
