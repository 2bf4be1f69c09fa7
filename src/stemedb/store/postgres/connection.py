"""Connections to PostgreSQL: DSNs, pools that survive a failover, error translation.

DSNs are libpq connection strings or URLs, multi-host included
(``host=a,b port=5432,5432 target_session_attrs=read-write``): libpq tries the hosts in
order and keeps the first that matches, so after a Patroni failover a new connection
finds the new primary. A pool checks a connection before handing it out (a dead one is
replaced), and a connection error of a read is retried once on a fresh connection;
every connection error reaches the layers above as a ``StorageError`` with
``retryable=True`` (HTTP 503 + Retry-After).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, TypeVar

import psycopg
import psycopg_pool
from psycopg import conninfo

from stemedb.errors import StorageError

Conn = psycopg.Connection[tuple[Any, ...]]
T = TypeVar("T")

CONNECT_TIMEOUT_SECONDS: Final = 5
POOL_TIMEOUT_SECONDS: Final = 10.0
# A connection handed back to the pool this recently is handed out again unchecked: the
# check is a round trip, as much as a view read (measured: half a cached query's time).
RECENTLY_USED_SECONDS: Final = 1.0
DEFAULT_POOL_SIZE: Final = 4
APPLICATION_NAME: Final = "stemedb"
# libpq defaults unless the DSN sets them: give up on an unreachable host after 5 s, and
# notice a dead server (a lost machine, no RST) within ~11 s on an idle connection.
CLIENT_DEFAULTS: Final = {
    "connect_timeout": "5",
    "application_name": APPLICATION_NAME,
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
}
# Per session, on the server: a batch whose node vanished mid-transaction must not hold
# the LSN row lock (and so every node's commits) until TCP gives up on it.
SESSION_SETTINGS: Final = (
    "SET idle_in_transaction_session_timeout = '30s'",
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
)


def _with_defaults(dsn: str, target: str | None) -> str:
    given = conninfo.conninfo_to_dict(dsn)
    if target == "read-write":
        if given.get("target_session_attrs") in (None, "any", "prefer-standby", "standby"):
            given["target_session_attrs"] = "read-write"
    elif target is not None:
        given.setdefault("target_session_attrs", target)
    for key, value in CLIENT_DEFAULTS.items():
        given.setdefault(key, value)
    return conninfo.make_conninfo(**{k: str(v) for k, v in given.items() if v is not None})


def primary_dsn(dsn: str) -> str:
    """The DSN for writes: a read-write server, whatever the caller's hosts."""
    return _with_defaults(dsn, "read-write")


def replica_dsn(dsn: str) -> str:
    """The DSN for reads from a standby when there is one (the primary otherwise)."""
    return _with_defaults(dsn, "prefer-standby")


def redact(dsn: str) -> str:
    """``dsn`` without its password, for messages."""
    try:
        given = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable DSN>"
    if "password" in given:
        given["password"] = "***"
    return conninfo.make_conninfo(**{k: str(v) for k, v in given.items() if v is not None})


def is_connection_error(exc: BaseException) -> bool:
    """A broken or unreachable server (retry on another connection), not a bad query."""
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return True
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return not isinstance(exc, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable)
    # A standby being promoted, a primary shutting down, a read-only transaction on a
    # former primary: all go away with a new connection.
    return isinstance(
        exc,
        psycopg.errors.AdminShutdown
        | psycopg.errors.CannotConnectNow
        | psycopg.errors.ReadOnlySqlTransaction
        | psycopg.errors.CrashShutdown,
    )


