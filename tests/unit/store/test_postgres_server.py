"""The test PostgreSQL itself: a real server, one empty database per test."""

from __future__ import annotations

import psycopg
from support.postgres import PostgresServer


def test_each_test_gets_an_empty_database_of_a_real_postgresql_15(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    assert version is not None and int(version[0]) // 10000 == 15
    assert tables == (0,)


def test_a_dropped_database_is_gone_with_its_open_connections(
    postgres_server: PostgresServer,
) -> None:
    with postgres_server.database() as dsn:
        conn = psycopg.connect(dsn)
    assert conn.closed or conn.broken or _fails(conn)
    with psycopg.connect(postgres_server.admin_dsn) as admin:
        names = {r[0] for r in admin.execute("SELECT datname FROM pg_database")}
    assert dsn.rsplit("dbname=", 1)[1] not in names


def _fails(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False
