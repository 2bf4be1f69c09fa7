"""The node registry and the replication view, on the cluster's PostgreSQL.

``NodeRegistry`` (blocking; one autocommit connection of its own behind a lock,
reconnected after a failure) writes this node's heartbeat into ``stemedb_nodes``
(migration ``0011_nodes.sql``) with the database's clock, lists the nodes, and reads
what the primary knows about its standbys (``pg_stat_replication``; the connecting
role needs ``pg_monitor`` to see the LSN columns). A node that stops cleanly deletes
its row (``leave``); a row without a heartbeat for ``FORGET_SECONDS`` is deleted by the
next heartbeat of any node. Imported only in cluster mode (psycopg).
"""

from __future__ import annotations

import threading
from typing import Any, Final

import msgspec
import psycopg

from stemedb.errors import StorageError
from stemedb.wire import ClusterNode, Standby

MISSED_HEARTBEATS: Final = 3  # a node is unhealthy after this many missed heartbeats
FORGET_SECONDS: Final = 3600.0
CONNECT_TIMEOUT_SECONDS: Final = 5
STATEMENT_TIMEOUT_MS: Final = 5000
MIGRATE_HINT: Final = "run `stemedb db migrate` against storage.postgres_dsn"


class Replication(msgspec.Struct, kw_only=True):
    """What the server reached says about replication."""

    primary: str  # host:port of the server the DSN reached
    in_recovery: bool  # True: that server is a standby (no primary reached)
    synchronous_names: str  # synchronous_standby_names
    standbys: list[Standby]
    synchronous: list[str]  # names of the standbys whose sync_state is sync or quorum


def _error(exc: psycopg.Error, operation: str) -> StorageError:
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return StorageError(
            f"node registry {operation} failed: the schema is missing; {MIGRATE_HINT}",
            code="schema_behind",
        )
    if isinstance(exc, psycopg.OperationalError):
        return StorageError(
            f"node registry {operation} failed: PostgreSQL is not reachable ({exc})",
            code="store_unavailable",
        )
    return StorageError(f"node registry {operation} failed: {exc}", code="store_error")


class NodeRegistry:
    """``stemedb_nodes`` and ``pg_stat_replication`` through one connection."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def _run(self, operation: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                conn = self._conn
                if conn is None or conn.closed:
                    conn = self._conn = psycopg.connect(
                        self._dsn,
                        autocommit=True,
                        connect_timeout=CONNECT_TIMEOUT_SECONDS,
                        options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                    )
                cursor = conn.execute(sql, args)
                return cursor.fetchall() if cursor.description is not None else []
            except psycopg.Error as exc:
                if self._conn is not None and self._conn.broken:
                    self._conn.close()
                    self._conn = None
                raise _error(exc, operation) from exc

    def beat(self, node_id: str, advertise_url: str, version: str, every_seconds: float) -> None:
        """This node is alive (insert or refresh its row; drop long-gone nodes)."""
        self._run(
            "heartbeat",
            "WITH gone AS (DELETE FROM stemedb_nodes WHERE last_heartbeat <"
            " clock_timestamp() - make_interval(secs => %s) AND node_id <> %s)"
            " INSERT INTO stemedb_nodes VALUES (%s, %s, %s, clock_timestamp(),"
            " clock_timestamp(), %s) ON CONFLICT (node_id) DO UPDATE SET"
            " advertise_url = excluded.advertise_url, version = excluded.version,"
            " last_heartbeat = excluded.last_heartbeat,"
            " heartbeat_seconds = excluded.heartbeat_seconds",
            (FORGET_SECONDS, node_id, node_id, advertise_url, version, every_seconds),
        )

    def started(self, node_id: str, advertise_url: str, version: str, every: float) -> None:
        """First heartbeat of a (re)started node: its ``started_at`` is now."""
        self._run(
            "heartbeat",
            "DELETE FROM stemedb_nodes WHERE node_id = %s",
            (node_id,),
        )
        self.beat(node_id, advertise_url, version, every)

    def leave(self, node_id: str) -> None:
        """This node stops cleanly: it is no longer part of the cluster."""
        self._run("heartbeat", "DELETE FROM stemedb_nodes WHERE node_id = %s", (node_id,))

    def nodes(self) -> list[ClusterNode]:
        rows = self._run(
            "nodes",
            "SELECT node_id, advertise_url, version, extract(epoch FROM last_heartbeat),"
            " clock_timestamp() - last_heartbeat <= make_interval(secs => %s * heartbeat_seconds)"
            " FROM stemedb_nodes WHERE last_heartbeat >="
            " clock_timestamp() - make_interval(secs => %s) ORDER BY node_id",
            (MISSED_HEARTBEATS, FORGET_SECONDS),
        )
        return [
            ClusterNode(
                node_id=r[0],
                advertise_url=r[1],
                version=r[2],
                last_heartbeat=round(float(r[3]), 6),
                healthy=bool(r[4]),
            )
            for r in rows
        ]

    def replication(self) -> Replication:
        """The server the DSN reaches: primary or standby, and its standbys with lag."""
        head = self._run(
            "replication",
            "SELECT pg_is_in_recovery(), current_setting('synchronous_standby_names'),"
            " coalesce(host(inet_server_addr()), 'local'), current_setting('port')",
        )
        in_recovery, names, host, port = head[0]
        rows: list[tuple[Any, ...]] = []
        if not in_recovery:
            rows = self._run(
                "replication",
                "SELECT application_name, sync_state,"
                " pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,"
                " extract(epoch FROM replay_lag)::float8"
                " FROM pg_stat_replication ORDER BY application_name",
            )
        standbys = [
            Standby(name=r[0], lag_bytes=r[2], lag_seconds=_lag_seconds(r[2], r[3])) for r in rows
        ]
        return Replication(
            primary=f"{host}:{port}",
            in_recovery=bool(in_recovery),
            synchronous_names=str(names),
            standbys=standbys,
            synchronous=[r[0] for r in rows if r[1] in ("sync", "quorum")],
        )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _lag_seconds(lag_bytes: int | None, replay_lag: float | None) -> float | None:
    """``replay_lag`` is null once a standby caught up and no WAL came since: 0 then."""
    if replay_lag is not None:
        return round(replay_lag, 6)
    return 0.0 if lag_bytes == 0 else None


__all__ = ["FORGET_SECONDS", "MISSED_HEARTBEATS", "NodeRegistry", "Replication"]
