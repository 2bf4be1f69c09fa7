"""The store's write path: one batch of WAL entries in one transaction (writer thread)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import apsw

from stemedb.model.kinds import Entry, RecordKind
from stemedb.model.records import (
    DEFAULT_SOURCE_CLASS,
    Assertion,
    CoSignature,
    Epoch,
    Retraction,
    Source,
    Supersession,
    TrustOutcome,
    Vote,
)
from stemedb.store.base import (
    _ENCODER,
    _JSON_ENCODER,
    _KINDS_WITH_TABLE,
    LOOKUP_CHUNK_IDS,
    StoreBase,
    _translate,
    value_key,
)
from stemedb.store.cache import SubjectPredicate
from stemedb.store.protocol import StoreDelta
from stemedb.store.trust import TRUST_INITIAL, apply_outcome

_INSERT_ASSERTION: Final = (
    "INSERT INTO assertions (lsn, id, subject, predicate, value_key, confidence,"
    " source_hash, source_class_raw, source_class, epoch, parent, lifecycle, valid_from,"
    " valid_to, timestamp, tainted_by, superseded_lsn, signers, vote_weight, record)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, 0.0, ?)"
)
_INSERT_SIGNATURE: Final = "INSERT INTO signatures VALUES (?, ?, ?, ?, ?)"
_INSERT_CHANGE: Final = "INSERT INTO changes VALUES (?, ?, ?, ?, ?)"


class _PlainAssertionRows:
    """Rows of assertions without a source or parent (nothing to look up), collected
    for ``executemany``: the same rows ``_insert_assertion`` writes, fewer Python calls."""

    __slots__ = ("assertions", "changes", "signatures")

    def __init__(self) -> None:
        self.assertions: list[tuple[Any, ...]] = []
        self.signatures: list[tuple[Any, ...]] = []
        self.changes: list[tuple[Any, ...]] = []

    def add(self, entry: Entry, a: Assertion) -> None:
        lsn = entry.lsn
        ref = bytes.fromhex(entry.record_id)
        if len(a.signatures) == 1:  # the common case, without generator overhead
            sig = a.signatures[0]
            agent = bytes.fromhex(sig.agent_id)
            agents = [agent]
            self.signatures.append((lsn, agent, bytes.fromhex(sig.signature), sig.signed_at, lsn))
        else:
            agents = [bytes.fromhex(s.agent_id) for s in a.signatures]
            self.signatures.extend(
                (lsn, agent, bytes.fromhex(s.signature), s.signed_at, lsn)
                for agent, s in zip(agents, a.signatures, strict=True)
            )
        self.assertions.append(
            (
                lsn, ref, a.subject, a.predicate, value_key(a.object), a.confidence,
                None, a.source_class, a.source_class or DEFAULT_SOURCE_CLASS,
                bytes.fromhex(a.epoch) if a.epoch else None, None, a.lifecycle,
                a.valid_from, a.valid_to, a.timestamp, None, b"".join(agents),
                _ENCODER.encode(a),
            )
        )  # fmt: skip
        self.changes.append((lsn, int(entry.kind), ref, entry.committed_at, None))

    def flush(self, conn: apsw.Connection) -> None:
        if not self.assertions:
            return
        conn.executemany(_INSERT_ASSERTION, self.assertions)
        conn.executemany(_INSERT_SIGNATURE, self.signatures)
        conn.executemany(_INSERT_CHANGE, self.changes)
        self.assertions, self.signatures, self.changes = [], [], []


class StoreWrites(StoreBase):
    # Called with each applied batch's delta, after ``absorb`` (the writer process sends
    # it to the server process, whose store only reads).
    delta_hook: Callable[[StoreDelta], None] | None = None

    # -- write path (group-commit writer thread only) --------------------------------

    def apply(self, entries: Sequence[Entry], *, drop_views: bool = False) -> set[SubjectPredicate]:
        """Apply one batch in one transaction with ``applied_lsn``; return the touched
        (subject, predicate) keys. Entries must be in LSN order. ``drop_views`` deletes
        the materialized views of touched keys (replay, where no one refreshes them)."""
        if not entries:
            return set()
        touched: set[SubjectPredicate] = set()
        trust_updates: dict[str, tuple[float, float]] = {}
        retracted: dict[str, int] = {}
        epochs: dict[str, int] = {}
        conn = self._writer
        plain = _PlainAssertionRows()
        try:
            with self._write_lock, conn:
                for entry in entries:
                    record = entry.record
                    if type(record) is Assertion and not record.source_hash and not record.parent:
                        # The common case needs no lookups: collect its rows and insert
                        # them with executemany (one prepared statement per table).
                        touched.add((record.subject, record.predicate))
                        plain.add(entry, record)
                        continue
                    plain.flush(conn)  # later records may look earlier ones up
                    self._apply_one(conn, entry, touched, trust_updates, retracted, epochs)
                plain.flush(conn)
                if drop_views:
                    conn.executemany(
                        "DELETE FROM views WHERE subject = ? AND predicate = ?", touched
                    )
                conn.execute(
                    "UPDATE meta SET value = ? WHERE key = 'applied_lsn'", (entries[-1].lsn,)
                )
        except apsw.Error as exc:
            raise _translate(exc, "apply") from exc
        delta = StoreDelta(entries[-1].lsn, touched, trust_updates, retracted, epochs)
        self.absorb(delta)
        if self.delta_hook is not None:
            self.delta_hook(delta)
        return touched

    def absorb(self, delta: StoreDelta) -> None:
        """Bring the in-memory state (trust, retractions, replaced epochs, the result
        cache) up to a batch applied to the tables: by ``apply``, or by the writer
        process when this store only reads (``engine.link``)."""
        self._trust.update(delta.trust)
        self._retracted.update(delta.retracted)
        for epoch_id, lsn in delta.epochs.items():
            self._superseded_epochs.setdefault(epoch_id, lsn)
        self.cache.invalidate(delta.touched)

    def _apply_one(
        self,
        conn: apsw.Connection,
        entry: Entry,
        touched: set[SubjectPredicate],
        trust_updates: dict[str, tuple[float, float]],
        retracted: dict[str, int],
        epochs: dict[str, int],
    ) -> None:
        record = entry.record
        ref = bytes.fromhex(entry.record_id)
        lsn = entry.lsn
        if isinstance(record, Assertion):
            touched.add((record.subject, record.predicate))
            self._insert_assertion(conn, lsn, ref, record, retracted)
        elif isinstance(record, CoSignature):
            self._insert_cosignature(conn, lsn, record, touched)
        elif isinstance(record, Vote):
            self._insert_vote(conn, lsn, ref, record, touched)
        elif isinstance(record, Epoch):
            self._insert_epoch(conn, lsn, ref, record, epochs, touched)
        elif isinstance(record, Supersession):
            self._insert_supersession(conn, lsn, ref, record, touched)
        elif isinstance(record, Source):
            self._insert_source(conn, lsn, ref, record, touched)
        elif isinstance(record, Retraction):
            self._insert_retraction(conn, lsn, record, retracted, touched)
        elif isinstance(record, TrustOutcome):
            self._insert_trust_outcome(conn, record, entry.committed_at, trust_updates)
        own_table = entry.kind in _KINDS_WITH_TABLE
        conn.execute(
            _INSERT_CHANGE,
            (
                lsn,
                int(entry.kind),
                ref,
                entry.committed_at,
                None if own_table else _ENCODER.encode(record),
            ),
        )

    def _insert_assertion(
        self,
        conn: apsw.Connection,
        lsn: int,
        ref: bytes,
        a: Assertion,
        retracted: dict[str, int],
    ) -> None:
        source = bytes.fromhex(a.source_hash) if a.source_hash else None
        source_class = a.source_class
        tainted: bytes | None = None
        if source is not None:
            row = conn.execute(
                "SELECT source_class, retraction_lsn FROM sources WHERE source_hash = ?", (source,)
            ).fetchone()
            if row is not None:
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
        signers = b"".join(bytes.fromhex(s.agent_id) for s in a.signatures)
        conn.execute(
            _INSERT_ASSERTION,
            (
                lsn,
                ref,
                a.subject,
                a.predicate,
                value_key(a.object),
                a.confidence,
                source,
                a.source_class,
                source_class or DEFAULT_SOURCE_CLASS,
                bytes.fromhex(a.epoch) if a.epoch else None,
                parent,
                a.lifecycle,
                a.valid_from,
                a.valid_to,
                a.timestamp,
                tainted,
                signers,
                _ENCODER.encode(a),
            ),
        )
        conn.executemany(
            _INSERT_SIGNATURE,
            [
                (lsn, bytes.fromhex(s.agent_id), bytes.fromhex(s.signature), s.signed_at, lsn)
                for s in a.signatures
            ],
        )

    def _insert_cosignature(
        self, conn: apsw.Connection, lsn: int, c: CoSignature, touched: set[SubjectPredicate]
    ) -> None:
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
            touched.add((subject, predicate))

    def _insert_vote(
        self,
        conn: apsw.Connection,
        lsn: int,
        ref: bytes,
        v: Vote,
        touched: set[SubjectPredicate],
    ) -> None:
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
            (lsn, ref, target, agent, v.weight, v.timestamp, _ENCODER.encode(v)),
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
        touched.add((subject, predicate))

    def _insert_epoch(
        self,
        conn: apsw.Connection,
        lsn: int,
        ref: bytes,
        e: Epoch,
        epochs: dict[str, int],
        touched: set[SubjectPredicate],
    ) -> None:
        conn.execute(
            "INSERT INTO epochs VALUES (?, ?, ?, ?, ?, ?)",
            (lsn, ref, e.name, e.kind, e.timestamp, _ENCODER.encode(e)),
        )
        for old in e.supersedes:
            conn.execute(
                "INSERT OR IGNORE INTO epoch_supersedes VALUES (?, ?, ?)",
                (bytes.fromhex(old), ref, lsn),
            )
            if e.kind == "replace":
                epochs.setdefault(old, lsn)
                touched.update(self._keys_where(conn, "epoch = ?", bytes.fromhex(old)))

    def _insert_supersession(
        self,
        conn: apsw.Connection,
        lsn: int,
        ref: bytes,
        s: Supersession,
        touched: set[SubjectPredicate],
    ) -> None:
        old = bytes.fromhex(s.old)
        conn.execute(
            "INSERT INTO supersessions VALUES (?, ?, ?, ?, ?)",
            (lsn, ref, old, bytes.fromhex(s.new), _ENCODER.encode(s)),
        )
        conn.execute(
            "UPDATE assertions SET superseded_lsn = ? WHERE id = ? AND superseded_lsn IS NULL",
            (lsn, old),
        )
        touched.update(self._keys_where(conn, "id = ?", old))

    def _insert_source(
        self,
        conn: apsw.Connection,
        lsn: int,
        ref: bytes,
        s: Source,
        touched: set[SubjectPredicate],
    ) -> None:
        source = bytes.fromhex(s.source_hash)
        conn.execute(
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
                _ENCODER.encode(s),
            ),
        )
        if s.source_class is not None:
            conn.execute(
                "UPDATE assertions SET source_class = ?"
                " WHERE source_hash = ? AND source_class_raw IS NULL",
                (s.source_class, source),
            )
            touched.update(self._keys_where(conn, "source_hash = ?", source))

    def _insert_retraction(
        self,
        conn: apsw.Connection,
        lsn: int,
        r: Retraction,
        retracted: dict[str, int],
        touched: set[SubjectPredicate],
    ) -> None:
        source = bytes.fromhex(r.source_hash)
        conn.execute(
            "UPDATE sources SET retraction_lsn = ?, retracted_reason = ?"
            " WHERE source_hash = ? AND retraction_lsn IS NULL",
            (lsn, r.reason, source),
        )
        retracted.setdefault(r.source_hash, lsn)
        # The invalidation cascade: citing assertions and their descendants via `parent`.
        rows: list[Any] = conn.execute(
            "WITH RECURSIVE tainted(id) AS ("
            " SELECT id FROM assertions WHERE source_hash = ?"
            " UNION SELECT a.id FROM assertions a JOIN tainted t ON a.parent = t.id)"
            " UPDATE assertions SET tainted_by = ? WHERE id IN (SELECT id FROM tainted)"
            " AND tainted_by IS NULL RETURNING subject, predicate",
            (source, source),
        ).fetchall()
        touched.update((subject, predicate) for subject, predicate in rows)

    def _insert_trust_outcome(
        self,
        conn: apsw.Connection,
        t: TrustOutcome,
        committed_at: float,
        trust_updates: dict[str, tuple[float, float]],
    ) -> None:
        current = trust_updates.get(t.agent_id) or self._trust.get(t.agent_id)
        score, updated = current if current else (TRUST_INITIAL, committed_at)
        at = max(float(t.timestamp), updated)
        new_score = apply_outcome(score, updated, t.accurate, at)
        conn.execute(
            "INSERT INTO trust VALUES (?, ?, ?, 1) ON CONFLICT (agent) DO UPDATE SET"
            " score = excluded.score, updated_at = excluded.updated_at, outcomes = outcomes + 1",
            (bytes.fromhex(t.agent_id), new_score, at),
        )
        trust_updates[t.agent_id] = (new_score, at)

    @staticmethod
    def _keys_where(conn: apsw.Connection, where: str, arg: object) -> set[SubjectPredicate]:
        sql = f"SELECT DISTINCT subject, predicate FROM assertions WHERE {where}"
        return {(s, p) for s, p in conn.execute(sql, (arg,))}

    def reset(self) -> None:
        """Drop every derived row (for ``store rebuild``)."""
        tables = [
            "changes", "assertions", "signatures", "votes", "votes_latest", "epochs",
            "epoch_supersedes", "supersessions", "sources", "trust", "views",
        ]  # fmt: skip
        with self._write_lock, self._writer:
            for table in tables:
                self._writer.execute(f"DELETE FROM {table}")
            self._writer.execute("UPDATE meta SET value = 0 WHERE key = 'applied_lsn'")
        self._load_memory_state()
        self.cache.clear()

    # -- lookups used by the writer for semantic checks --------------------------------

    def assertion_lsns(self, ids: Sequence[str]) -> dict[str, int]:
        """The LSN of each of ``ids`` that is stored (one query per chunk of ids)."""
        found: dict[str, int] = {}
        conn = self.reader()
        for start in range(0, len(ids), LOOKUP_CHUNK_IDS):
            chunk = ids[start : start + LOOKUP_CHUNK_IDS]
            if len(chunk) == 1:
                rows: Any = conn.execute(
                    "SELECT id, lsn FROM assertions WHERE id = ?", (bytes.fromhex(chunk[0]),)
                )
            else:
                rows = conn.execute(
                    "SELECT id, lsn FROM assertions"
                    " WHERE id IN (SELECT unhex(value) FROM json_each(?))",
                    (_JSON_ENCODER.encode(chunk).decode(),),
                )
            for blob, lsn in rows:
                found[blob.hex()] = lsn
        return found

    def record_lsn(self, kind: RecordKind, record_id: str) -> int | None:
        """The LSN of an already stored vote, epoch, supersession or source registration."""
        table = {
            RecordKind.ASSERTION: ("assertions", "id"),
            RecordKind.VOTE: ("votes", "id"),
            RecordKind.EPOCH: ("epochs", "id"),
            RecordKind.SUPERSESSION: ("supersessions", "id"),
            RecordKind.SOURCE: ("sources", "source_hash"),
        }[kind]
        with self._reading("lookup") as conn:
            row = conn.execute(
                f"SELECT lsn FROM {table[0]} WHERE {table[1]} = ?", (bytes.fromhex(record_id),)
            ).fetchone()
        return None if row is None else int(row[0])

    def cosignature_lsn(self, assertion_id: str, agent_id: str) -> int | None:
        with self._reading("lookup") as conn:
            row = conn.execute(
                "SELECT s.lsn FROM signatures s JOIN assertions a ON a.lsn = s.assertion_lsn"
                " WHERE a.id = ? AND s.agent = ?",
                (bytes.fromhex(assertion_id), bytes.fromhex(agent_id)),
            ).fetchone()
        return None if row is None else int(row[0])
