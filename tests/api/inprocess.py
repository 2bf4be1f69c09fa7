"""A real HTTP server in this process, for fault injection.

``python -m stemedb.api`` cannot take an injected ``FileSystem``, so the failure tests
run the same app (``create_app(config, engine_options={"fs": FaultyFileSystem(...)})``)
under uvicorn on a free loopback port, in a thread with its own event loop. Requests
go over real TCP with httpx, exactly as against the subprocess server.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import uvicorn
from starlette.applications import Starlette

from stemedb.api.app import create_app
from stemedb.api.state import ApiState
from stemedb.config import Config, load_config
from stemedb.sys.faults import FaultyFileSystem
from stemedb.sys.filesystem import RealFileSystem

START_TIMEOUT_SECONDS = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class InProcessServer:
    def __init__(self, app: Starlette, config: Config, port: int) -> None:
        self.app = app
        self.config = config
        self.url = f"http://127.0.0.1:{port}"
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=port,
                lifespan="on",
                log_config=None,
                access_log=False,
            )
        )
        self._thread = threading.Thread(target=self._run, name="test-uvicorn", daemon=True)

    @property
    def state(self) -> ApiState:
        state: ApiState = self.app.state.api
        return state

    def _run(self) -> None:
        asyncio.run(self._server.serve())

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the in-process server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(30)


def make_config(data_dir: Path, **sections: Mapping[str, Any]) -> Config:
    """Defaults + ``STEMEDB_*``-free settings for a test server (no group-commit delay)."""
    config = load_config(None, environ={})
    raw = msgspec.to_builtins(config)
    raw["storage"]["data_dir"] = str(data_dir)
    raw["wal"]["group_commit_max_delay_us"] = 0
    for section, values in sections.items():
        raw[section].update(values)
    return msgspec.convert(raw, Config)


@contextmanager
def running_server(
    data_dir: Path, *, fs: FaultyFileSystem | None = None, **sections: Mapping[str, Any]
) -> Iterator[tuple[InProcessServer, httpx.Client]]:
    config = make_config(data_dir, **sections)
    options: dict[str, object] = {"fs": fs} if fs is not None else {}
    server = InProcessServer(create_app(config, engine_options=options), config, free_port())
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            yield server, client
    finally:
        server.stop()


def faulty_fs() -> FaultyFileSystem:
    return FaultyFileSystem(RealFileSystem())
