"""The embedded store: SQLite through apsw (ARCHITECTURE §5).

One writer connection, used by the group-commit writer thread, applies whole batches in
one transaction that also records ``applied_lsn``. Readers get one connection per
thread. ``journal_mode=WAL`` and ``synchronous=NORMAL``: the store may lose its last
transactions on power loss; the engine replays the WAL from ``applied_lsn`` on open, so
nothing acknowledged is lost.

Modules: ``database`` (files, connections, errors), ``schema``, ``blobs`` (how ids and
records are stored), ``memory`` (state kept beside the tables), ``assertion_rows`` (the
one definition of an assertion's rows), ``apply`` (the write path), ``lookups`` (the
writer's checks), ``candidates``, ``records``, ``feed``, ``views``, ``audit`` (reads and
the audit log), ``store`` (``SqliteStore``, composed of them).
"""

from __future__ import annotations

from stemedb.store.sqlite.database import (
    AUDIT_FILE,
    MIN_SQLITE_VERSION,
    STORE_FILE,
    check_sqlite_version,
)
from stemedb.store.sqlite.store import SqliteStore

__all__ = [
    "AUDIT_FILE",
    "MIN_SQLITE_VERSION",
    "STORE_FILE",
    "SqliteStore",
    "check_sqlite_version",
]
