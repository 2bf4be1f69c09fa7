"""``runtime`` is below ``api``: importing any of its modules (the writer process's
included) loads neither ``stemedb.api`` nor the web framework or the metrics client."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import stemedb.runtime

FORBIDDEN = ("stemedb.api", "starlette", "uvicorn", "prometheus_client")


def test_no_runtime_module_imports_the_api_or_the_web_framework() -> None:
    modules = [m.name for m in pkgutil.iter_modules(stemedb.runtime.__path__, "stemedb.runtime.")]
    assert "stemedb.runtime.writer_process" in modules
    script = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(n for n in sys.modules if n.startswith({FORBIDDEN!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_engine_does_not_import_the_runtime_above_it() -> None:
    script = "import sys, stemedb.engine\nprint([n for n in sys.modules if 'runtime' in n])"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
