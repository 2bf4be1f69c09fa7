"""The embedded store: SQLite through apsw (ARCHITECTURE §5).

One writer connection, used only by the group-commit writer thread, applies whole
batches in one transaction that also records ``applied_lsn``. Readers get one
connection per thread. ``journal_mode=WAL`` and ``synchronous=NORMAL``: the store may
lose its last transactions on power loss; the engine replays the WAL from
``applied_lsn`` on open, so nothing acknowledged is lost.
"""

from __future__ import annotations

from stemedb.store.apply import StoreWrites
from stemedb.store.audit import StoreAudit
from stemedb.store.base import (
    AUDIT_FILE,
    MIN_SQLITE_VERSION,
    STORE_FILE,
    check_sqlite_version,
    prefix_upper_bound,
    value_key,
)
from stemedb.store.reads import StoreReads

__all__ = [
    "AUDIT_FILE",
    "MIN_SQLITE_VERSION",
    "STORE_FILE",
    "SqliteStore",
    "check_sqlite_version",
    "prefix_upper_bound",
    "value_key",
]


class SqliteStore(StoreWrites, StoreReads, StoreAudit):
    """Indexes and derived state of one node, in ``<data_dir>/store.sqlite``."""
