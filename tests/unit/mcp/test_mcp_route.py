"""``[mcp] enabled`` decides whether the app has ``/mcp``."""

from __future__ import annotations

from pathlib import Path

import msgspec

from stemedb.api.app import create_app
from stemedb.config import Config, McpConfig, StorageConfig


def _paths(config: Config) -> set[str]:
    app = create_app(config)
    return {getattr(route, "path", "") for route in app.router.routes}


def test_mcp_is_served_by_default_and_gone_when_disabled(tmp_path: Path) -> None:
    config = Config(storage=StorageConfig(data_dir=str(tmp_path)))
    assert "/mcp" in _paths(config)
    off = msgspec.structs.replace(config, mcp=McpConfig(enabled=False))
    assert "/mcp" not in _paths(off)
    assert "/v1/admin/custodial-keys" in _paths(off)  # the keys stay manageable
