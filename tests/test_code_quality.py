"""The house rules that tools can check: ruff clean, mypy --strict clean (STYLE.md §7)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_reports_nothing() -> None:
    result = _run("ruff", "check", "src", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_reports_nothing() -> None:
    result = _run("mypy", "--no-incremental", "src/stemedb")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_reports_nothing() -> None:
    result = _run("ruff", "format", "--check", "src", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_formatter_escapes() -> None:
    """The formatter decides the layout everywhere: no ``fmt: skip`` / ``fmt: off``."""
    markers = tuple("# fmt: " + word for word in ("skip", "off"))  # not in this file's text
    escapes = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("src", "tests", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if any(marker in line for marker in markers)
    ]
    assert not escapes, escapes


def test_layer_contracts_hold() -> None:
    """import-linter's contracts in pyproject.toml: the layers of ARCHITECTURE.md §1,
    the SDK's imports, no web framework below ``api``, pure lenses."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


# Functions over the bounds in pyproject.toml (complexity 10, 7 arguments), by name. A
# new function over a bound fails the test below; so does one listed here that is no
# longer over it (take it off the list).
COMPLEX_FUNCTIONS = frozenset(
    {
        # start-up wiring: one sequence each, read top to bottom
        "api/app.py::create_app",
        "api/app.py::create_app.lifespan",
        # a copy of uvicorn 0.54's RequestResponseCycle.send (api/http/uvicorn_patch.py)
        "api/http/uvicorn_patch.py::LeanCycle.send",
        # validators and checkers: one branch per rule they enforce
        "api/http/openapi.py::build_openapi",
        "api/routes/writes.py::post_assert_batch",
        "engine/checks.py::BatchChecker._references",
        "model/canonical.py::_locate_error",
        "ops/archive/layout.py::check_archive",
        "ops/backup/verify.py::verify_backup",
        "ops/drill.py::run_drill",
        "ops/backup/manifest.py::validate_manifest",
        "ops/wal_plan.py::plan_wal",
        "query/params.py::validate_params",
        "query/selection.py::select",
        # appliers: one branch per record kind (quarantine and review added, ADR 0023)
        "store/sqlite/apply.py::_Batch.apply",
        "store/postgres/apply.py::Batch._record",
    }
)
MANY_ARGUMENT_FUNCTIONS = frozenset(
    {
        # command-line commands: one argument per option
        "cli/backup.py::restore",
        "cli/keys.py::create",
        # one keyword argument per record field
        "model/signing.py::sign_assertion",
        "model/signing.py::sign_source",
        # the rest
        "lens/scoring.py::build_resolution",
        "ops/drill.py::_report",
        "ops/backup/restore.py::_open_and_report",
        "query/service.py::QueryService._record_audit",
        "wal/log.py::Wal.__init__",
    }
)


def _qualified_names(tree: ast.Module) -> dict[int, str]:
    """Line of each function definition -> its qualified name (``Class.method``)."""
    names: dict[int, str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    names[child.lineno] = name
                visit(child, f"{name}.")

    visit(tree, "")
    return names


def _over_bounds(rule: str) -> set[str]:
    result = _run("ruff", "check", "--select", rule, "--output-format", "json", "src")
    found = set()
    for item in json.loads(result.stdout):
        path = Path(item["filename"])
        name = _qualified_names(ast.parse(path.read_text()))[item["location"]["row"]]
        found.add(f"{path.relative_to(ROOT / 'src' / 'stemedb')}::{name}")
    return found


def test_no_new_function_is_over_the_complexity_bound() -> None:
    assert _over_bounds("C901") == COMPLEX_FUNCTIONS


def test_no_new_function_takes_too_many_arguments() -> None:
    assert _over_bounds("PLR0913") == MANY_ARGUMENT_FUNCTIONS
