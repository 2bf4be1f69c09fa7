"""The SDK is installable alone: its modules import only ``stemedb.wire``,
``stemedb.model``, ``stemedb.errors`` (and ``stemedb.__version__``) of ours, and
importing it loads no web framework, storage, engine, query or server code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import stemedb.client

CLIENT_DIR = Path(stemedb.client.__file__).parent
ALLOWED = ("stemedb.client", "stemedb.wire", "stemedb.model", "stemedb.errors")
# Loaded by ``import stemedb.client`` in a fresh interpreter: none of these may be.
FORBIDDEN_PREFIXES = (
    "stemedb.api",
    "stemedb.engine",
    "stemedb.store",
    "stemedb.query",
    "stemedb.wal",
    "stemedb.lens",
    "stemedb.ops",
    "stemedb.cli",
    "stemedb.sys",
    "stemedb.runtime",
    "stemedb.config",
)
FORBIDDEN_PACKAGES = ("starlette", "uvicorn", "granian", "apsw", "prometheus_client", "typer")


def _stemedb_imports(path: Path) -> list[str]:
    """Every ``stemedb`` module a client module imports, wherever the import is."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name.split(".")[0] == "stemedb")
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            module = node.module or ""
            if module == "stemedb":  # ``from stemedb import __version__`` only
                found.extend(f"stemedb.{a.name}" for a in node.names)
            elif module.split(".")[0] == "stemedb":
                found.append(module)
    return found


def _allowed(name: str) -> bool:
    return name == "stemedb.__version__" or any(
        name == p or name.startswith(p + ".") for p in ALLOWED
    )


def test_client_modules_import_only_wire_model_and_errors() -> None:
    modules = sorted(CLIENT_DIR.rglob("*.py"))
    assert len(modules) > 5
    bad = [(m.name, n) for m in modules for n in _stemedb_imports(m) if not _allowed(n)]
    assert bad == []


def test_importing_the_sdk_loads_no_server_code() -> None:
    code = (
        "import sys, stemedb.client\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN_PACKAGES!r}"
        f" or (m + '.').startswith(tuple(p + '.' for p in {FORBIDDEN_PREFIXES!r})))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", out.stdout
