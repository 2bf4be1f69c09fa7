"""``store.postgres.connection.Pool``: a connection handed back moments ago is handed out
again without a check (one round trip less per read), and when the server drops every
connection (a failover, a restart) the next read still succeeds: the pool checks its
idle connections and the read is retried on a fresh one."""

from __future__ import annotations

import psycopg

from stemedb.store.postgres.connection import Pool


def _backend_pid(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def test_a_read_after_every_connection_was_dropped_succeeds(postgres_store_dsn: str) -> None:
    pool = Pool(postgres_store_dsn, size=3, name="test-pool")
    try:
        with pool.connection() as a, pool.connection() as b:  # two connections in the pool
            pids = {_backend_pid(a), _backend_pid(b)}
        with psycopg.connect(postgres_store_dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (list(pids),)
            )
        assert pool.run("read", _backend_pid) not in pids  # handed back < 1 s ago: unchecked
        assert pool.run("read", _backend_pid) not in pids
    finally:
        pool.close()
