"""The SQLite files of one store: version check, connections, error translation.

``store.sqlite`` has one writer connection, shared by the group-commit writer, the view
refresher and ``applied_lsn()`` callers behind one lock (apsw refuses concurrent use of a
connection from two threads), and one read connection per thread. ``audit.sqlite`` has
one writer connection (the audit thread) and one reader per thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import apsw

from stemedb.errors import StorageError
from stemedb.store.sqlite.schema import (
    AUDIT_SCHEMA,
    QUARANTINE_COLUMNS,
    QUARANTINE_SCHEMA,
    SCHEMA,
    SCHEMA_VERSION,
    SEARCH_SCHEMA,
)
from stemedb.store.sqlite.search_rows import build_index

log = logging.getLogger("stemedb.store")

MIN_SQLITE_VERSION: Final = (3, 51, 3)
STORE_FILE: Final = "store.sqlite"
AUDIT_FILE: Final = "audit.sqlite"
BUSY_TIMEOUT_MS: Final = 5000


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


def translate_error(exc: apsw.Error, operation: str) -> StorageError:
    """The ``StorageError`` of an apsw error raised during ``operation``."""
    if isinstance(exc, apsw.FullError):
        return StorageError(f"store {operation} failed: disk full", code="disk_full")
    if isinstance(exc, apsw.BusyError | apsw.LockedError):
        return StorageError(
            f"store {operation} failed: the database stayed busy/locked for"
            " storage.busy_timeout_ms",
            code="store_busy",
        )
    return StorageError(f"store {operation} failed: {exc}", code="store_error")


def scalar(conn: apsw.Connection, sql: str, args: Sequence[Any] = ()) -> Any:
    """The first column of the first row, or None."""
    row: Any = conn.execute(sql, args).fetchone()
    return None if row is None else row[0]


class Database:
    """The open files of one store in ``data_dir`` (created with the schema if new)."""

    def __init__(self, data_dir: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        check_sqlite_version()
        self.busy_timeout_ms = busy_timeout_ms
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / STORE_FILE
        self.audit_path = data_dir / AUDIT_FILE
        self._local = threading.local()
        self.write_lock = threading.RLock()
        self._closed = False
        # Fault seam for tests (as ``sys.faults`` is for the WAL): called with the
        # operation name before every read; an ``apsw.Error`` it raises is translated
        # like one SQLite raised (``tests/api/test_resilience*.py``). None in production.
        self.read_fault: Callable[[str], None] | None = None
        try:
            self.writer = self._connect(self.path)
            self._create_or_upgrade()
            self.audit_writer = self._connect(self.audit_path)
            with self.audit_writer:
                self.audit_writer.execute(AUDIT_SCHEMA)
        except apsw.Error as exc:
            raise translate_error(exc, "open") from exc
        version = self.meta("schema_version")
        if version != SCHEMA_VERSION:
            raise StorageError(
                f"store schema version {version} is not {SCHEMA_VERSION}:"
                " run `stemedb store rebuild`",
                code="schema_mismatch",
                retryable=False,
            )

    def _create_or_upgrade(self) -> None:
        """Create the schema of a new store; upgrade a version-1 store (built before the
        search index) by indexing its rows, in one transaction (ADR 0014). Another
        process opening the same store waits for it (``BEGIN IMMEDIATE``)."""
        conn = self.writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(SCHEMA)
            conn.execute(SEARCH_SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?), ('applied_lsn', 0)",
                (SCHEMA_VERSION,),
            )
            if scalar(conn, "SELECT value FROM meta WHERE key = 'schema_version'") == 1:
                started = time.monotonic()
                build_index(conn)
                conn.execute("UPDATE meta SET value = 2 WHERE key = 'schema_version'")
                log.info(
                    "store schema upgraded from version 1 to 2 (search index of %d"
                    " assertions built in %.1f s)",
                    scalar(conn, "SELECT count(*) FROM assertions"),
                    time.monotonic() - started,
                )
            if scalar(conn, "SELECT value FROM meta WHERE key = 'schema_version'") == 2:
                columns = {row[1] for row in conn.execute("PRAGMA table_info(assertions)")}
                for column in QUARANTINE_COLUMNS:
                    if column not in columns:
                        conn.execute(f"ALTER TABLE assertions ADD COLUMN {column} INTEGER")
                conn.execute("UPDATE meta SET value = 3 WHERE key = 'schema_version'")
                log.info("store schema upgraded from version 2 to 3 (quarantine)")
            conn.execute(QUARANTINE_SCHEMA)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _connect(self, path: Path) -> apsw.Connection:
        conn = apsw.Connection(str(path))
        conn.setbusytimeout(self.busy_timeout_ms)  # SQLite retries busy/locked inside it
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("PRAGMA cache_size=-65536")
        return conn

    def reader(self) -> apsw.Connection:
        """This thread's read connection to ``store.sqlite``."""
        conn: apsw.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._connect(self.path)
            except apsw.Error as exc:
                raise translate_error(exc, "connect") from exc
            self._local.conn = conn
        return conn

    def audit_reader(self) -> apsw.Connection:
        """This thread's read connection to ``audit.sqlite``."""
        conn: apsw.Connection | None = getattr(self._local, "audit", None)
        if conn is None:
            conn = self._connect(self.audit_path)
            self._local.audit = conn
        return conn

    @contextmanager
    def reading(self, operation: str) -> Iterator[apsw.Connection]:
        """This thread's reader; an apsw error inside is raised as a ``StorageError``."""
        try:
            if self.read_fault is not None:
                self.read_fault(operation)
            yield self.reader()
        except apsw.Error as exc:
            raise translate_error(exc, operation) from exc

    def meta(self, key: str) -> Any:
        """A value of the ``meta`` table, read on the writer connection."""
        with self.write_lock:
            row = self.writer.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def disk_bytes(self) -> int:
        """Bytes of both files with their ``-wal`` and ``-shm`` companions."""
        total = 0
        for path in (self.path, self.audit_path):
            for suffix in ("", "-wal", "-shm"):
                candidate = path.with_name(path.name + suffix)
                if candidate.exists():
                    total += candidate.stat().st_size
        return total

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.writer.close()
        self.audit_writer.close()
