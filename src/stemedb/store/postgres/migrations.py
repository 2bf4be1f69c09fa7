"""Versioned schema migrations of the PostgreSQL store (``migrations/NNNN_name.sql``).

Every ``.sql`` file of ``migrations/`` is one migration; its version is the number
before the first ``_`` and the files are applied in version order (versions 1-9: the
records, views and audit of this package; 10-19: shared state of cluster mode). The
table ``stemedb_schema(version, name, applied_at)`` lists what a database has applied.
``migrate`` takes a session advisory lock (so two nodes or operators never migrate at
once), then applies each pending file in a transaction of its own together with its
``stemedb_schema`` row: a migration is applied entirely or not at all. Migrations only
add (tables, columns, indexes); none drops or rewrites data.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Final, NamedTuple

import psycopg

from stemedb.errors import StorageError
from stemedb.store.postgres.connection import Conn, connect, translate_error

MIGRATION_LOCK_KEY: Final = 0x5354454D4544  # pg_advisory_lock key ("STEMED")
_FILE_NAME: Final = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_SCHEMA_TABLE: Final = """
CREATE TABLE IF NOT EXISTS stemedb_schema (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


class Migration(NamedTuple):
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """Every migration shipped with the code, in version order."""
    found: list[Migration] = []
    folder = resources.files("stemedb.store.postgres") / "migrations"
    for item in folder.iterdir():
        match = _FILE_NAME.match(item.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], item.read_text(encoding="utf-8")))
    found.sort()
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise StorageError(
            f"two migrations share a version: {versions}", code="schema_invalid", retryable=False
        )
    return found


def latest_version() -> int:
    known = migrations()
    return known[-1].version if known else 0


def applied_versions(conn: Conn) -> dict[int, str]:
    """version -> name of what the database has applied ({} for a new database)."""
    exists = conn.execute("SELECT to_regclass('stemedb_schema') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    return {int(v): str(n) for v, n in conn.execute("SELECT version, name FROM stemedb_schema")}


def pending(dsn: str) -> list[Migration]:
    """The migrations the database at ``dsn`` has not applied, in order."""
    try:
        with connect(dsn) as conn:
            done = applied_versions(conn)
    except psycopg.Error as exc:
        raise translate_error(exc, "migrate") from exc
    return [m for m in migrations() if m.version not in done]


def migrate(dsn: str) -> list[Migration]:
    """Apply every pending migration, each in its own transaction, under the advisory
    lock; return those applied (empty when the schema was up to date)."""
    applied: list[Migration] = []
    try:
        with connect(dsn) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
            try:
                conn.execute(_SCHEMA_TABLE)
                done = applied_versions(conn)  # read under the lock: no one else migrates
                for migration in migrations():
                    if migration.version in done:
                        continue
                    with conn.transaction():
                        conn.execute(migration.sql)
                        conn.execute(
                            "INSERT INTO stemedb_schema (version, name) VALUES (%s, %s)",
                            (migration.version, migration.name),
                        )
                    applied.append(migration)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    except psycopg.Error as exc:
        raise translate_error(exc, "migrate") from exc
    return applied


def check_schema(dsn: str, *, auto_migrate: bool) -> None:
    """Refuse a database whose schema is behind the code (unless ``auto_migrate``:
    then migrate it) or ahead of it (written by a newer StemeDB)."""
    try:
        with connect(dsn) as conn:
            done = applied_versions(conn)
    except psycopg.Error as exc:
        raise translate_error(exc, "open") from exc
    known = {m.version for m in migrations()}
    ahead = sorted(set(done) - known)
    if ahead:
        raise StorageError(
            f"the PostgreSQL schema has migrations this StemeDB does not know ({ahead}):"
            " upgrade StemeDB on this node (never downgrade below a database's schema;"
            " `stemedb db migrate --dry-run` lists what this version knows)",
            code="schema_ahead",
            retryable=False,
        )
    behind = sorted(known - set(done))
    if not behind:
        return
    if auto_migrate:
        migrate(dsn)
        return
    raise StorageError(
        f"the PostgreSQL schema is behind this StemeDB: migrations {behind} are pending;"
        " run `stemedb db migrate` (or set storage.auto_migrate = true)",
        code="schema_behind",
        retryable=False,
    )
