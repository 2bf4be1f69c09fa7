"""Reads from a real streaming standby (``read_from="replica"``): writes go to the
primary, queries to the standby, ``wait_for_lsn`` waits until it has replayed a write,
and the watcher refreshes the cache only once the standby shows the commit. Also a
multi-host DSN whose first host is down."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from support.postgres import (
    PG_BIN,
    PostgresServer,
    _own,
    as_postgres,
    free_port,
    start_postgres,
    stop_postgres,
)

from stemedb.model.ids import record_id
from stemedb.model.kinds import KIND_OF_TYPE, Entry
from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey, sign_assertion
from stemedb.store.postgres import PostgresStore

T0 = 1_700_000_000
KEY = AgentKey.from_seed(bytes([11]) * 32)

OpenPgStore = Callable[..., PostgresStore]  # the open_pg_store fixture


class Standby:
    """A hot standby of the session's server (``pg_basebackup -R``), on its own port."""

    def __init__(self, primary: PostgresServer, base: Path) -> None:
        self.primary = primary
        self.base = base
        self.data = base / "standby"
        self.port = 0

    def start(self) -> Standby:
        _own(self.base)
        subprocess.run(
            as_postgres(
                [
                    str(PG_BIN / "pg_basebackup"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.primary.port),
                    "-U",
                    "postgres",
                    "-D",
                    str(self.data),
                    "-R",
                    "-X",
                    "stream",
                ]
            ),
            check=True,
            capture_output=True,
        )
        self.port = free_port()
        # A hot standby needs at least the primary's max_connections (and so on): the
        # same SERVER_SETTINGS.
        start_postgres(self.data, self.base / "standby.log", self.port, self.base)
        return self

    def dsn(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def stop(self) -> None:
        stop_postgres(self.data)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def standby(postgres_server: PostgresServer) -> Iterator[Standby]:
    # Not under pytest's tmp dir: the postgres user must reach it.
    node = Standby(postgres_server, Path(tempfile.mkdtemp(prefix="stemedb-pg-standby-")))
    node.start()
    yield node
    node.stop()


def claim(value: str) -> Assertion:
    return sign_assertion(
        KEY, subject="r/1", predicate="p", object=value, confidence=0.5, timestamp=T0
    )


def entry(lsn: int, record: Assertion) -> Entry:
    return Entry(lsn, KIND_OF_TYPE[type(record)], record_id(record), record, float(T0))


def _replica_dsn(standby: Standby, primary_dsn: str) -> str:
    return standby.dsn(primary_dsn.rsplit("dbname=", 1)[1])


def _wait_replayed(dsn: str) -> None:
    """The standby has the database (CREATE DATABASE replays asynchronously)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(dsn, connect_timeout=2) as conn:
                conn.execute("SELECT 1 FROM stemedb_lsn")
                return
        except psycopg.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_queries_read_the_standby_and_wait_for_lsn_gives_read_your_writes(
    open_pg_store: OpenPgStore, postgres_store_dsn: str, standby: Standby
) -> None:
    replica = _replica_dsn(standby, postgres_store_dsn)
    _wait_replayed(replica)
    store = open_pg_store(read_from="replica", read_dsn=replica)
    with psycopg.connect(replica) as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    assert row == (True,)
    store.apply([entry(1, claim("a"))])  # on the primary
    assert store.wait_for_lsn(1, 10.0) >= 1
    assert [r.value_key for r in store.candidates("r/1", "p")] == ["text:a"]
    assert store.read_lsn() >= 1
    # Writes never go to the standby, even when the DSN names only it for reads.
    store.apply([entry(2, claim("b"))])
    assert store.wait_for_lsn(2, 10.0) >= 2
    assert len(store.candidates("r/1", "p")) == 2


def test_the_watcher_of_a_replica_reader_refreshes_once_the_standby_shows_the_commit(
    open_pg_store: OpenPgStore, postgres_store_dsn: str, standby: Standby
) -> None:
    replica = _replica_dsn(standby, postgres_store_dsn)
    _wait_replayed(replica)
    writer = open_pg_store()
    reader = open_pg_store(read_from="replica", read_dsn=replica, watch=True, poll_ms=200)
    seen: list[int] = []
    reader.add_commit_listener(lambda lsn, touched: seen.append(lsn))
    writer.apply([entry(1, claim("a"))])
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen and seen[-1] >= 1
    assert reader.candidates("r/1", "p")  # what the listener announced is readable


def test_a_multi_host_dsn_skips_a_dead_first_host(
    postgres_store_dsn: str, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    dbname = postgres_store_dsn.rsplit("dbname=", 1)[1]
    dsn = (
        f"host=127.0.0.1,127.0.0.1 port={free_port()},{postgres_server.port} user=postgres"
        f" dbname={dbname} target_session_attrs=read-write"
    )
    store = PostgresStore(dsn, watch=False, pool_size=1, path=tmp_path)
    try:
        store.apply([entry(1, claim("a"))])
        assert store.applied_lsn() == 1
    finally:
        store.close()
