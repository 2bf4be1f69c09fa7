"""Recovery: take the data directory, open the WAL and the store, and apply the WAL
records the store has not applied yet (the engine's in-process writer and the writer
process open a node the same way)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final, NamedTuple

from stemedb.engine.codec import decode_entry
from stemedb.engine.settings import EngineSettings
from stemedb.errors import StorageError
from stemedb.model.kinds import Entry
from stemedb.store.protocol import Store, StoreWriter
from stemedb.store.sqlite import SqliteStore
from stemedb.sys.clock import Clock
from stemedb.sys.filesystem import FileSystem
from stemedb.sys.lock import DirectoryLock
from stemedb.wal import Wal, WalObserver

log = logging.getLogger("stemedb.engine")

REPLAY_CHUNK_RECORDS: Final = 20000  # bigger transactions: fewer index-page rewrites


def replay(wal: Wal, store: StoreWriter) -> int:
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


class Opened(NamedTuple):
    lock: DirectoryLock
    wal: Wal
    store: Store
    replayed: int


def open_and_replay(
    data_dir: Path,
    settings: EngineSettings,
    *,
    fs: FileSystem | None,
    clock: Clock,
    observer: WalObserver | None,
) -> Opened:
    """Lock ``data_dir``, recover the WAL, open the store and replay; on failure,
    release what was taken and raise."""
    lock = DirectoryLock(data_dir)
    try:
        wal = Wal.open(
            settings.wal_path(data_dir),
            fs=fs,
            clock=clock,
            segment_size_bytes=settings.segment_size_bytes,
            fsync=settings.fsync,
            observer=observer,
        )
        try:
            store = open_store(data_dir, settings)
            return Opened(lock, wal, store, replay(wal, store))
        except BaseException:
            wal.close()
            raise
    except BaseException:
        lock.release()
        raise


def open_store(data_dir: Path, settings: EngineSettings) -> Store:
    """The store of ``data_dir`` (the writer's, or a reader of the writer process's)."""
    return SqliteStore(
        data_dir, cache_bytes=settings.cache_bytes, busy_timeout_ms=settings.busy_timeout_ms
    )
