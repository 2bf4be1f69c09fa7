"""``<data_dir>/keys.sqlite``: API keys (hashes only) and admin rate-limit overrides
(the ``KeyStore`` of embedded mode).

Not derived from the WAL (``docs/design/adr-0001-api-keys.md``): key state is
operational, mutable (disable, delete, ``last_used_at``) and must never travel with
the claims. The file is small and rarely written, so it uses a rollback journal with
``synchronous=FULL``: a key change is on disk when the call returns, and the file is
one self-contained database for backups. It is created with mode 0600.

One process owns a data directory (``sys.lock``): the server while it runs, else
``stemedb keys … --offline``. Calls are thread-safe (one connection behind a lock).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import apsw

from stemedb.errors import StorageError
from stemedb.store.keys.records import OverrideScope, RateOverride, StoredKey, key_of_row

KEYS_FILE: Final = "keys.sqlite"
KEYS_SCHEMA_VERSION: Final = 2
BUSY_TIMEOUT_MS: Final = 5000
FILE_MODE: Final = 0o600

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    enabled INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    last_used_at REAL,
    minted_open INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rate_limit_overrides (
    scope TEXT NOT NULL,
    target TEXT NOT NULL,
    max_requests_per_min INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (scope, target)
) WITHOUT ROWID;
"""


def _upgrade(conn: apsw.Connection) -> None:
    """Schema 1 → 2 (issue 17, ``docs/design/adr-0022-open-minted-keys.md``): the
    ``minted_open`` column; keys of a version-1 file are not marked (their origin is
    unknown; ``stemedb keys list`` shows them all)."""
    rows = list(conn.execute("SELECT value FROM meta WHERE name = 'schema_version'"))
    version = int(rows[0][0]) if rows else KEYS_SCHEMA_VERSION
    if version < 2:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(api_keys)")}
        if "minted_open" not in columns:
            conn.execute("ALTER TABLE api_keys ADD COLUMN minted_open INTEGER NOT NULL DEFAULT 0")
    if version < KEYS_SCHEMA_VERSION:
        conn.execute(
            "UPDATE meta SET value = ? WHERE name = 'schema_version'", (KEYS_SCHEMA_VERSION,)
        )


def _translate(exc: apsw.Error, operation: str) -> StorageError:
    if isinstance(exc, apsw.FullError):
        return StorageError(f"keys store {operation} failed: disk full", code="disk_full")
    if isinstance(exc, apsw.BusyError | apsw.LockedError):
        return StorageError(f"keys store {operation} failed: database busy", code="store_busy")
    return StorageError(f"keys store {operation} failed: {exc}", code="store_error")


class SqliteKeyStore:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / KEYS_FILE
        self._lock = threading.Lock()
        if not self.path.exists():
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
            os.close(fd)
        try:
            self._conn = apsw.Connection(str(self.path))
            self._conn.setbusytimeout(BUSY_TIMEOUT_MS)
            self._conn.execute("PRAGMA journal_mode=DELETE")
            self._conn.execute("PRAGMA synchronous=FULL")
            with self._conn:
                self._conn.execute(_SCHEMA)
                self._conn.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                    (KEYS_SCHEMA_VERSION,),
                )
                _upgrade(self._conn)
        except apsw.Error as exc:
            raise _translate(exc, "open") from exc

    def _run(self, operation: str, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        rows: list[Any] = []
        with self._lock:
            try:
                with self._conn:
                    rows = list(self._conn.execute(sql, tuple(args)))
            except apsw.Error as exc:
                raise _translate(exc, operation) from exc
        return rows

    # -- keys ----------------------------------------------------------------------

    def all_keys(self) -> list[StoredKey]:
        rows = self._run(
            "read",
            "SELECT id, name, role, secret_hash, enabled, created_at, expires_at, last_used_at,"
            " minted_open FROM api_keys ORDER BY created_at, id",
        )
        return [key_of_row(row) for row in rows]

    def put(self, key: StoredKey) -> None:
        """Insert or replace one key (by id)."""
        self._run(
            "write",
            "INSERT OR REPLACE INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key.id,
                key.name,
                key.role,
                key.secret_hash,
                int(key.enabled),
                key.created_at,
                key.expires_at,
                key.last_used_at,
                int(key.minted_open),
            ),
        )

    def confirm(self, key_id: str) -> None:
        self._run("write", "UPDATE api_keys SET minted_open = 0 WHERE id = ?", (key_id,))

    def set_enabled(self, key_id: str, enabled: bool) -> None:
        self._run("write", "UPDATE api_keys SET enabled = ? WHERE id = ?", (int(enabled), key_id))

    def delete(self, key_id: str) -> None:
        self._run("write", "DELETE FROM api_keys WHERE id = ?", (key_id,))

    def touch(self, used: Iterable[tuple[str, float]]) -> None:
        """Record ``last_used_at`` of many keys in one transaction."""
        items = list(used)
        if not items:
            return
        with self._lock:
            try:
                with self._conn:
                    self._conn.executemany(
                        "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
                        [(at, key_id) for key_id, at in items],
                    )
            except apsw.Error as exc:
                raise _translate(exc, "write") from exc

    # -- rate-limit overrides ------------------------------------------------------

    def overrides(self) -> list[RateOverride]:
        rows = self._run(
            "read",
            "SELECT scope, target, max_requests_per_min, created_at FROM rate_limit_overrides"
            " ORDER BY scope, target",
        )
        return [
            RateOverride(scope=r[0], target=r[1], max_requests_per_min=r[2], created_at=r[3])
            for r in rows
        ]

    def put_override(self, override: RateOverride) -> None:
        self._run(
            "write",
            "INSERT OR REPLACE INTO rate_limit_overrides VALUES (?, ?, ?, ?)",
            (override.scope, override.target, override.max_requests_per_min, override.created_at),
        )

    def delete_override(self, scope: OverrideScope, target: str) -> None:
        self._run(
            "write",
            "DELETE FROM rate_limit_overrides WHERE scope = ? AND target = ?",
            (scope, target),
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


__all__ = ["KEYS_FILE", "SqliteKeyStore"]
