"""``python -m stemedb.api`` in a subprocess, over HTTP or HTTPS, for the observability
and TLS/CORS tests: the shared ``ServerProcess`` laid out under one base directory."""

from __future__ import annotations

import ssl
from pathlib import Path

from support.server import ServerProcess, free_port

__all__ = ["LiveServer", "free_port"]


class LiveServer(ServerProcess):
    def __init__(
        self,
        base: Path,
        *,
        scheme: str = "http",
        verify: ssl.SSLContext | bool = True,
        **env: str,
    ) -> None:
        super().__init__(base / "data", base / "server.log", scheme=scheme, verify=verify, **env)
