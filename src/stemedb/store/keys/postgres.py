"""The shared access state of a cluster in PostgreSQL: keys, overrides, open breakers.

Tables of migration ``0010_access.sql`` (``stemedb db migrate``). ``PostgresKeyStore``
is the blocking ``SharedAccess`` (a small psycopg pool of its own, each call one
transaction, durable when it returns); every change of keys, overrides or breakers
increments ``stemedb_access_generation`` in the same transaction. ``PostgresGeneration``
is the per-request read of that counter on the event loop: concurrent requests share
one query, but never one that started before they arrived, so a change committed
before a request started is seen by it. Imported only in cluster mode (psycopg).

Connections follow the DSN (``storage.postgres_dsn``; with several hosts and
``target_session_attrs=read-write`` they reach the new primary after a failover). A
broken connection is dropped and the call fails with ``StorageError`` (503, retryable);
the next call connects again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

import psycopg
import psycopg_pool

from stemedb.errors import StorageError
from stemedb.store.keys.records import (
    OverrideScope,
    RateOverride,
    SharedBreaker,
    StoredKey,
    key_of_row,
)

POOL_MAX_CONNECTIONS: Final = 2
CONNECT_TIMEOUT_SECONDS: Final = 5
POOL_TIMEOUT_SECONDS: Final = 10.0
GENERATION_READ_TIMEOUT_SECONDS: Final = 5.0
MIGRATE_HINT: Final = "run `stemedb db migrate` against storage.postgres_dsn"

_BUMP: Final = (
    "UPDATE stemedb_access_generation SET generation = generation + 1 RETURNING generation"
)
_KEY_COLUMNS: Final = (
    "id, name, role, secret_hash, enabled, created_at, expires_at, last_used_at, minted_open"
)


def translate(exc: Exception, operation: str) -> StorageError:
    """A driver or pool error as the ``StorageError`` the API answers (503)."""
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return StorageError(
            f"shared access store {operation} failed: the schema is missing; {MIGRATE_HINT}",
            code="schema_behind",
        )
    if isinstance(exc, psycopg.OperationalError | psycopg_pool.PoolTimeout):
        return StorageError(
            f"shared access store {operation} failed: PostgreSQL is not reachable ({exc})",
            code="store_unavailable",
        )
    return StorageError(f"shared access store {operation} failed: {exc}", code="store_error")


class SharedTables:
    """A small pool of its own on the cluster's database (blocking, thread-safe): each
    call one transaction, committed when it returns. ``probe`` runs once at open (a
    missing schema fails there, not at the first request)."""

    def __init__(self, dsn: str, name: str, probe: str) -> None:
        self._pool = psycopg_pool.ConnectionPool(
            dsn,
            min_size=1,
            max_size=POOL_MAX_CONNECTIONS,
            kwargs={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
            check=psycopg_pool.ConnectionPool.check_connection,
            timeout=POOL_TIMEOUT_SECONDS,
            name=name,
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=POOL_TIMEOUT_SECONDS)
            self._read(probe)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self._pool.close()
            raise translate(exc, "open") from exc
        except StorageError:
            self._pool.close()
            raise

    @contextlib.contextmanager
    def _transaction(self, operation: str) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn:
                yield conn  # the pool commits on a clean exit, rolls back on an error
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise translate(exc, operation) from exc

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._transaction("read") as conn:
            return conn.execute(sql, args).fetchall()

    def close(self) -> None:
        self._pool.close()


class PostgresKeyStore(SharedTables):
    """``SharedAccess`` on PostgreSQL (blocking; thread-safe through the pool)."""

    backend: Final = "postgres"

    def __init__(self, dsn: str) -> None:
        super().__init__(dsn, "stemedb-access", "SELECT generation FROM stemedb_access_generation")

    def _change(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run one change and bump the generation in the same transaction; the new
        generation."""
        with self._transaction("write") as conn:
            conn.execute(sql, args)
            row = conn.execute(_BUMP).fetchone()
        assert row is not None
        generation: int = row[0]
        return generation

    # -- the generation ------------------------------------------------------------

    def generation(self) -> int:
        rows = self._read("SELECT generation FROM stemedb_access_generation")
        return int(rows[0][0])

    # -- keys ----------------------------------------------------------------------

    def all_keys(self) -> list[StoredKey]:
        rows = self._read(f"SELECT {_KEY_COLUMNS} FROM stemedb_api_keys ORDER BY created_at, id")
        return [key_of_row(row) for row in rows]

    def put(self, key: StoredKey) -> None:
        self._change(
            f"INSERT INTO stemedb_api_keys ({_KEY_COLUMNS})"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role,"
            " secret_hash = excluded.secret_hash, enabled = excluded.enabled,"
            " created_at = excluded.created_at, expires_at = excluded.expires_at,"
            " last_used_at = excluded.last_used_at, minted_open = excluded.minted_open",
            (
                key.id,
                key.name,
                key.role,
                key.secret_hash,
                key.enabled,
                key.created_at,
                key.expires_at,
                key.last_used_at,
                key.minted_open,
            ),
        )

    def confirm(self, key_id: str) -> None:
        self._change("UPDATE stemedb_api_keys SET minted_open = false WHERE id = %s", (key_id,))

    def set_enabled(self, key_id: str, enabled: bool) -> None:
        self._change("UPDATE stemedb_api_keys SET enabled = %s WHERE id = %s", (enabled, key_id))

    def delete(self, key_id: str) -> None:
        self._change("DELETE FROM stemedb_api_keys WHERE id = %s", (key_id,))

    def touch(self, used: Iterable[tuple[str, float]]) -> None:
        items = [(at, key_id) for key_id, at in used]
        if not items:
            return
        with self._transaction("write") as conn, conn.cursor() as cur:
            cur.executemany(
                "UPDATE stemedb_api_keys SET last_used_at = GREATEST(last_used_at, %s)"
                " WHERE id = %s",
                items,
            )

    # -- rate-limit overrides ------------------------------------------------------

    def overrides(self) -> list[RateOverride]:
        rows = self._read(
            "SELECT scope, target, max_requests_per_min, created_at"
            " FROM stemedb_rate_limit_overrides ORDER BY scope, target"
        )
        return [
            RateOverride(scope=r[0], target=r[1], max_requests_per_min=r[2], created_at=r[3])
            for r in rows
        ]

    def put_override(self, override: RateOverride) -> None:
        self._change(
            "INSERT INTO stemedb_rate_limit_overrides VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (scope, target) DO UPDATE SET"
            " max_requests_per_min = excluded.max_requests_per_min,"
            " created_at = excluded.created_at",
            (override.scope, override.target, override.max_requests_per_min, override.created_at),
        )

    def delete_override(self, scope: OverrideScope, target: str) -> None:
        self._change(
            "DELETE FROM stemedb_rate_limit_overrides WHERE scope = %s AND target = %s",
            (scope, target),
        )

    # -- breakers ------------------------------------------------------------------

    def breakers(self) -> list[SharedBreaker]:
        rows = self._read(
            "SELECT agent_id, forced, failures, opened_at, reason, node_id"
            " FROM stemedb_agent_breakers ORDER BY agent_id"
        )
        return [
            SharedBreaker(
                agent_id=r[0],
                forced=r[1],
                failures=r[2],
                opened_at=r[3],
                reason=r[4],
                node_id=r[5],
            )
            for r in rows
        ]

    def put_breaker(self, breaker: SharedBreaker) -> int:
        return self._change(
            "INSERT INTO stemedb_agent_breakers VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (agent_id) DO UPDATE SET forced = excluded.forced OR"
            " stemedb_agent_breakers.forced, failures = excluded.failures,"
            " opened_at = excluded.opened_at, reason = excluded.reason,"
            " node_id = excluded.node_id",
            (
                breaker.agent_id,
                breaker.forced,
                breaker.failures,
                breaker.opened_at,
                breaker.reason,
                breaker.node_id,
            ),
        )

    def delete_breaker(self, agent_id: str) -> int:
        return self._change("DELETE FROM stemedb_agent_breakers WHERE agent_id = %s", (agent_id,))


