"""The API tests' server: the shared ``ServerProcess`` with small limits, so the limit
tests are cheap."""

from __future__ import annotations

from pathlib import Path

from api_helpers import FEED_MAX_WAIT_SECONDS, MAX_BATCH, MAX_BODY_BYTES, MIN_LSN_WAIT_SECONDS
from support.server import ServerProcess as _ServerProcess
from support.server import free_port

__all__ = ["ServerProcess", "free_port"]


class ServerProcess(_ServerProcess):
    def __init__(self, data_dir: Path, log_path: Path, **env: str) -> None:
        limits = {
            "STEMEDB_API_MAX_BATCH": str(MAX_BATCH),
            "STEMEDB_API_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
            "STEMEDB_API_FEED_MAX_WAIT_SECONDS": str(FEED_MAX_WAIT_SECONDS),
            "STEMEDB_STORAGE_MIN_LSN_WAIT_SECONDS": str(MIN_LSN_WAIT_SECONDS),
        }
        super().__init__(data_dir, log_path, **{**limits, **env})
