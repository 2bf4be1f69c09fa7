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
DEFAULT_POOL_SIZE: Final = 4
APPLICATION_NAME: Final = "stemedb"


def with_params(dsn: str, **params: str) -> str:
    """``dsn`` with ``params`` set (kept when the DSN sets them already)."""
    given = conninfo.conninfo_to_dict(dsn)
    for key, value in params.items():
        given.setdefault(key, value)
    return conninfo.make_conninfo(**{k: str(v) for k, v in given.items() if v is not None})


def primary_dsn(dsn: str) -> str:
    """The DSN for writes: a read-write server, whatever the caller's hosts."""
    given = conninfo.conninfo_to_dict(dsn)
    if given.get("target_session_attrs") in (None, "any", "prefer-standby", "standby"):
        given["target_session_attrs"] = "read-write"
    given.setdefault("connect_timeout", str(CONNECT_TIMEOUT_SECONDS))
    given.setdefault("application_name", APPLICATION_NAME)
    return conninfo.make_conninfo(**{k: str(v) for k, v in given.items() if v is not None})


def replica_dsn(dsn: str) -> str:
    """The DSN for reads from a standby when there is one (the primary otherwise)."""
    given = conninfo.conninfo_to_dict(dsn)
    given.setdefault("target_session_attrs", "prefer-standby")
    given.setdefault("connect_timeout", str(CONNECT_TIMEOUT_SECONDS))
    given.setdefault("application_name", APPLICATION_NAME)
    return conninfo.make_conninfo(**{k: str(v) for k, v in given.items() if v is not None})


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
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return StorageError(
            f"store {operation} failed: statement timeout", code="store_busy", retryable=True
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
    """One connection (migrations, the watcher)."""
    return psycopg.connect(primary_dsn(dsn), autocommit=autocommit)


def _configure(conn: Conn) -> None:
    conn.execute("SET TIME ZONE 'UTC'")


class Pool:
    """A ``psycopg_pool.ConnectionPool`` of autocommit connections to one DSN.

    ``connection()`` yields a checked connection; ``run(operation, fn)`` runs ``fn`` on
    one and retries it once on a fresh connection after a connection error (reads
    only: ``fn`` must be idempotent); errors come out as ``StorageError``."""

    def __init__(self, dsn: str, *, size: int, name: str) -> None:
        self.dsn = dsn
        self._closed = False
        self._lock = threading.Lock()
        self._pool = psycopg_pool.ConnectionPool(
            dsn,
            min_size=1,
            max_size=max(1, size),
            kwargs={"autocommit": True},
            configure=_configure,
            check=psycopg_pool.ConnectionPool.check_connection,
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

    @contextmanager
    def connection(self) -> Iterator[Conn]:
        with self._pool.connection() as conn:
            yield conn

    def run(self, operation: str, fn: Callable[[Conn], T]) -> T:
        for attempt in (1, 2):
            try:
                with self._pool.connection() as conn:
                    return fn(conn)
            except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                if attempt == 1 and is_connection_error(exc):
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
