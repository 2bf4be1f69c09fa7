"""Schema migrations of the PostgreSQL store: applied in order, once, under a lock; a
store refuses a schema that is behind (unless auto_migrate) or ahead of the code; and
``stemedb db migrate [--dry-run]``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from stemedb.errors import StorageError
from stemedb.store.postgres import PostgresStore, migrate, migrations, pending


def _applied(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM stemedb_schema ORDER BY version")]


def test_the_shipped_migrations_are_numbered_files_in_order() -> None:
    found = migrations()
    versions = [m.version for m in found]
    assert versions == sorted(versions) and versions[:3] == [1, 2, 3]
    assert all(m.sql.strip() and m.name for m in found)


def test_migrate_applies_every_pending_migration_once(postgres_dsn: str) -> None:
    every = [m.version for m in migrations()]
    assert [m.version for m in pending(postgres_dsn)] == every
    assert [m.version for m in migrate(postgres_dsn)] == every
    assert pending(postgres_dsn) == []
    assert migrate(postgres_dsn) == []
    assert _applied(postgres_dsn) == every


def test_two_nodes_migrating_at_once_apply_each_migration_once(postgres_dsn: str) -> None:
    results: list[list[int]] = []
    errors: list[StorageError] = []

    def run() -> None:
        try:
            results.append([m.version for m in migrate(postgres_dsn)])
        except StorageError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(v for r in results for v in r) == [m.version for m in migrations()]
    assert _applied(postgres_dsn) == [m.version for m in migrations()]


def test_a_store_refuses_a_schema_that_is_behind_and_names_the_command(
    postgres_dsn: str, tmp_path: Path
) -> None:
    with pytest.raises(StorageError) as caught:
        PostgresStore(postgres_dsn, watch=False, path=tmp_path)
    assert caught.value.code == "schema_behind"
    assert "stemedb db migrate" in caught.value.message
    assert not caught.value.retryable


def test_auto_migrate_brings_the_schema_up_to_date_on_open(
    postgres_dsn: str, tmp_path: Path
) -> None:
    store = PostgresStore(postgres_dsn, auto_migrate=True, watch=False, path=tmp_path)
    try:
        assert store.applied_lsn() == 0
    finally:
        store.close()
    assert pending(postgres_dsn) == []


def test_a_store_refuses_a_schema_written_by_a_newer_stemedb(
    postgres_store_dsn: str, tmp_path: Path
) -> None:
    with psycopg.connect(postgres_store_dsn) as conn:
        conn.execute("INSERT INTO stemedb_schema (version, name) VALUES (9999, 'future')")
    with pytest.raises(StorageError) as caught:
        PostgresStore(postgres_store_dsn, watch=False, path=tmp_path)
    assert caught.value.code == "schema_ahead"
    assert "9999" in caught.value.message


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    environ.update(env)
    script = Path(sys.executable).with_name("stemedb")
    return subprocess.run(
        [str(script), *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_db_migrate_command_lists_then_applies_the_pending_migrations(
    postgres_dsn: str, tmp_path: Path
) -> None:
    env = {"STEMEDB_STORAGE_POSTGRES_DSN": postgres_dsn}
    names = [f"{m.version:04d}_{m.name}" for m in migrations()]
    dry = _cli("db", "migrate", "--dry-run", env=env, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.split() == [w for n in names for w in ("pending", n)]
    assert _applied_or_none(postgres_dsn) is None  # a dry run applies nothing
    done = _cli("db", "migrate", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [w for n in names for w in ("applied", n)]
    again = _cli("db", "migrate", env=env, cwd=tmp_path)
    assert again.returncode == 0 and "up to date" in again.stdout


def test_the_db_migrate_command_without_a_dsn_says_which_key_to_set(tmp_path: Path) -> None:
    result = _cli("db", "migrate", env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert "storage.postgres_dsn" in result.stderr


def _applied_or_none(dsn: str) -> list[int] | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT to_regclass('stemedb_schema')").fetchone()
    return None if row is None or row[0] is None else _applied(dsn)
