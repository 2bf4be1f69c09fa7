"""The store's foundation: SQLite version check, connections, shared helpers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import apsw
import msgspec

from stemedb.errors import StorageError
from stemedb.model.kinds import RecordKind
from stemedb.model.records import (
    Assertion,
    Epoch,
    ObjectValue,
    Source,
    Supersession,
)
from stemedb.store.cache import ResultCache
from stemedb.store.schema import AUDIT_SCHEMA, SCHEMA, SCHEMA_VERSION

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
        return f"number:{float(value)!r}"
    if obj.type == "boolean":
        return "boolean:true" if value else "boolean:false"
    return f"{obj.type}:{value}"


def scalar(conn: apsw.Connection, sql: str, args: Sequence[Any] = ()) -> Any:
    """The first column of the first row, or None."""
    row: Any = conn.execute(sql, args).fetchone()
    return None if row is None else row[0]


def _hex(blob: bytes | None) -> str | None:
    return None if blob is None else blob.hex()


def _agents(blob: bytes) -> tuple[str, ...]:
    return tuple(blob[i : i + AGENT_BYTES].hex() for i in range(0, len(blob), AGENT_BYTES))


def _translate(exc: apsw.Error, operation: str) -> StorageError:
    if isinstance(exc, apsw.FullError):
        return StorageError(f"store {operation} failed: disk full", code="disk_full")
    if isinstance(exc, apsw.BusyError | apsw.LockedError):
        return StorageError(
            f"store {operation} failed: the database stayed busy/locked for"
            " storage.busy_timeout_ms",
            code="store_busy",
        )
    return StorageError(f"store {operation} failed: {exc}", code="store_error")


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


class StoreBase:
    """Connections, metadata and the in-memory derived state shared by the store's parts."""

    backend: Final = "sqlite"

    def __init__(
        self,
        data_dir: Path,
        *,
        cache_bytes: int = 64 * 1024 * 1024,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    ) -> None:
        check_sqlite_version()
        self.busy_timeout_ms = busy_timeout_ms
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / STORE_FILE
        self.audit_path = data_dir / AUDIT_FILE
        self._local = threading.local()
        # The writer connection is shared by the group-commit writer, the view refresher
        # and applied_lsn() callers; apsw refuses concurrent use from two threads.
        self._write_lock = threading.RLock()
        self._closed = False
        # Fault seam for tests (as ``sys.faults`` is for the WAL): called with the
        # operation name before every read; an ``apsw.Error`` it raises is translated
        # like one SQLite raised (``tests/api/test_resilience*.py``). None in production.
        self.read_fault: Callable[[str], None] | None = None
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
                f"store schema version {version} is not {SCHEMA_VERSION}:"
                " run `stemedb store rebuild`",
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
        conn.setbusytimeout(self.busy_timeout_ms)  # SQLite retries busy/locked inside it
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
            if self.read_fault is not None:
                self.read_fault(operation)
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
