"""Open cluster mode's store: PostgreSQL, from ``[storage]`` (docs/design/cluster.md).

The engine never names PostgreSQL (``Engine.shared`` takes any ``SharedStore``); this
is the one place above the store that does. Refusals name what to do: no
``storage.postgres_dsn``, no psycopg (the ``cluster`` extra), a schema behind the code
with ``storage.auto_migrate = false`` (``stemedb db migrate``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from stemedb.config import StorageConfig
from stemedb.engine.settings import EngineSettings
from stemedb.errors import ValidationError
from stemedb.store.protocol import SharedStore

CLUSTER_PACKAGES = ("psycopg", "psycopg_pool")


def check_postgres_config(storage: StorageConfig) -> None:
    """Refuse, naming the key, a PostgreSQL store that cannot be opened as configured."""
    if not storage.postgres_dsn.strip():
        raise ValidationError(
            "storage.postgres_dsn",
            "required with storage.backend = postgres",
            'storage.backend = "postgres" needs storage.postgres_dsn (a libpq DSN or URL of'
            " the database every node shares)",
        )
    missing = [name for name in CLUSTER_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ValidationError(
            "storage.backend",
            "needs the cluster extra",
            f'storage.backend = "postgres" needs {" and ".join(missing)}: install StemeDB'
            " with its cluster extra (stemedb[cluster])",
        )


def open_shared_store(
    storage: StorageConfig, settings: EngineSettings, *, poll_ms: int
) -> SharedStore:
    """The PostgreSQL store of ``storage.postgres_dsn`` (``check_postgres_config``
    first), polling the last committed LSN every ``poll_ms`` (``cluster.poll_ms``); the
    store's ``StorageError`` when PostgreSQL is unreachable or the schema is not ready
    (behind: naming ``stemedb db migrate``)."""
    check_postgres_config(storage)
    from stemedb.store.postgres import PostgresStore  # only with the cluster extra

    return PostgresStore(
        storage.postgres_dsn,
        read_from=storage.read_from,
        pool_size=storage.pool_size,
        cache_bytes=settings.cache_bytes,
        auto_migrate=storage.auto_migrate,
        poll_ms=poll_ms,
        path=Path(storage.data_dir),
    )