def translate_error(exc: BaseException, operation: str) -> StorageError:
    """The ``StorageError`` of a psycopg error raised during ``operation``."""
    if isinstance(exc, StorageError):
        return exc
    if is_connection_error(exc):
        return StorageError(
            f"store {operation} failed: PostgreSQL is unavailable ({_first_line(exc)})",
            code="postgres_unavailable",
            retryable=True,
        )
    if isinstance(exc, psycopg.errors.DiskFull):
        return StorageError(f"store {operation} failed: disk full", code="disk_full")
    if isinstance(exc, psycopg.errors.SerializationFailure | psycopg.errors.DeadlockDetected):
        return StorageError(
            f"store {operation} failed: {_first_line(exc)}", code="store_busy", retryable=True
        )
    if isinstance(exc, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable):
        return StorageError(
            f"store {operation} failed: {_first_line(exc)}", code="store_busy", retryable=True
        )
    if isinstance(exc, psycopg.IntegrityError):
        return StorageError(
            f"store {operation} failed: {_first_line(exc)}", code="store_conflict", retryable=False
        )
    return StorageError(
        f"store {operation} failed: {_first_line(exc)}", code="store_error", retryable=False
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def connect(dsn: str, *, autocommit: bool = True) -> Conn:
    """One connection to the primary (migrations, the watcher)."""
    conn = psycopg.connect(primary_dsn(dsn), autocommit=autocommit)
    if autocommit:
        configure(conn)
    return conn


def configure(conn: Conn) -> None:
    for statement in SESSION_SETTINGS:
        conn.execute(statement)


class Pool:
    """A ``psycopg_pool.ConnectionPool`` of autocommit connections to one DSN.

    ``connection()`` yields a connection checked just now (writes); ``run(operation,
    fn)`` runs ``fn`` on one, checked first unless it was handed back less than
    ``RECENTLY_USED_SECONDS`` ago, and after a connection error checks every idle
    connection of the pool (a failover breaks them all) and retries once (reads only:
    ``fn`` must be idempotent); errors come out as ``StorageError``."""

    def __init__(self, dsn: str, *, size: int, name: str) -> None:
        self.dsn = dsn
        self._closed = False
        self._lock = threading.Lock()
        self._returned: weakref.WeakKeyDictionary[Conn, float] = weakref.WeakKeyDictionary()
        self._pool = psycopg_pool.ConnectionPool(
            dsn,
            min_size=1,
            max_size=max(1, size),
            kwargs={"autocommit": True},
            configure=configure,
            check=self._check,
            reset=self._handed_back,
            timeout=POOL_TIMEOUT_SECONDS,
            name=name,
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=POOL_TIMEOUT_SECONDS)
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close()
            raise StorageError(
                f"cannot connect to PostgreSQL at {redact(dsn)} within"
                f" {POOL_TIMEOUT_SECONDS:.0f} s",
                code="postgres_unavailable",
                retryable=True,
            ) from exc

    def _handed_back(self, conn: Conn) -> None:
        self._returned[conn] = time.monotonic()

    def _check(self, conn: Conn) -> None:
        returned = self._returned.get(conn)
        if returned is None or time.monotonic() - returned > RECENTLY_USED_SECONDS:
            psycopg_pool.ConnectionPool.check_connection(conn)

    @contextmanager
    def connection(self) -> Iterator[Conn]:
        """A connection checked just now, for writes (they are not retried): after a
        failover the first batch must not fail on a connection that broke with it."""
        for attempt in (1, 2):
            with self._pool.connection() as conn:
                try:
                    psycopg_pool.ConnectionPool.check_connection(conn)
                except psycopg.OperationalError:
                    if attempt == 2:
                        raise
                    self._pool.check()  # the broken one is discarded on its way back
                    continue
                yield conn
                return

    def run(self, operation: str, fn: Callable[[Conn], T]) -> T:
        for attempt in (1, 2):
            try:
                with self._pool.connection() as conn:
                    return fn(conn)
            except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                if attempt == 1 and is_connection_error(exc):
                    self._pool.check()  # drops the idle connections that broke with it
                    continue
                raise translate_error(exc, operation) from exc
        raise AssertionError("unreachable")

    def stats(self) -> dict[str, int]:
        return dict(self._pool.get_stats())

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._pool.close()
