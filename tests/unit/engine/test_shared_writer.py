"""Cluster mode's commit step (``Engine.shared``): two engines on one PostgreSQL
database stand for two nodes (each with its own store, pool and watcher), as in
``tests/cluster/test_two_nodes.py`` but in one process, so the failures are exact."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.engines import engine_for_test

from stemedb.engine import Engine, WriteResult
from stemedb.errors import StemeError, StorageError
from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey, sign_assertion
from stemedb.sys.faults import FakeClock

T0 = 1_700_000_000
SUBJECT = "drugs/semaglutide"
PREDICATE = "gastroparesis_risk"
WAIT_SECONDS = 10.0

Node = Callable[..., Engine]


@pytest.fixture
def node(postgres_store_dsn: str, tmp_path: Path) -> Iterator[Node]:
    """``node(clock=…)``: one more engine ("node") on the test's database."""
    opened: list[Engine] = []

    def open_node(**settings: Any) -> Engine:
        settings.setdefault("clock", FakeClock(float(T0)))
        engine = engine_for_test(
            tmp_path / f"node{len(opened)}",
            postgres_dsn=postgres_store_dsn,
            group_commit_max_delay_us=0,
            **settings,
        )
        opened.append(engine)
        return engine

    yield open_node
    for engine in reversed(opened):
        engine.close()


def claim(value: str, *, seed: int = 1, subject: str = SUBJECT) -> Assertion:
    return sign_assertion(
        AgentKey.from_seed(bytes([seed]) * 32),
        subject=subject,
        predicate=PREDICATE,
        object=value,
        confidence=0.8,
        timestamp=T0 - 100,
    )


def ok(result: WriteResult | StemeError) -> WriteResult:
    assert isinstance(result, WriteResult), result
    return result


def test_a_write_through_one_node_reaches_the_other_with_its_lsn_and_a_listener_call(
    node: Node,
) -> None:
    a, b = node(), node()
    heard: list[int] = []
    b.add_commit_listener(lambda lsn, touched: heard.append(lsn))
    written = a.write(claim("rare"))
    assert written.status == "created" and written.lsn == 1
    assert b.wait_for_lsn(written.lsn, WAIT_SECONDS) >= written.lsn
    assert b.applied_lsn == a.applied_lsn == 1
    assert 1 in heard  # b's feed and views hear of a's commit
    found = b.store.assertion(written.id)
    assert found is not None and found[0] == 1


def test_the_same_record_through_two_nodes_at_once_is_created_once_and_exists_once(
    node: Node,
) -> None:
    a, b = node(), node()
    for round_ in range(10):
        record = claim(f"value-{round_}")
        results: list[WriteResult] = []
        start = threading.Barrier(2)

        threads = [
            threading.Thread(target=_write_at_once, args=(e, record, start, results))
            for e in (a, b)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(r.status for r in results) == ["created", "exists"]
        assert len({(r.id, r.lsn) for r in results}) == 1  # the same LSN for both
    assert a.store.counts()["assertions"] == 10


def test_concurrent_batches_of_two_nodes_get_contiguous_lsns_in_commit_order(
    node: Node,
) -> None:
    a, b = node(), node()
    acknowledged: list[int] = []
    lock = threading.Lock()

    def write(engine: Engine, seed: int) -> None:
        for i in range(20):
            records = [
                claim(f"{seed}-{i}-{j}", seed=seed, subject=f"s/{seed}/{j}") for j in range(5)
            ]
            lsns = [ok(r).lsn for r in engine.write_many(records)]
            assert lsns == list(range(lsns[0], lsns[0] + 5))  # one batch, in order
            with lock:
                acknowledged.extend(lsns)

    threads = [threading.Thread(target=write, args=(e, s)) for e, s in ((a, 1), (b, 2))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(acknowledged) == list(range(1, 201))  # no gap, no LSN twice
    changes = a.store.changes(0, 1000)
    assert [c.lsn for c in changes] == list(range(1, 201))
    times = [row[3] for row in _committed_at(a)]
    assert times == sorted(times)


def test_committed_at_never_goes_back_when_a_node_clock_is_behind(node: Node) -> None:
    ahead = node(clock=FakeClock(float(T0 + 3600)))
    behind = node(clock=FakeClock(float(T0)))
    first = ahead.write(claim("first"))
    second = behind.write(claim("second"))
    assert second.lsn == first.lsn + 1
    (_, _, _, at_first), (_, _, _, at_second) = _committed_at(ahead)
    assert at_first == at_second == T0 + 3600  # max(clock, the previous commit's time)


def test_a_failed_batch_transaction_is_a_retryable_storage_error_and_leaves_nothing(
    node: Node, postgres_store_dsn: str
) -> None:
    engine = node()
    ok(engine.write_many([claim("before")])[0])
    with psycopg.connect(postgres_store_dsn, autocommit=True) as pg:
        pg.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
        )
        pg.execute("CREATE TRIGGER refuse BEFORE INSERT ON changes EXECUTE FUNCTION refuse()")
        with pytest.raises(StorageError) as raised:
            engine.write(claim("refused"))
        assert raised.value.retryable and raised.value.status == 503
        pg.execute("DROP TRIGGER refuse ON changes")
        row = pg.execute("SELECT last_lsn FROM stemedb_lsn").fetchone()
        assert row is not None and row[0] == 1  # the counter rolled back with the rows
    retried = engine.write(claim("refused"))
    assert (retried.status, retried.lsn) == ("created", 2)


def test_wait_readable_waits_for_another_nodes_commit_and_gives_up_in_time(node: Node) -> None:
    a, b = node(), node()
    assert not b.wait_readable(1, 0.2)  # nobody committed LSN 1 yet
    lsn = a.write(claim("x")).lsn
    assert b.wait_readable(lsn, WAIT_SECONDS)
    assert b.committed_lsn() == lsn


def _write_at_once(
    engine: Engine, record: Assertion, start: threading.Barrier, results: list[WriteResult]
) -> None:
    start.wait()
    results.append(engine.write(record))


def _committed_at(engine: Engine) -> list[tuple[int, int, str, float]]:
    """(lsn, kind, ref, committed_at) of every change row, in LSN order."""
    return [(c.lsn, c.kind, c.ref, c.committed_at) for c in engine.store.changes(0, 1000)]


def test_a_node_reading_from_replicas_reads_another_nodes_write_after_wait_readable(
    node: Node, postgres_store_dsn: str
) -> None:
    """``read_from = "replica"``: a second pool with ``prefer-standby`` (here no standby
    runs, so it lands on the primary, as it does in a cluster whose standbys are down)."""
    from stemedb.engine import EngineSettings
    from stemedb.store.postgres import PostgresStore

    a = node()
    store = PostgresStore(postgres_store_dsn, read_from="replica")
    b = Engine.shared(store, EngineSettings(group_commit_max_delay_us=0))
    try:
        written = a.write(claim("replicated"))
        assert b.wait_readable(written.lsn, WAIT_SECONDS)
        assert b.store.assertion(written.id) is not None
        assert ok(b.write_many([claim("through b")])[0]).lsn == written.lsn + 1
    finally:
        b.close()
