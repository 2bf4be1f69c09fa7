"""``EngineSettings``: the engine's defaults are the configuration's, defined once."""

from __future__ import annotations

import msgspec

from stemedb.config import Config
from stemedb.engine import EngineSettings


def test_the_default_settings_are_what_an_empty_configuration_gives() -> None:
    from_config = EngineSettings.from_config(Config())
    assert msgspec.structs.replace(from_config, wal_dir="") == EngineSettings()


def test_every_configured_value_reaches_the_settings() -> None:
    config = msgspec.convert(
        {
            "storage": {"data_dir": "/srv/d", "cache_size_mb": 3, "busy_timeout_ms": 7},
            "wal": {
                "dir": "/srv/w",
                "segment_size_bytes": 4096,
                "group_commit_max_batch": 5,
                "group_commit_max_delay_us": 6,
                "fsync": False,
            },
            "auth": {"signature_max_skew_seconds": 9},
        },
        Config,
    )
    assert EngineSettings.from_config(config) == EngineSettings(
        wal_dir="/srv/w",
        segment_size_bytes=4096,
        group_commit_max_batch=5,
        group_commit_max_delay_us=6,
        fsync=False,
        cache_bytes=3 * 1024 * 1024,
        busy_timeout_ms=7,
        signature_max_skew_seconds=9,
    )
