"""The shared-state tables (migrations 0010-0019 of ``store/postgres/migrations``) in a
test database, applied in order, each in its own transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import psycopg

import stemedb

MIGRATIONS: Final = Path(stemedb.__file__).parent / "store" / "postgres" / "migrations"
SHARED_VERSIONS: Final = range(10, 20)


def apply_shared_migrations(dsn: str) -> list[str]:
    """Apply the shared helper's migrations to ``dsn``; the file names applied."""
    applied = []
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if int(path.name.split("_", 1)[0]) not in SHARED_VERSIONS:
            continue
        with psycopg.connect(dsn) as conn:
            conn.execute(path.read_text().encode())
        applied.append(path.name)
    return applied
