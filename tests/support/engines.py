"""Open an engine either way a test needs (``writer_process``, or cluster mode's shared
store on PostgreSQL with ``postgres_dsn``), with flat settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stemedb.engine import Engine, EngineSettings
from stemedb.runtime.writer_start import start_writer_process
from stemedb.sys.clock import Clock
from stemedb.sys.filesystem import FileSystem
from stemedb.wal import WalObserver


def engine_for_test(
    data_dir: Path,
    *,
    writer_process: bool = False,
    http_processes: int = 1,
    fs: FileSystem | None = None,
    clock: Clock | None = None,
    wal_observer: WalObserver | None = None,
    postgres_dsn: str | None = None,
    **settings: Any,
) -> Engine:
    """``Engine.embedded``, with ``writer_process`` ``start_writer_process`` (which
    takes no test seams), or with ``postgres_dsn`` ``Engine.shared`` on a
    ``PostgresStore`` of that (migrated) database; ``settings``: ``EngineSettings``
    fields."""
    engine_settings = EngineSettings(**settings)
    if postgres_dsn is not None:
        if writer_process or fs is not None or wal_observer is not None:
            raise ValueError("writer_process, fs and wal_observer are embedded-only")
        from stemedb.store.postgres import PostgresStore

        store = PostgresStore(postgres_dsn, cache_bytes=engine_settings.cache_bytes, path=data_dir)
        return Engine.shared(store, engine_settings, clock=clock)
    if writer_process:
        if fs is not None or clock is not None:
            raise ValueError("fs and clock are test seams of the in-process writer")
        return start_writer_process(
            data_dir, engine_settings, observer=wal_observer, http_processes=http_processes
        )
    return Engine.embedded(data_dir, engine_settings, fs=fs, clock=clock, observer=wal_observer)
