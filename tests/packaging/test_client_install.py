"""``pip install stemedb`` is the client: the wheel, installed without extras into a
fresh virtual environment (versions pinned to uv.lock's), holds at most
``MAX_DISTRIBUTIONS`` distributions, imports the SDK without any server module, and its
SDK and CLI talk to a real server (run from the development environment)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.server import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
# stemedb, msgspec, pynacl (cffi, pycparser), rfc8785, httpx (anyio, certifi, httpcore,
# h11, idna, typing-extensions): 13 measured; the server install is over 50.
MAX_DISTRIBUTIONS = 13
SERVER_MODULES = (
    "stemedb.api",
    "stemedb.engine",
    "stemedb.store",
    "stemedb.query",
    "stemedb.wal",
    "stemedb.lens",
    "stemedb.runtime",
    "stemedb.config",
    "stemedb.cli",
    "starlette",
    "uvicorn",
    "apsw",
    "crc32c",
    "typer",
    "rich",
)

SDK_SCRIPT = """
import json, sys
import stemedb.client
loaded = sorted(
    m for m in sys.modules if any(m == p or m.startswith(p + ".") for p in SERVER_MODULES)
)
from stemedb.client import AgentKey, Client
key = AgentKey.generate()
with Client(sys.argv[1], key=key) as db:
    written = db.assert_("packaging/client", "installed", "alone", 0.7)
    result = db.query("packaging/client", "installed", lens="recency")
print(json.dumps({
    "loaded": loaded,
    "status": written.status,
    "id": written.id,
    "winner": result.resolution.winner.id,
    "value": result.resolution.winner.object.value,
}))
"""


def _uv() -> list[str]:
    """The uv that scripts/uv.sh finds (or installs), as the setup uses it."""
    done = subprocess.run(
        ["bash", "-c", 'source scripts/uv.sh && command -v "${UV[0]}"'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return [done.stdout.strip()]


def _run(*args: str | Path, env: dict[str, str] | None = None) -> str:
    environ = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", **(env or {})}
    environ.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        [str(a) for a in args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv holding the built wheel and its locked base dependencies only."""
    base = tmp_path_factory.mktemp("client-install")
    uv = _uv()
    _run(*uv, "build", "--wheel", "--out-dir", base / "dist", ROOT)
    (wheel,) = (base / "dist").glob("stemedb-*.whl")
    pins = base / "constraints.txt"
    exported = _run(
        *uv, "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project", "--quiet"
    )
    pins.write_text(exported)
    venv = base / "venv"
    _run(*uv, "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    _run(*uv, "pip", "install", "--quiet", "--python", python, "-c", pins, wheel)
    yield venv


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("client-install-server")
    proc = ServerProcess(base / "data", base / "server.log")
    yield proc
    assert proc.stop() == 0


def _distributions(venv: Path) -> list[str]:
    code = (
        "import importlib.metadata as m, json;"
        "print(json.dumps(sorted({d.metadata['Name'].lower() for d in m.distributions()})))"
    )
    return list(json.loads(_run(venv / "bin" / "python", "-c", code)))


def test_the_base_install_is_small_and_has_no_server(client_venv: Path) -> None:
    names = _distributions(client_venv)
    assert "stemedb" in names and "httpx" in names and "pynacl" in names
    assert len(names) <= MAX_DISTRIBUTIONS, names
    for server_package in ("starlette", "uvicorn", "apsw", "typer", "rich", "mcp", "boto3"):
        assert server_package not in names


def test_the_sdk_alone_writes_and_queries_a_running_server(
    client_venv: Path, server: ServerProcess
) -> None:
    script = f"SERVER_MODULES = {SERVER_MODULES!r}\n{SDK_SCRIPT}"
    answer = json.loads(_run(client_venv / "bin" / "python", "-c", script, server.url))
    assert answer["loaded"] == []
    assert answer["status"] == "created"
    assert answer["winner"] == answer["id"] and answer["value"] == "alone"


def test_the_client_commands_work_and_server_commands_say_what_to_install(
    client_venv: Path, server: ServerProcess, tmp_path: Path
) -> None:
    stemedb = client_venv / "bin" / "stemedb"
    key_file = tmp_path / "agent.key"
    made = json.loads(_run(stemedb, "keygen", "--out", key_file))
    assert key_file.stat().st_mode & 0o777 == 0o600
    env = {"STEMEDB_URL": server.url, "STEMEDB_KEY_FILE": str(key_file)}
    written = json.loads(
        _run(stemedb, "assert", "packaging/cli", "installed", "yes", "--json", env=env)
    )
    assert written["agent_id"] == made["agent_id"]
    shown = json.loads(_run(stemedb, "query", "packaging/cli", "installed", "--json", env=env))
    assert shown["claims"][0]["id"] == written["id"]
    table = _run(stemedb, "query", "packaging/cli", "installed", env=env)
    assert written["id"] in table  # whole, never cut
    assert "assert" in _run(stemedb, "--help") and "stemedb[server]" in _run(stemedb, "--help")

    serve = subprocess.run(
        [str(stemedb), "serve"], capture_output=True, text=True, timeout=60, check=False
    )
    assert serve.returncode == 2
    assert serve.stdout == ""
    assert serve.stderr.count("\n") == 1 and "pip install 'stemedb[server]'" in serve.stderr
