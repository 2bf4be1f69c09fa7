"""State hashes: the store and the WAL must describe the same history (and, read-only
next to a running server, where the store stands: ``state_hash_through``, ``store_point``)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Final

import apsw

from stemedb.config import Config
from stemedb.engine.codec import decode_entry
from stemedb.model.kinds import Entry
from stemedb.store.sqlite import SqliteStore
from stemedb.wal import Wal

STORE_FILE: Final = "store.sqlite"


class StateDigest:
    """The state hash of a history, fed one entry at a time in LSN order: SHA-256 over
    ``lsn:kind:id`` lines (the stores compute the same over their ``changes`` rows)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self.last_lsn = 0

    def add(self, entry: Entry) -> None:
        self._digest.update(f"{entry.lsn}:{int(entry.kind)}:{entry.record_id}\n".encode())
        self.last_lsn = entry.lsn

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def wal_state_hash(wal: Wal, up_to_lsn: int | None = None, from_lsn: int = 1) -> tuple[int, str]:
    """(last LSN, SHA-256 over ``lsn:kind:id`` of every WAL record from ``from_lsn`` up
    to ``up_to_lsn``)."""
    digest = StateDigest()
    for rec in wal.iter_from(from_lsn):
        if up_to_lsn is not None and rec.lsn > up_to_lsn:
            break
        digest.add(decode_entry(rec.lsn, rec.type, rec.payload))
    return digest.last_lsn, digest.hexdigest()


def compare_store_with_wal(config: Config) -> dict[str, Any]:
    """Open the WAL and the store read-side and compare their state hashes."""
    from stemedb.sys.lock import DirectoryLock

    lock = DirectoryLock(config.data_dir)
    try:
        wal = Wal.open(config.wal_dir)
        store = SqliteStore(config.data_dir)
        try:
            # Archived segments may have been deleted (docs/design/wal-archive.md §5):
            # compare the history the local WAL still holds.
            first = wal.segments()[0].first_lsn
            store_lsn, store_hash = store.state_hash(from_lsn=first)
            if first > 1:
                store_lsn = max(store_lsn, store.applied_lsn())
            _, wal_hash = wal_state_hash(wal, store_lsn, first)
            return {
                "ok": store_lsn == wal.last_lsn and store_hash == wal_hash,
                "wal_first_lsn": first,
                "wal_last_lsn": wal.last_lsn,
                "store_applied_lsn": store.applied_lsn(),
                "store_state_hash": store_hash,
                "wal_state_hash": wal_hash,
                "unapplied_records": wal.last_lsn - store_lsn,
            }
        finally:
            store.close()
            wal.close()
    finally:
        lock.release()


def state_hash_through(data_dir: Path, lsn: int) -> tuple[int, str]:
    """The store's (last LSN, state hash) over its changes up to ``lsn`` (the formula of
    ``SqliteStore.state_hash``), read-only: safe next to a running server."""
    conn = apsw.Connection(str(data_dir / STORE_FILE), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        digest = hashlib.sha256()
        last = 0
        rows = conn.execute(
            "SELECT lsn, kind, ref FROM changes WHERE lsn <= ? ORDER BY lsn", (lsn,)
        )
        for row_lsn, kind, ref in rows:
            digest.update(f"{row_lsn}:{kind}:{bytes(ref).hex()}\n".encode())
            last = int(row_lsn)
        return last, digest.hexdigest()
    finally:
        conn.close()


def store_point(data_dir: Path, lsn: int | None = None) -> tuple[int, float | None]:
    """(applied LSN, commit time of ``lsn`` or None), read-only."""
    conn = apsw.Connection(str(data_dir / STORE_FILE), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows = list(conn.execute("SELECT value FROM meta WHERE key = 'applied_lsn'"))
        applied = int(rows[0][0]) if rows else 0
        committed: float | None = None
        if lsn is not None:
            found = list(conn.execute("SELECT committed_at FROM changes WHERE lsn = ?", (lsn,)))
            committed = float(found[0][0]) if found else None
        return applied, committed
    finally:
        conn.close()
