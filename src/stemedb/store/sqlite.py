"""The embedded store: SQLite through apsw (ARCHITECTURE §5).

One writer connection, used only by the group-commit writer thread, applies whole
batches in one transaction that also records ``applied_lsn``. Readers get one
connection per thread. ``journal_mode=WAL`` and ``synchronous=NORMAL``: the store may
lose its last transactions on power loss; the engine replays the WAL from
``applied_lsn`` on open, so nothing acknowledged is lost.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import apsw
import msgspec

from stemedb.errors import StorageError
from stemedb.model.kinds import Entry, RecordKind
from stemedb.model.records import (
    DEFAULT_SOURCE_CLASS,
    Assertion,
    CoSignature,
    Epoch,
    ObjectValue,
    Retraction,
    Source,
    Supersession,
    TrustOutcome,
    Vote,
)
from stemedb.store.cache import ResultCache, SubjectPredicate
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
from stemedb.store.schema import AUDIT_SCHEMA, SCHEMA, SCHEMA_VERSION
from stemedb.store.trust import TRUST_INITIAL, apply_outcome, relaxed_trust

MIN_SQLITE_VERSION: Final = (3, 51, 3)
STORE_FILE: Final = "store.sqlite"
AUDIT_FILE: Final = "audit.sqlite"
BUSY_TIMEOUT_MS: Final = 5000
AGENT_BYTES: Final = 32

LOOKUP_CHUNK_IDS: Final = 4096

_ENCODER = msgspec.msgpack.Encoder()
_JSON_ENCODER = msgspec.json.Encoder()
_ASSERTION_DECODER = msgspec.msgpack.Decoder(Assertion)
_EPOCH_DECODER = msgspec.msgpack.Decoder(Epoch)
_SUPERSESSION_DECODER = msgspec.msgpack.Decoder(Supersession)
_SOURCE_DECODER = msgspec.msgpack.Decoder(Source)

_KINDS_WITH_TABLE: Final = frozenset(
    {
        RecordKind.ASSERTION,
        RecordKind.VOTE,
        RecordKind.EPOCH,
        RecordKind.SUPERSESSION,
        RecordKind.SOURCE,
    }
)
_CANDIDATE_COLUMNS: Final = (
    "a.lsn, a.id, a.subject, a.predicate, a.value_key, a.confidence, a.timestamp,"
    " a.source_class, a.source_hash, a.epoch, a.lifecycle, a.valid_from, a.valid_to,"
    " a.tainted_by, a.superseded_lsn, a.signers, a.vote_weight"
)


def check_sqlite_version(version: str | None = None) -> None:
    """Refuse SQLite older than 3.51.3 (the WAL-reset corruption fix)."""
    text = version or apsw.sqlite_lib_version()
    parts = tuple(int(p) for p in text.split(".")[:3])
    if parts < MIN_SQLITE_VERSION:
        wanted = ".".join(map(str, MIN_SQLITE_VERSION))
        raise StorageError(
            f"SQLite {text} is too old: StemeDB needs {wanted} or newer (WAL-reset bug)",
            code="sqlite_too_old",
            retryable=False,
        )


def value_key(obj: ObjectValue) -> str:
    """A canonical key of an object value: equal keys mean the claims agree."""
    value = obj.value
    if obj.type == "number":
        return f"number:{float(value)!r}"  # type: ignore[arg-type]
    if obj.type == "boolean":
        return "boolean:true" if value else "boolean:false"
    return f"{obj.type}:{value}"


def _hex(blob: bytes | None) -> str | None:
    return None if blob is None else blob.hex()


def _agents(blob: bytes) -> tuple[str, ...]:
    return tuple(blob[i : i + AGENT_BYTES].hex() for i in range(0, len(blob), AGENT_BYTES))


def _translate(exc: apsw.Error, operation: str) -> StorageError:
    if isinstance(exc, apsw.FullError):
        return StorageError(f"store {operation} failed: disk full", code="disk_full")
    if isinstance(exc, apsw.BusyError | apsw.LockedError):
        return StorageError(f"store {operation} failed: database busy", code="store_busy")
    return StorageError(f"store {operation} failed: {exc}", code="store_error")


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


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (code-point
    order, which is SQLite's BINARY order of UTF-8), or None when there is none.

    ``prefix + U+10FFFF`` is not it: ``prefix + U+10FFFF + "z"`` sorts above it."""
    chars = list(prefix)
    while chars:
        point = ord(chars.pop()) + 1
        if point <= 0x10FFFF:
            if 0xD800 <= point <= 0xDFFF:  # surrogates are not UTF-8 text
                point = 0xE000
            return "".join(chars) + chr(point)
    return None


