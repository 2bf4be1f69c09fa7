"""The batch transaction of the PostgreSQL store: LSNs under the lock of one row, so two
stores (two nodes) writing at once get contiguous LSNs in commit order."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psycopg
import pytest

from stemedb.engine.checks import BatchChecker
from stemedb.errors import StorageError
from stemedb.model.ids import record_id
from stemedb.model.kinds import KIND_OF_TYPE, Entry, RecordKind
from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey, sign_assertion
from stemedb.store.postgres import PostgresStore
from stemedb.store.protocol import SharedStore

T0 = 1_700_000_000
OpenPgStore = Callable[..., PostgresStore]  # the open_pg_store fixture
KEY = AgentKey.from_seed(bytes([7]) * 32)


def claim(value: str, subject: str = "s/1") -> Assertion:
    return sign_assertion(
        KEY, subject=subject, predicate="p", object=value, confidence=0.5, timestamp=T0
    )


def entry(lsn: int, record: Assertion, at: float) -> Entry:
    return Entry(lsn, KIND_OF_TYPE[type(record)], record_id(record), record, at)


def test_the_postgres_store_is_a_shared_store(open_pg_store: OpenPgStore) -> None:
    store: SharedStore = open_pg_store()
    assert store.backend == "postgres"


def test_a_batch_continues_the_lsns_and_commit_times_of_the_last_committed_batch(
    open_pg_store: OpenPgStore,
) -> None:
    a, b = open_pg_store(), open_pg_store()
    with a.batch() as batch:
        assert (batch.last_lsn, batch.last_committed_at) == (0, 0.0)
        assert batch.apply([entry(1, claim("x"), T0 + 5.0)]) == {("s/1", "p")}
    with b.batch() as batch:
        assert (batch.last_lsn, batch.last_committed_at) == (1, T0 + 5.0)
        batch.apply([entry(2, claim("y", "s/2"), T0 + 5.0)])
        batch.apply([entry(3, claim("z", "s/3"), T0 + 6.0)])  # a second call continues
        assert batch.last_lsn == 3
        assert batch.touched == {("s/2", "p"), ("s/3", "p")}
    assert a.applied_lsn() == b.applied_lsn() == 3
    assert [c.lsn for c in a.changes(0, 10)] == [1, 2, 3]


def test_a_batch_refuses_lsns_that_do_not_follow_or_commit_times_that_go_back(
    open_pg_store: OpenPgStore,
) -> None:
    store = open_pg_store()
    store.apply([entry(1, claim("x"), T0 + 5.0)])
    for bad in ([entry(1, claim("y"), T0 + 5.0)], [entry(2, claim("y"), T0 + 4.0)]):
        with pytest.raises(StorageError) as caught, store.batch() as batch:
            batch.apply(bad)
        assert caught.value.code == "lsn_out_of_order"
    assert store.applied_lsn() == 1


def test_an_exception_in_the_block_rolls_back_the_rows_and_the_counter(
    open_pg_store: OpenPgStore,
) -> None:
    store = open_pg_store()
    with pytest.raises(RuntimeError), store.batch() as batch:
        batch.apply([entry(1, claim("x"), T0)])
        assert batch.assertion_lsns([record_id(claim("x"))]) == {record_id(claim("x")): 1}
        raise RuntimeError("the checks failed")
    assert store.applied_lsn() == 0
    assert store.counts()["assertions"] == 0
    with store.batch() as batch:
        assert batch.last_lsn == 0


def test_the_lookups_of_a_batch_see_its_own_rows_and_what_others_committed(
    open_pg_store: OpenPgStore,
) -> None:
    a, b = open_pg_store(), open_pg_store()
    first = claim("x")
    a.apply([entry(1, first, T0)])
    with b.batch() as batch:
        checker = BatchChecker(batch)  # type: ignore[arg-type]
        # The other node's committed row: a duplicate, answered `exists` with its LSN.
        found = checker.check(RecordKind.ASSERTION, record_id(first), first)
        assert found is not None and getattr(found, "lsn", None) == 1
        second = claim("y")
        batch.apply([entry(2, second, T0)])
        assert batch.record_lsn(RecordKind.ASSERTION, record_id(second)) == 2
        assert [c.lsn for c in batch.changes(0, 10)] == [1, 2]


def test_concurrent_batches_of_two_stores_commit_one_after_the_other(
    open_pg_store: OpenPgStore,
) -> None:
    a, b = open_pg_store(), open_pg_store()
    order: list[str] = []
    inside = threading.Event()

    def slow_batch() -> None:
        with a.batch() as batch:
            inside.set()
            time.sleep(0.3)
            batch.apply([entry(batch.last_lsn + 1, claim("a"), T0)])
            order.append("a")

    thread = threading.Thread(target=slow_batch)
    thread.start()
    assert inside.wait(5)
    with b.batch() as batch:  # waits for a's COMMIT, then sees its LSN
        order.append("b")
        assert batch.last_lsn == 1
        batch.apply([entry(2, claim("b"), T0)])
    thread.join()
    assert order == ["a", "b"]
    assert [c.lsn for c in b.changes(0, 10)] == [1, 2]


def test_many_writers_get_contiguous_lsns_and_lose_nothing(open_pg_store: OpenPgStore) -> None:
    stores = [open_pg_store(), open_pg_store(), open_pg_store()]
    written: list[str] = []
    lock = threading.Lock()

    def write(store: PostgresStore, n: int) -> None:
        for i in range(10):
            record = claim(f"{n}-{i}", subject=f"s/{n}")
            with store.batch() as batch:
                at = max(float(T0), batch.last_committed_at)
                batch.apply([entry(batch.last_lsn + 1, record, at)])
            with lock:
                written.append(record_id(record))

    threads = [threading.Thread(target=write, args=(s, n)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    changes = stores[0].changes(0, 100)
    assert [c.lsn for c in changes] == list(range(1, 31))
    assert sorted(c.ref for c in changes) == sorted(written)


def test_a_commit_notifies_listeners_of_every_store_with_its_last_lsn(
    open_pg_store: OpenPgStore, postgres_store_dsn: str
) -> None:
    with psycopg.connect(postgres_store_dsn, autocommit=True) as listener:
        listener.execute("LISTEN stemedb_commit")
        store = open_pg_store()
        store.apply([entry(1, claim("x"), T0), entry(2, claim("y"), T0)])
        with store.batch():
            pass  # nothing applied: no LSN, no notification
        payloads = [n.payload for n in listener.notifies(timeout=1.0, stop_after=1)]
        payloads += [n.payload for n in listener.notifies(timeout=0.3)]
    assert payloads == ["2"]


def test_a_batch_is_acknowledged_only_after_commit_and_own_cache_is_dropped(
    open_pg_store: OpenPgStore,
) -> None:
    store = open_pg_store()
    key = ("s/1", "p")
    store.cache.put("q", 1, key, generation=store.cache.generation)
    with store.batch() as batch:
        batch.apply([entry(1, claim("x"), T0)])
        assert store.cache.get("q") == 1  # not committed yet
        other = open_pg_store()
        assert other.applied_lsn() == 0  # invisible until COMMIT
    assert store.cache.get("q") is None
    assert other.applied_lsn() == 1
