"""``<data_dir>/custodial.sqlite``: the custodial agent keys of an embedded node.

A model behind MCP holds no signing key, yet every record must be signed
(ADR 0018, ``docs/reference/mcp.md``). An admin creates a *custodial* agent key for an
API key (``POST /v1/admin/custodial-keys``); the server keeps its private half here and
signs, with it, what the holder of that API key writes through ``/mcp``.

- The file is created with mode 0600 and put back to 0600 when it is opened looser (a
  restored copy): it holds private keys. It is a ``*.sqlite`` of the data directory, so
  ``stemedb backup create`` copies it like ``keys.sqlite``.
- Rollback journal, ``synchronous=FULL``: a key is on disk when the call returns, and
  the file is one self-contained database. Every HTTP worker of a node opens it and
  reads it per call (indexed by API key), so a revocation in one is seen by all.
- Revoking erases the private half and keeps the row (``revoked_at``): a trace still
  says the signer was custodial, and for which API key, after the key is gone.
- One usable custodial key per API key at a time.

Not derived from the WAL, like ``keys.sqlite`` (ADR 0001).
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import apsw

from stemedb.errors import StorageError
from stemedb.model.signing import AgentKey
from stemedb.store.custodial_keys.protocol import CustodialKey, exists_error, key_of_row

CUSTODIAL_FILE: Final = "custodial.sqlite"
CUSTODIAL_SCHEMA_VERSION: Final = 1
BUSY_TIMEOUT_MS: Final = 5000
FILE_MODE: Final = 0o600

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS custodial_keys (
    agent_id TEXT PRIMARY KEY,
    api_key_id TEXT NOT NULL,
    seed BLOB,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS custodial_usable ON custodial_keys (api_key_id)
    WHERE revoked_at IS NULL;
"""


def _translate(exc: apsw.Error, operation: str) -> StorageError:
    if isinstance(exc, apsw.FullError):
        return StorageError(f"custodial key store {operation} failed: disk full", code="disk_full")
    if isinstance(exc, apsw.BusyError | apsw.LockedError):
        return StorageError(
            f"custodial key store {operation} failed: database busy", code="store_busy"
        )
    return StorageError(f"custodial key store {operation} failed: {exc}", code="store_error")


def _private_file(path: Path) -> None:
    """Create ``path`` with mode 0600, or put an existing one back to 0600."""
    if not path.exists():
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE))
    if stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
        os.chmod(path, FILE_MODE)


class CustodialKeyStore:
    """The custodial keys of one data directory. Thread-safe (one connection, a lock)."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / CUSTODIAL_FILE
        self._lock = threading.Lock()
        try:
            _private_file(self.path)
            self._conn = apsw.Connection(str(self.path))
            self._conn.setbusytimeout(BUSY_TIMEOUT_MS)
            self._conn.execute("PRAGMA journal_mode=DELETE")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA secure_delete=ON")  # a revoked seed is overwritten
            with self._conn:
                self._conn.execute(_SCHEMA)
                self._conn.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                    (CUSTODIAL_SCHEMA_VERSION,),
                )
        except OSError as exc:
            raise StorageError(
                f"custodial key store open failed: {exc.strerror}", code="store_error"
            ) from exc
        except apsw.Error as exc:
            raise _translate(exc, "open") from exc

    def _run(self, operation: str, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                with self._conn:
                    return list(self._conn.execute(sql, tuple(args)))
            except apsw.ConstraintError:
                raise
            except apsw.Error as exc:
                raise _translate(exc, operation) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def create(self, api_key_id: str, now: float) -> CustodialKey:
        """A fresh custodial key for ``api_key_id``; 409 if it has a usable one."""
        key = AgentKey.generate()
        try:
            self._run(
                "write",
                "INSERT INTO custodial_keys VALUES (?, ?, ?, ?, NULL)",
                (key.agent_id, api_key_id, bytes.fromhex(key.seed_hex()), now),
            )
        except apsw.ConstraintError as exc:
            raise exists_error(api_key_id) from exc
        return CustodialKey(agent_id=key.agent_id, api_key_id=api_key_id, created_at=now)

    def signer(self, api_key_id: str) -> AgentKey | None:
        """The usable custodial key of ``api_key_id`` (None: it has none)."""
        rows = self._run(
            "read",
            "SELECT seed FROM custodial_keys WHERE api_key_id = ? AND revoked_at IS NULL",
            (api_key_id,),
        )
        return AgentKey.from_seed(bytes(rows[0][0])) if rows else None

    def all(self) -> list[CustodialKey]:
        rows = self._run(
            "read",
            "SELECT agent_id, api_key_id, created_at, revoked_at FROM custodial_keys"
            " ORDER BY created_at, agent_id",
        )
        return [key_of_row(row) for row in rows]

    def of_agents(self, agent_ids: Iterable[str]) -> list[CustodialKey]:
        """The custodial keys (usable or revoked) among ``agent_ids``."""
        wanted = sorted(set(agent_ids))
        if not wanted:
            return []
        marks = ", ".join("?" * len(wanted))
        rows = self._run(
            "read",
            "SELECT agent_id, api_key_id, created_at, revoked_at FROM custodial_keys"
            f" WHERE agent_id IN ({marks}) ORDER BY agent_id",
            wanted,
        )
        return [key_of_row(row) for row in rows]

    def revoke(self, agent_id: str, now: float) -> CustodialKey | None:
        """Erase the private half of ``agent_id`` (the row stays); None if unknown."""
        rows = self._run(
            "write",
            "UPDATE custodial_keys SET seed = NULL, revoked_at = coalesce(revoked_at, ?)"
            " WHERE agent_id = ? RETURNING agent_id, api_key_id, created_at, revoked_at",
            (now, agent_id),
        )
        return key_of_row(rows[0]) if rows else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
