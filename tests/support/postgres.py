"""A throwaway PostgreSQL 15 server for the tests of cluster mode (a real one, no mock).

``PostgresServer.start`` runs ``initdb`` and ``pg_ctl`` from Debian's ``postgresql-15``
(``scripts/install-debian-deps.sh``) as the ``postgres`` user when the tests run as
root (PostgreSQL refuses to run as root), on a free loopback port, with its data, socket
and log in a fresh temporary directory. ``database()`` creates an empty database per
test (``database(template=...)``: a copy of a template database, e.g. one with the
StemeDB schema migrated once per session, see ``template``), dropped after the test;
or, with ``drop=False``, only closed and left to go with the server's directory at the
end of the session (a ``DROP DATABASE`` waits for a checkpoint: 0.2 s to over a second
per test on a busy machine). The server keeps PostgreSQL's durability defaults (fsync,
synchronous_commit).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import psycopg
from psycopg import sql

PG_BIN: Final = Path("/usr/lib/postgresql/15/bin")
START_TIMEOUT_SECONDS: Final = 60
SERVER_SETTINGS: Final = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "300",
    "shared_buffers": "128MB",
    "log_min_messages": "warning",
    "log_statement": "none",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def as_postgres(args: list[str]) -> list[str]:
    """``args`` run as the ``postgres`` user when we are root (PostgreSQL will not run as
    root), else as ourselves."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def start_postgres(data: Path, log: Path, port: int, socket_dir: Path) -> None:
    """Start the server of ``data`` (``SERVER_SETTINGS``, loopback ``port``) and wait
    until it accepts connections."""
    options = " ".join(f"-c {k}={v}" for k, v in SERVER_SETTINGS.items())
    options += f" -p {port} -k {socket_dir}"
    subprocess.run(
        as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "-t",
                str(START_TIMEOUT_SECONDS),
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )


def stop_postgres(data: Path) -> None:
    """Stop the server of ``data`` at once (``-m immediate``), if it runs."""
    subprocess.run(
        as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
        check=False,
        capture_output=True,
    )


class PostgresServer:
    """One PostgreSQL server: ``start()``, ``database()`` per test, ``stop()``."""

    def __init__(self, base: Path | None = None) -> None:
        self.base = base or Path(tempfile.mkdtemp(prefix="stemedb-pg-"))
        self.data = self.base / "data"
        self.socket_dir = self.base / "run"
        self.log = self.base / "postgres.log"
        self.port = 0
        self._names = itertools.count(1)
        self._templates: dict[str, str] = {}
        self._template_lock = threading.Lock()

    @property
    def admin_dsn(self) -> str:
        return self.dsn("postgres")

    def dsn(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def start(self) -> PostgresServer:
        _own(self.base)
        self.socket_dir.mkdir()
        _own(self.socket_dir)
        subprocess.run(
            as_postgres(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            check=True,
            capture_output=True,
        )
        self.port = free_port()
        start_postgres(self.data, self.log, self.port, self.socket_dir)
        return self

    def stop(self) -> None:
        if self.data.exists():
            stop_postgres(self.data)
        shutil.rmtree(self.base, ignore_errors=True)

    def create_database(self, template: str | None = None) -> str:
        """A new empty database (or a copy of database ``template``); returns its DSN."""
        name = f"t{next(self._names)}"
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(query)
        return self.dsn(name)

    def template(self, name: str, prepare: Callable[[str], object]) -> str:
        """The template database ``name``, created and passed (by DSN) to ``prepare``
        on first use; later calls return it as it is."""
        with self._template_lock:
            if name not in self._templates:
                with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                prepare(self.dsn(name))
                self._templates[name] = name
            return name

    def drop_database(self, dsn: str) -> None:
        name = dsn.rsplit("dbname=", 1)[1]
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def close_database(self, dsn: str) -> None:
        """Close every connection to the database and refuse new ones (it is dropped
        with the server's directory at ``stop``)."""
        name = dsn.rsplit("dbname=", 1)[1]
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name))
            )
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )

    @contextlib.contextmanager
    def database(self, template: str | None = None, *, drop: bool = True) -> Iterator[str]:
        """A fresh database for one test, dropped (its connections closed) afterwards;
        ``drop=False``: only closed, dropped with the server at the end of the session."""
        dsn = self.create_database(template)
        try:
            yield dsn
        finally:
            if drop:
                self.drop_database(dsn)
            else:
                self.close_database(dsn)
