"""The custodial agent keys of a cluster: table ``stemedb_custodial_keys`` (migration
``0013_custodial_keys.sql``), the same rows and rules as ``sqlite`` — one usable key per
API key, a revocation erases the private half and keeps the row. Every node reads it per
call, so a key created or revoked through one node holds on every node at once.
Imported only in cluster mode (psycopg)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import psycopg

from stemedb.errors import StorageError
from stemedb.model.signing import AgentKey
from stemedb.store.custodial_keys.protocol import CustodialKey, exists_error, key_of_row
from stemedb.store.keys.postgres import SharedTables

_COLUMNS: Final = "agent_id, api_key_id, created_at, revoked_at"


class PostgresCustodialKeys(SharedTables):
    def __init__(self, dsn: str) -> None:
        super().__init__(dsn, "stemedb-custodial", "SELECT 1 FROM stemedb_custodial_keys LIMIT 1")

    def create(self, api_key_id: str, now: float) -> CustodialKey:
        key = AgentKey.generate()
        try:
            with self._transaction("write") as conn:
                conn.execute(
                    "INSERT INTO stemedb_custodial_keys VALUES (%s, %s, %s, %s, NULL)",
                    (key.agent_id, api_key_id, bytes.fromhex(key.seed_hex()), now),
                )
        except StorageError as exc:
            if isinstance(exc.__cause__, psycopg.errors.UniqueViolation):
                raise exists_error(api_key_id) from exc.__cause__
            raise
        return CustodialKey(agent_id=key.agent_id, api_key_id=api_key_id, created_at=now)

    def signer(self, api_key_id: str) -> AgentKey | None:
        rows = self._read(
            "SELECT seed FROM stemedb_custodial_keys WHERE api_key_id = %s AND revoked_at IS NULL",
            (api_key_id,),
        )
        return AgentKey.from_seed(bytes(rows[0][0])) if rows else None

    def all(self) -> list[CustodialKey]:
        rows = self._read(
            f"SELECT {_COLUMNS} FROM stemedb_custodial_keys ORDER BY created_at, agent_id"
        )
        return [key_of_row(row) for row in rows]

    def of_agents(self, agent_ids: Iterable[str]) -> list[CustodialKey]:
        wanted = sorted(set(agent_ids))
        if not wanted:
            return []
        rows = self._read(
            f"SELECT {_COLUMNS} FROM stemedb_custodial_keys WHERE agent_id = ANY(%s)"
            " ORDER BY agent_id",
            (wanted,),
        )
        return [key_of_row(row) for row in rows]

    def revoke(self, agent_id: str, now: float) -> CustodialKey | None:
        with self._transaction("write") as conn:
            row = conn.execute(
                "UPDATE stemedb_custodial_keys SET seed = NULL,"
                " revoked_at = coalesce(revoked_at, %s) WHERE agent_id = %s"
                f" RETURNING {_COLUMNS}",
                (now, agent_id),
            ).fetchone()
        return None if row is None else key_of_row(row)