class PostgresGeneration:
    """``AccessGeneration``: the generation read once per guarded request, concurrent
    requests sharing a query that started after each of them arrived."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._next: asyncio.Future[int] | None = None  # callers of the next query
        self._serving: asyncio.Task[None] | None = None

    async def fresh(self) -> int:
        waiting = self._next
        if waiting is None:
            loop = asyncio.get_running_loop()
            waiting = self._next = loop.create_future()
            if self._serving is None:
                self._serving = loop.create_task(self._serve())
        return await asyncio.shield(waiting)

    async def _serve(self) -> None:
        try:
            while (waiting := self._next) is not None:
                self._next = None  # callers from now on wait for the next query
                try:
                    waiting.set_result(await self._read())
                except StorageError as exc:
                    waiting.set_exception(exc)
        finally:
            self._serving = None

    async def _read(self) -> int:
        try:
            return await asyncio.wait_for(self._query(), GENERATION_READ_TIMEOUT_SECONDS)
        except (psycopg.Error, TimeoutError) as exc:
            await self._drop()
            raise translate(
                psycopg.OperationalError("timed out") if isinstance(exc, TimeoutError) else exc,
                "generation read",
            ) from exc

    async def _query(self) -> int:
        conn = self._conn
        if conn is None or conn.closed:
            conn = self._conn = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
            )
        cursor = await conn.execute("SELECT generation FROM stemedb_access_generation")
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def close(self) -> None:
        serving = self._serving
        if serving is not None:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
        await self._drop()


__all__ = ["PostgresGeneration", "PostgresKeyStore", "translate"]
