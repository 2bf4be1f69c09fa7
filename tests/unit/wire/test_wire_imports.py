"""``wire`` sits below every layer: it imports only ``model``, ``errors`` and msgspec."""

from __future__ import annotations

import ast
from pathlib import Path

import stemedb.wire

WIRE_DIR = Path(stemedb.wire.__file__).parent
ALLOWED_STEMEDB = ("stemedb.wire", "stemedb.model", "stemedb.errors")
ALLOWED_THIRD_PARTY = ("msgspec",)


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            names.append(node.module or "")
    return names


def _allowed(name: str) -> bool:
    top = name.split(".")[0]
    if top == "stemedb":
        return any(name == p or name.startswith(p + ".") for p in ALLOWED_STEMEDB)
    return top in ALLOWED_THIRD_PARTY or top in {"__future__", "typing", "collections"}


def test_wire_imports_only_model_errors_and_msgspec() -> None:
    modules = sorted(WIRE_DIR.glob("*.py"))
    assert len(modules) > 5
    bad = [(m.name, n) for m in modules for n in _imports(m) if not _allowed(n)]
    assert bad == []
