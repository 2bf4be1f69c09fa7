"""Fixtures of the CLI tests: a real server, and ``stemedb`` run as a subprocess."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import RunCli, cli_command
from support.client_server import ServerProcess

CLI_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("stemedb-cli")
    proc = ServerProcess(base / "data", base / "server.log")
    yield proc
    assert proc.stop() == 0


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """``run_cli("query", "s", env={...})``: run ``stemedb`` in ``tmp_path`` with a clean
    STEMEDB_* environment plus ``env``."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
        environ.update({"COLUMNS": "200", **(env or {})})
        return subprocess.run(
            [*cli_command(), *args],
            cwd=tmp_path,
            env=environ,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
            check=False,
        )

    return run


@pytest.fixture
def subject() -> str:
    return f"cli/{uuid.uuid4().hex[:12]}"
