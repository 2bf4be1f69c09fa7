"""Custodial agent keys, each bound to one API key (ADR 0018, ``docs/reference/mcp.md``).

A model behind MCP holds no signing key, yet every record must be signed: an admin
creates a *custodial* agent key for an API key and the server signs, with it, what the
holder of that API key writes through ``/mcp``. An embedded node keeps them in
``<data_dir>/custodial.sqlite`` (``sqlite``); a cluster in PostgreSQL (``postgres``,
imported only in cluster mode), so every node signs for every API key. Not derived from
the WAL, like the API keys (ADR 0001). ``open_custodial_keys`` picks one by
``storage.backend``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from stemedb.store.custodial_keys.protocol import CustodialKey, CustodialKeys
from stemedb.store.custodial_keys.sqlite import CUSTODIAL_FILE, CustodialKeyStore


def open_custodial_keys(backend: str, data_dir: Path, postgres_dsn: str = "") -> CustodialKeys:
    """``local`` → ``<data_dir>/custodial.sqlite``; ``postgres`` → the cluster's table."""
    if backend == "postgres":
        module = importlib.import_module("stemedb.store.custodial_keys.postgres")
        keys: CustodialKeys = module.PostgresCustodialKeys(postgres_dsn)
        return keys
    return CustodialKeyStore(data_dir)


__all__ = [
    "CUSTODIAL_FILE",
    "CustodialKey",
    "CustodialKeyStore",
    "CustodialKeys",
    "open_custodial_keys",
]
