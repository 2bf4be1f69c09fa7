"""Open an engine either way a test needs (``writer_process``), with flat settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stemedb.engine import Engine, EngineSettings
from stemedb.runtime.writer_client import start_writer_process
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
    **settings: Any,
) -> Engine:
    """``Engine.embedded``, or with ``writer_process`` ``start_writer_process`` (which
    takes no test seams); ``settings``: ``EngineSettings`` fields."""
    engine_settings = EngineSettings(**settings)
    if writer_process:
        if fs is not None or clock is not None:
            raise ValueError("fs and clock are test seams of the in-process writer")
        return start_writer_process(
            data_dir, engine_settings, observer=wal_observer, http_processes=http_processes
        )
    return Engine.embedded(data_dir, engine_settings, fs=fs, clock=clock, observer=wal_observer)