class SqliteStore:
    """Indexes and derived state of one node, in ``<data_dir>/store.sqlite``."""

    backend: Final = "sqlite"

    def __init__(self, data_dir: Path, *, cache_bytes: int = 64 * 1024 * 1024) -> None:
        check_sqlite_version()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / STORE_FILE
        self.audit_path = data_dir / AUDIT_FILE
        self._local = threading.local()
        # The writer connection is shared by the group-commit writer, the view refresher
        # and applied_lsn() callers; apsw refuses concurrent use from two threads.
        self._write_lock = threading.RLock()
        self._closed = False
        try:
            self._writer = self._connect(self.path)
            with self._writer:
                self._writer.execute(SCHEMA)
                self._writer.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?), ('applied_lsn', 0)",
                    (SCHEMA_VERSION,),
                )
            self._audit_writer = self._connect(self.audit_path)
            with self._audit_writer:
                self._audit_writer.execute(AUDIT_SCHEMA)
        except apsw.Error as exc:
            raise _translate(exc, "open") from exc
        version = self._meta("schema_version")
        if version != SCHEMA_VERSION:
            raise StorageError(
                f"store schema version {version} is not {SCHEMA_VERSION}: run `stemedb store rebuild`",
                code="schema_mismatch",
                retryable=False,
            )
        self.cache = ResultCache(cache_bytes)
        self._trust: dict[str, tuple[float, float]] = {}
        self._retracted: dict[str, int] = {}
        self._superseded_epochs: dict[str, int] = {}
        self._load_memory_state()

    # -- connections ---------------------------------------------------------------

    def _connect(self, path: Path) -> apsw.Connection:
        conn = apsw.Connection(str(path))
        conn.setbusytimeout(BUSY_TIMEOUT_MS)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("PRAGMA cache_size=-65536")
        return conn

    def reader(self) -> apsw.Connection:
        """This thread's read connection."""
        conn: apsw.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._connect(self.path)
            except apsw.Error as exc:
                raise _translate(exc, "connect") from exc
            self._local.conn = conn
        return conn

    def _audit_reader(self) -> apsw.Connection:
        conn: apsw.Connection | None = getattr(self._local, "audit", None)
        if conn is None:
            conn = self._connect(self.audit_path)
            self._local.audit = conn
        return conn

    @contextmanager
    def _reading(self, operation: str) -> Iterator[apsw.Connection]:
        try:
            yield self.reader()
        except apsw.Error as exc:
            raise _translate(exc, operation) from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        self._audit_writer.close()

    # -- meta ----------------------------------------------------------------------

    def _meta(self, key: str) -> Any:
        with self._write_lock:
            row = self._writer.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def applied_lsn(self) -> int:
        return int(self._meta("applied_lsn") or 0)

    def _load_memory_state(self) -> None:
        conn = self._writer
        self._trust = {
            agent.hex(): (score, updated)
            for agent, score, updated in conn.execute("SELECT agent, score, updated_at FROM trust")
        }
        self._retracted = {
            h.hex(): lsn
            for h, lsn in conn.execute(
                "SELECT source_hash, retraction_lsn FROM sources WHERE retraction_lsn IS NOT NULL"
            )
        }
        self._superseded_epochs = {
            old.hex(): lsn
            for old, lsn in conn.execute(
                "SELECT es.old, min(es.lsn) FROM epoch_supersedes es"
                " JOIN epochs e ON e.id = es.new WHERE e.kind = 'replace' GROUP BY es.old"
            )
        }

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
        self._trust.update(trust_updates)
        self._retracted.update(retracted)
        for epoch_id, lsn in epochs.items():
            self._superseded_epochs.setdefault(epoch_id, lsn)
        self.cache.invalidate(touched)
        return touched

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
        rows = conn.execute(
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
            rows = conn.execute(
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
        with self._reading("list") as conn:
            rows = conn.execute("SELECT lsn, id, record FROM epochs ORDER BY lsn").fetchall()
            superseded_by: dict[str, list[str]] = {}
            for old, new in conn.execute("SELECT old, new FROM epoch_supersedes ORDER BY lsn"):
                superseded_by.setdefault(old.hex(), []).append(new.hex())
        return [self._epoch_row(lsn, eid, rec, superseded_by) for lsn, eid, rec in rows]

    def epoch(self, epoch_id: str) -> EpochRow | None:
        return next((e for e in self.epochs() if e.id == epoch_id), None)

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
            signed = conn.execute(
                "SELECT count(*) FROM signatures WHERE agent = ?", (agent,)
            ).fetchone()[0]
            authored = conn.execute(
                "SELECT count(*) FROM signatures WHERE agent = ? AND lsn = assertion_lsn",
                (agent,),
            ).fetchone()[0]
            votes = conn.execute("SELECT count(*) FROM votes WHERE agent = ?", (agent,)).fetchone()[
                0
            ]
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
            row = conn.execute(
                "SELECT max(lsn) FROM changes WHERE committed_at <= ?", (at,)
            ).fetchone()
        return int(row[0] or 0)

    def state_hash(self) -> tuple[int, str]:
        """(applied LSN, SHA-256 over every change ``lsn:kind:id`` in LSN order)."""
        digest = hashlib.sha256()
        last = 0
        with self._reading("verify") as conn:
            for lsn, kind, ref in conn.execute("SELECT lsn, kind, ref FROM changes ORDER BY lsn"):
                digest.update(f"{lsn}:{kind}:{ref.hex()}\n".encode())
                last = lsn
        return last, digest.hexdigest()

    def committed_at(self, lsn: int) -> float | None:
        with self._reading("query") as conn:
            row = conn.execute("SELECT committed_at FROM changes WHERE lsn = ?", (lsn,)).fetchone()
        return None if row is None else float(row[0])

    def counts(self) -> dict[str, int]:
        with self._reading("stats") as conn:
            return {
                table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                for table in ("assertions", "signatures", "votes", "epochs", "sources")
            }

    def assertion_count(self) -> int:
        with self._reading("stats") as conn:
            row = conn.execute("SELECT max(rowid) IS NOT NULL, count(*) FROM assertions").fetchone()
        return int(row[1])

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

    # -- audit -----------------------------------------------------------------------

    def write_audit(
        self, rows: Sequence[tuple[Any, ...]], claims: Sequence[tuple[str, str]]
    ) -> None:
        """Append audit rows (query_id, at, agent, endpoint, lens, subject, predicate,
        winner, duration_ms, record) and their (assertion_id, query_id) links."""
        try:
            with self._audit_writer:
                self._audit_writer.executemany(
                    "INSERT OR IGNORE INTO audit_queries (query_id, at, agent, endpoint, lens,"
                    " subject, predicate, winner, duration_ms, record)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._audit_writer.executemany(
                    "INSERT OR IGNORE INTO audit_claims SELECT ?, seq FROM audit_queries"
                    " WHERE query_id = ?",
                    claims,
                )
        except apsw.Error as exc:
            raise _translate(exc, "audit") from exc

    def audit_queries(
        self, *, agent: str | None, since: float | None, until: float | None, limit: int
    ) -> list[bytes]:
        clauses, args = [], []
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
            return [bytes(r[0]) for r in self._audit_reader().execute(sql, args)]
        except apsw.Error as exc:
            raise _translate(exc, "audit") from exc

    def audit_query(self, query_id: str) -> bytes | None:
        row = (
            self._audit_reader()
            .execute("SELECT record FROM audit_queries WHERE query_id = ?", (query_id,))
            .fetchone()
        )
        return None if row is None else bytes(row[0])

    def audit_queries_using(self, assertion_id: str, limit: int) -> list[str]:
        return [
            r[0]
            for r in self._audit_reader().execute(
                "SELECT q.query_id FROM audit_claims c JOIN audit_queries q ON q.seq = c.seq"
                " WHERE c.assertion_id = ? ORDER BY c.seq DESC LIMIT ?",
                (assertion_id, limit),
            )
        ]
