"""Recovery: apply the WAL records the store has not applied yet."""

from __future__ import annotations

import logging
from typing import Final

from stemedb.engine.codec import decode_entry
from stemedb.errors import StorageError
from stemedb.model.kinds import Entry
from stemedb.store.sqlite import SqliteStore
from stemedb.wal import Wal

log = logging.getLogger("stemedb.engine")

REPLAY_CHUNK_RECORDS: Final = 20000  # bigger transactions: fewer index-page rewrites


def replay(wal: Wal, store: SqliteStore) -> int:
    """Apply WAL records after the store's ``applied_lsn``; return how many."""
    applied = store.applied_lsn()
    if applied > wal.last_lsn:
        raise StorageError(
            f"the store has applied LSN {applied} but the WAL ends at {wal.last_lsn}:"
            " the WAL directory is not the one this store was built from",
            code="wal_behind_store",
            retryable=False,
        )
    count = 0
    chunk: list[Entry] = []
    for rec in wal.iter_from(applied + 1):
        chunk.append(decode_entry(rec.lsn, rec.type, rec.payload))
        if len(chunk) >= REPLAY_CHUNK_RECORDS:
            store.apply(chunk, drop_views=True)
            count += len(chunk)
            chunk = []
    if chunk:
        store.apply(chunk, drop_views=True)
        count += len(chunk)
    if count:
        log.info("replayed %d WAL records into the store (from LSN %d)", count, applied + 1)
    return count
