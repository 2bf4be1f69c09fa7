"""psycopg is the optional ``cluster`` extra: the embedded server, the engine and the CLI
import without it; only ``stemedb db`` commands and the PostgreSQL store need it."""

from __future__ import annotations

import subprocess
import sys

BLOCK_PSYCOPG = "import sys; sys.modules['psycopg'] = None; sys.modules['psycopg_pool'] = None; "


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_PSYCOPG + code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_server_engine_and_cli_import_without_psycopg() -> None:
    result = _run("import stemedb.api.app, stemedb.cli.main, stemedb.engine, stemedb.runtime")
    assert result.returncode == 0, result.stderr


def test_db_migrate_without_psycopg_names_the_extra() -> None:
    result = _run(
        "from stemedb.cli.main import main; sys.argv = ['stemedb', 'db', 'migrate',"
        " '--dsn', 'host=127.0.0.1 dbname=x']; sys.exit(main())"
    )
    assert result.returncode == 1
    assert "cluster" in result.stderr and "psycopg" in result.stderr
