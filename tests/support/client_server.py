"""A real StemeDB server (``python -m stemedb.api``) on a free loopback port, for the
SDK and CLI tests (the pattern of ``tests/api/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

from support.server import ServerProcess as _ServerProcess
from support.server import free_port

__all__ = ["FEED_MAX_WAIT_SECONDS", "MAX_BATCH", "ServerProcess", "free_port"]

MAX_BATCH = 5
FEED_MAX_WAIT_SECONDS = 2


class ServerProcess(_ServerProcess):
    def __init__(self, data_dir: Path, log_path: Path, **env: str) -> None:
        limits = {
            "STEMEDB_API_MAX_BATCH": str(MAX_BATCH),
            "STEMEDB_API_FEED_MAX_WAIT_SECONDS": str(FEED_MAX_WAIT_SECONDS),
        }
        super().__init__(data_dir, log_path, **{**limits, **env})
