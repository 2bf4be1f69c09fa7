"""What an engine is opened with: one struct, built from the configuration in one place.

Every default is the configuration's (``config.WalConfig``, ``StorageConfig``,
``AuthConfig``), not a second copy: ``EngineSettings()`` is what ``stemedb serve`` runs
with an empty configuration file. ``EngineSettings.from_config`` is the only place that
reads the configuration's keys for the engine. A msgspec struct, so the server can hand
it to the writer process as it is (``runtime.protocol.WriterSettings``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import msgspec

from stemedb.config import AuthConfig, Config, DefenceConfig, StorageConfig, WalConfig

_WAL: Final = WalConfig()
_STORAGE: Final = StorageConfig()
_AUTH: Final = AuthConfig()
BYTES_PER_MB: Final = 1024 * 1024
VERIFY_THREADS: Final = 2  # libsodium releases the GIL: both cores of a small VM


class EngineSettings(msgspec.Struct, frozen=True, kw_only=True):
    wal_dir: str = ""  # "": ``<data_dir>/wal``
    segment_size_bytes: int = _WAL.segment_size_bytes
    group_commit_max_batch: int = _WAL.group_commit_max_batch
    group_commit_max_delay_us: int = _WAL.group_commit_max_delay_us
    fsync: bool = _WAL.fsync
    cache_bytes: int = _STORAGE.cache_size_mb * BYTES_PER_MB
    busy_timeout_ms: int = _STORAGE.busy_timeout_ms
    signature_max_skew_seconds: int = _AUTH.signature_max_skew_seconds
    verify_threads: int = VERIFY_THREADS
    defence: DefenceConfig = msgspec.field(default_factory=DefenceConfig)

    @classmethod
    def from_config(cls, config: Config) -> EngineSettings:
        return cls(
            wal_dir=str(config.wal_dir),
            segment_size_bytes=config.wal.segment_size_bytes,
            group_commit_max_batch=config.wal.group_commit_max_batch,
            group_commit_max_delay_us=config.wal.group_commit_max_delay_us,
            fsync=config.wal.fsync,
            cache_bytes=config.storage.cache_size_mb * BYTES_PER_MB,
            busy_timeout_ms=config.storage.busy_timeout_ms,
            signature_max_skew_seconds=config.auth.signature_max_skew_seconds,
            defence=config.defence,
        )

    def wal_path(self, data_dir: Path) -> Path:
        return Path(self.wal_dir) if self.wal_dir else data_dir / "wal"
