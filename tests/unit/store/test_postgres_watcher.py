"""Cross-node notifications: a store's watcher learns about every other store's commits
(by ``NOTIFY``, or by its poll when a notification is lost), refreshes its memory state
and cache, and calls its listeners; connection errors are retryable ``StorageError``s
and the pools recover from dead connections."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from support.postgres import free_port

from stemedb.errors import StorageError
from stemedb.model.ids import record_id
from stemedb.model.kinds import KIND_OF_TYPE, AnyRecord, Entry
from stemedb.model.signing import AgentKey, sign_assertion, sign_retraction, sign_source
from stemedb.store.cache import SubjectPredicate
from stemedb.store.postgres import PostgresStore
from stemedb.store.postgres.apply import LOCK_LSN_ROW, Batch
from stemedb.store.postgres.lookups import Lookups

T0 = 1_700_000_000
OpenPgStore = Callable[..., PostgresStore]  # the open_pg_store fixture
KEY = AgentKey.from_seed(bytes([9]) * 32)
WAIT_SECONDS = 10.0


class Calls:
    def __init__(self) -> None:
        self.calls: list[tuple[int, set[SubjectPredicate]]] = []
        self.cond = threading.Condition()

    def __call__(self, lsn: int, touched: set[SubjectPredicate]) -> None:
        with self.cond:
            self.calls.append((lsn, touched))
            self.cond.notify_all()

    def wait_for(self, lsn: int, timeout: float = WAIT_SECONDS) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.calls and self.calls[-1][0] >= lsn, timeout)

    def touched(self) -> set[SubjectPredicate]:
        return set().union(*(t for _, t in self.calls))


def entry(lsn: int, record: AnyRecord) -> Entry:
    return Entry(lsn, KIND_OF_TYPE[type(record)], record_id(record), record, float(T0))


def claim(value: str, subject: str = "s/1", source_hash: str | None = None) -> AnyRecord:
    return sign_assertion(
        KEY,
        subject=subject,
        predicate="p",
        object=value,
        confidence=0.5,
        timestamp=T0,
        source_hash=source_hash,
    )


def test_a_commit_through_another_store_reaches_the_watcher_by_notify(
    open_pg_store: OpenPgStore,
) -> None:
    writer = open_pg_store()
    reader = open_pg_store(watch=True, poll_ms=60_000)  # only a NOTIFY can wake it in time
    calls = Calls()
    reader.add_commit_listener(calls)
    assert reader._watcher is not None and reader._watcher.connected.wait(WAIT_SECONDS)
    key = ("s/1", "p")
    reader.cache.put("q", "old answer", key, generation=reader.cache.generation)
    source = sign_source(KEY, uri="doi:x", content="x", timestamp=T0)
    started = time.monotonic()
    writer.apply([entry(1, claim("a", source_hash=source.source_hash)), entry(2, source)])
    calls.wait_for(2)
    assert time.monotonic() - started < 5.0
    assert reader.cache.get("q") is None
    assert reader.seen_lsn() == 2
    retraction = sign_retraction(KEY, source_hash=source.source_hash, reason="no", timestamp=T0)
    writer.apply([entry(3, retraction), entry(4, claim("b", subject="s/2"))])
    calls.wait_for(4)
    assert reader.retracted_sources() == {source.source_hash: 3}
    assert calls.touched() == {key, ("s/2", "p")}
    assert [lsn for lsn, _ in calls.calls] == sorted({lsn for lsn, _ in calls.calls})


def test_a_lost_notification_is_made_up_for_by_the_poll(
    open_pg_store: OpenPgStore, postgres_store_dsn: str
) -> None:
    reader = open_pg_store(watch=True, poll_ms=200)
    calls = Calls()
    reader.add_commit_listener(calls)
    assert reader._watcher is not None and reader._watcher.connected.wait(WAIT_SECONDS)
    # A commit that sends no NOTIFY (as one sent while the watcher reconnects is lost).
    with psycopg.connect(postgres_store_dsn, autocommit=True) as conn:
        conn.execute("BEGIN")
        row = conn.execute(LOCK_LSN_ROW).fetchone()
        assert row is not None
        batch = Batch(conn, Lookups(), int(row[0]), float(row[1]))
        batch.apply([entry(1, claim("silent", subject="s/quiet"))])
        conn.execute("UPDATE stemedb_lsn SET last_lsn = 1 WHERE id = 1")
        conn.execute("COMMIT")
    started = time.monotonic()
    calls.wait_for(1)
    assert time.monotonic() - started < 2.0  # poll_ms + a catch-up query
    assert calls.calls == [(1, {("s/quiet", "p")})]


def test_the_watcher_reconnects_after_its_connection_is_killed(
    open_pg_store: OpenPgStore, postgres_store_dsn: str
) -> None:
    writer = open_pg_store()
    reader = open_pg_store(watch=True, poll_ms=200)
    calls = Calls()
    reader.add_commit_listener(calls)
    watcher = reader._watcher
    assert watcher is not None and watcher.connected.wait(WAIT_SECONDS)
    with psycopg.connect(postgres_store_dsn, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    writer.apply([entry(1, claim("after the kill"))])
    calls.wait_for(1)
    assert watcher.reconnects >= 1


def test_reads_and_batches_recover_when_every_connection_was_killed(
    open_pg_store: OpenPgStore, postgres_store_dsn: str
) -> None:
    store = open_pg_store()
    store.apply([entry(1, claim("a"))])
    with psycopg.connect(postgres_store_dsn, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    assert store.applied_lsn() == 1  # a dead pooled connection is replaced
    store.apply([entry(2, claim("b"))])
    assert [c.lsn for c in store.changes(0, 10)] == [1, 2]


def test_an_unreachable_server_is_a_retryable_storage_error(tmp_path: Path) -> None:
    dsn = f"host=127.0.0.1 port={free_port()} user=postgres dbname=x connect_timeout=2"
    with pytest.raises(StorageError) as caught:
        PostgresStore(dsn, watch=False, path=tmp_path)
    assert caught.value.retryable
    assert caught.value.code == "postgres_unavailable"


def test_wait_for_lsn_returns_once_visible_and_times_out_retryably(
    open_pg_store: OpenPgStore,
) -> None:
    store = open_pg_store(read_from="replica")  # no standby here: prefer-standby = primary
    store.apply([entry(1, claim("a"))])
    assert store.wait_for_lsn(1, 1.0) == 1
    with pytest.raises(StorageError) as caught:
        store.wait_for_lsn(5, 0.1)
    assert caught.value.code == "lsn_wait_timeout" and caught.value.retryable
