"""The API-key store: keys (hashes only), rate-limit overrides and, in cluster mode, the
open agent breakers. Not derived from the WAL (``docs/design/adr-0001-api-keys.md``).

``protocol`` is the seam, ``sqlite`` the embedded file (``<data_dir>/keys.sqlite``),
``postgres`` the cluster tables (imported only in cluster mode: it needs psycopg).
``open_key_store`` picks one by ``storage.backend``."""

from __future__ import annotations

import importlib
from pathlib import Path

from stemedb.store.keys.protocol import AccessGeneration, KeyStore, SharedAccess
from stemedb.store.keys.records import OverrideScope, RateOverride, SharedBreaker, StoredKey
from stemedb.store.keys.sqlite import KEYS_FILE, SqliteKeyStore


def open_shared_access(postgres_dsn: str) -> SharedAccess:
    """The cluster's key tables at ``postgres_dsn`` (``storage.backend = "postgres"``)."""
    module = importlib.import_module("stemedb.store.keys.postgres")
    shared: SharedAccess = module.PostgresKeyStore(postgres_dsn)
    return shared


def open_generation(postgres_dsn: str) -> AccessGeneration:
    """The per-request read of the cluster's access generation (asyncio)."""
    module = importlib.import_module("stemedb.store.keys.postgres")
    generation: AccessGeneration = module.PostgresGeneration(postgres_dsn)
    return generation


def open_key_store(backend: str, data_dir: Path, postgres_dsn: str = "") -> KeyStore:
    """The key store of ``storage.backend``: ``local`` → ``<data_dir>/keys.sqlite``,
    ``postgres`` → the cluster's tables at ``postgres_dsn``."""
    if backend == "postgres":
        return open_shared_access(postgres_dsn)
    return SqliteKeyStore(data_dir)


__all__ = [
    "KEYS_FILE",
    "AccessGeneration",
    "KeyStore",
    "OverrideScope",
    "RateOverride",
    "SharedAccess",
    "SharedBreaker",
    "SqliteKeyStore",
    "StoredKey",
    "open_generation",
    "open_key_store",
    "open_shared_access",
]
