"""A real StemeDB server (``python -m stemedb.api``) on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

START_TIMEOUT_SECONDS = 60.0  # a loaded 2-core CI machine took longer than 30 s


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``python -m stemedb.api`` with its own data directory, its log in a file.

    ``isolated`` drops every inherited ``STEMEDB_*`` variable (a node configured only by
    what the test passes); ``scheme``/``verify`` serve the TLS tests.
    """

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *,
        port: int | None = None,
        scheme: str = "http",
        verify: ssl.SSLContext | bool = True,
        isolated: bool = False,
        **env: str,
    ) -> None:
        self.port = port or free_port()
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.verify = verify
        self.log_path = log_path
        inherited = {
            k: v for k, v in os.environ.items() if not (isolated and k.startswith("STEMEDB_"))
        }
        environ = {
            **inherited,
            "STEMEDB_DB_DIR": str(data_dir),
            "STEMEDB_BIND_ADDR": f"127.0.0.1:{self.port}",
            "STEMEDB_WAL_GROUP_COMMIT_MAX_DELAY_US": "0",
            **env,
        }
        environ.pop("STEMEDB_CONFIG", None)
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stemedb.api"],
            env=environ,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, verify=self.verify)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.close()
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                ready = httpx.get(self.url + "/ready", timeout=1.0, verify=self.verify)
                if ready.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not become ready")

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()


def cluster_node(base: Path, name: str, dsn: str, **env: str) -> ServerProcess:
    """A node of cluster mode on the PostgreSQL of ``dsn``: its own directory ``base/name``
    and log ``base/name.log``, configured by ``env`` beyond that."""
    return ServerProcess(
        base / name,
        base / f"{name}.log",
        isolated=True,
        STEMEDB_STORAGE_BACKEND="postgres",
        STEMEDB_STORAGE_POSTGRES_DSN=dsn,
        **env,
    )


CLUSTER_ROOT_KEY = "cluster-root-" + "k" * 40


def secured_cluster_node(base: Path, name: str, dsn: str, **env: str) -> ServerProcess:
    """A cluster node ``name`` with API keys on (root key ``CLUSTER_ROOT_KEY``), migrating
    the schema itself and heartbeating every 0.5 s."""
    return cluster_node(
        base,
        name,
        dsn,
        STEMEDB_STORAGE_AUTO_MIGRATE="true",
        STEMEDB_AUTH_ENABLED="true",
        STEMEDB_ROOT_API_KEY=CLUSTER_ROOT_KEY,
        STEMEDB_CLUSTER_NODE_ID=name,
        STEMEDB_CLUSTER_HEARTBEAT_SECONDS="0.5",
        **env,
    )
