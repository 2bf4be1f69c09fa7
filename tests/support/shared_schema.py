"""The schema in a test database through the real migration runner
(``stemedb.store.postgres.migrations.migrate``, what ``stemedb db migrate`` runs):
the store's migrations 1-9 and the shared state's 10-19 (keys, breakers, nodes)."""

from __future__ import annotations

from stemedb.store.postgres.migrations import migrate


def apply_shared_migrations(dsn: str) -> list[str]:
    """Apply every pending migration to ``dsn``; the file names applied."""
    return [f"{m.version:04d}_{m.name}.sql" for m in migrate(dsn)]
