"""``stemedb cluster import``: a real embedded engine's WAL into a real PostgreSQL, with
the state hashes compared, a re-run, interrupted runs resumed and wrong databases
refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stemedb.engine import Engine, EngineSettings, WriteResult
from stemedb.errors import StorageError
from stemedb.model.ids import record_id
from stemedb.model.records import Assertion
from stemedb.model.signing import (
    AgentKey,
    cosign,
    sign_assertion,
    sign_epoch,
    sign_retraction,
    sign_source,
    sign_supersession,
    sign_vote,
)
from stemedb.ops.cluster_import import BATCH_DELAY_FAILPOINT, import_wal
from stemedb.store.postgres import PostgresStore, migrate
from stemedb.store.sqlite import SqliteStore

KEYS = [AgentKey.from_seed(bytes([index + 40]) * 32) for index in range(3)]
CLI_TIMEOUT_SECONDS = 120


def claim(index: int, *, key: int = 0, **fields: Any) -> Assertion:
    values: dict[str, Any] = {
        "subject": f"import/subject-{index % 23}",
        "predicate": f"p{index % 3}",
        "object": f"value-{index}",
        "confidence": 0.5,
        "timestamp": int(time.time()) - 60,
    }
    values.update(fields)
    return sign_assertion(KEYS[key], **values)


def write_history(engine: Engine, plain: int, *, first: int = 0) -> None:
    """Every record kind once, then ``plain`` assertions in batches of 25."""
    now = int(time.time()) - 60
    source = sign_source(KEYS[0], uri=f"doi:10/{first}", content="trial", timestamp=now)
    bad = sign_source(KEYS[1], uri=f"doi:10/bad-{first}", content="fraud", timestamp=now)
    assert all(isinstance(r, WriteResult) for r in engine.write_many([source, bad]))
    a = claim(first, source_hash=source.source_hash)
    b = claim(first + 1, key=1, source_hash=bad.source_hash)
    epoch = sign_epoch(KEYS[0], name=f"v{first}", timestamp=now)
    ids = [r.id for r in engine.write_many([a, b, epoch]) if isinstance(r, WriteResult)]
    kinds: list[Any] = [
        cosign(KEYS[2], ids[0], signed_at=now),
        sign_vote(KEYS[2], assertion_id=ids[0], weight=0.9, timestamp=now),
        sign_supersession(KEYS[0], old=ids[1], new=ids[0], reason="merged", timestamp=now),
        sign_retraction(KEYS[1], source_hash=bad.source_hash, reason="fraud", timestamp=now),
        claim(first + 2, epoch=record_id(epoch)),
    ]
    for record in kinds:
        assert isinstance(engine.write(record), WriteResult)
    for start in range(first + 3, first + 3 + plain, 25):
        batch = [claim(i) for i in range(start, min(start + 25, first + 3 + plain))]
        assert all(isinstance(r, WriteResult) for r in engine.write_many(batch))


def embedded_node(data_dir: Path, plain: int, *, first: int = 0) -> tuple[int, str]:
    """A stopped embedded node with a history; its (last LSN, state hash)."""
    with Engine.embedded(data_dir, EngineSettings(fsync=False)) as engine:
        write_history(engine, plain, first=first)
        return engine.store.state_hash()


@pytest.fixture
def dsn(postgres_dsn: str) -> str:
    """An empty database with the StemeDB schema (``stemedb db migrate``'s work)."""
    migrate(postgres_dsn)
    return postgres_dsn


def database(dsn: str) -> PostgresStore:
    return PostgresStore(dsn, watch=False)


def database_point(dsn: str) -> tuple[int, str]:
    store = database(dsn)
    try:
        return store.state_hash()
    finally:
        store.close()


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without STEMEDB_* settings, plus ``extra``."""
    plain = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    return {**plain, "COLUMNS": "200", **extra}


def stemedb(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("stemedb")), *args],
        env=environment(**(env or {})),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


def cluster_import(data_dir: Path, dsn: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return stemedb("cluster", "import", "--data-dir", str(data_dir), "--dsn", dsn, *extra)


def changes(store: SqliteStore | PostgresStore) -> list[tuple[int, int, str, float]]:
    """(LSN, kind, record, commit time) of every change, in LSN order."""
    return [(c.lsn, c.kind, c.ref, c.committed_at) for c in store.changes(0, 100_000)]


def test_import_copies_every_record_with_its_lsn_and_commit_time(tmp_path: Path, dsn: str) -> None:
    data_dir = tmp_path / "node"
    last, state_hash = embedded_node(data_dir, 200)
    done = cluster_import(data_dir, dsn, "--batch", "64")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert report["records_imported"] == report["wal_last_lsn"] == report["database_lsn"] == last
    assert report["state_hash"] == report["wal_state_hash"] == state_hash
    assert report["batches"] == -(-last // 64) and report["database_lsn_before"] == 0
    embedded, cluster = SqliteStore(data_dir), database(dsn)
    try:
        assert cluster.state_hash() == (last, state_hash)
        assert changes(cluster) == changes(embedded)
        assert cluster.applied_lsn() == last
    finally:
        embedded.close()
        cluster.close()
    # ``stemedb verify`` over the embedded node still agrees: the import only read it.
    verified = stemedb("verify", env={"STEMEDB_STORAGE_DATA_DIR": str(data_dir)})
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_second_run_is_a_no_op(tmp_path: Path, dsn: str) -> None:
    data_dir = tmp_path / "node"
    last, state_hash = embedded_node(data_dir, 50)
    assert cluster_import(data_dir, dsn).returncode == 0
    again = cluster_import(data_dir, dsn)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["records_imported"], report["batches"]) == (0, 0)
    assert report["database_lsn_before"] == report["database_lsn"] == last
    assert database_point(dsn) == (last, state_hash)


def test_an_import_killed_mid_way_resumes_to_the_same_hash(tmp_path: Path, dsn: str) -> None:
    data_dir = tmp_path / "node"
    last, state_hash = embedded_node(data_dir, 300)
    command = [str(Path(sys.executable).with_name("stemedb")), "cluster", "import"]
    slow = subprocess.Popen(
        [*command, "--data-dir", str(data_dir), "--dsn", dsn, "--batch", "20"],
        env=environment(**{BATCH_DELAY_FAILPOINT: "0.3"}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    watching = database(dsn)
    try:
        deadline = time.monotonic() + 60
        while (reached := watching.applied_lsn()) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        slow.send_signal(signal.SIGKILL)
    finally:
        slow.wait()
        watching.close()
    cut = database_point(dsn)[0]
    assert 0 < reached <= cut < last
    assert cut % 20 == 0  # a batch boundary: each batch is one transaction
    resumed = cluster_import(data_dir, dsn, "--batch", "20")
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["database_lsn_before"] == cut
    assert report["records_imported"] == last - cut
    assert database_point(dsn) == (last, state_hash)


@pytest.fixture
def failing_batch(dsn: str) -> Iterator[int]:
    """A database that refuses the change row of one LSN (a trigger: a real failure of
    the batch's transaction), until the fixture ends or the test drops it."""
    lsn = 45
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse_lsn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.lsn = {lsn} THEN RAISE EXCEPTION 'refused LSN {lsn}'; END IF;"
            " RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse_lsn BEFORE INSERT ON changes"
            " FOR EACH ROW EXECUTE FUNCTION refuse_lsn()"
        )
    yield lsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TRIGGER IF EXISTS refuse_lsn ON changes")


def test_a_failed_batch_leaves_a_prefix_and_a_retry_resumes(
    tmp_path: Path, dsn: str, failing_batch: int
) -> None:
    data_dir = tmp_path / "node"
    last, state_hash = embedded_node(data_dir, 100)
    wal_dir = data_dir / "wal"
    with pytest.raises(StorageError):
        import_wal(data_dir, wal_dir, lambda: database(dsn), batch_records=10)
    assert database_point(dsn)[0] == (failing_batch - 1) // 10 * 10  # the batches before
    failed = cluster_import(data_dir, dsn, "--batch", "10")
    assert failed.returncode == 1
    assert failed.stderr.startswith("Error: StorageError: ") and failed.stdout == ""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TRIGGER refuse_lsn ON changes")
    report = import_wal(data_dir, wal_dir, lambda: database(dsn), batch_records=10)
    assert report.database_lsn_before == 40
    assert (report.database_lsn, report.state_hash) == (last, state_hash)


def test_a_database_holding_another_history_is_refused(tmp_path: Path, dsn: str) -> None:
    node_a, node_b = tmp_path / "a", tmp_path / "b"
    a_point = embedded_node(node_a, 40)
    embedded_node(node_b, 80, first=1000)  # longer, other records
    assert cluster_import(node_a, dsn).returncode == 0
    refused = cluster_import(node_b, dsn)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "Error: StorageError: the database holds records that are not a prefix" in (
        refused.stderr
    )
    assert database_point(dsn) == a_point  # nothing written


def test_a_database_past_the_end_of_the_wal_is_refused(tmp_path: Path, dsn: str) -> None:
    longer, shorter = tmp_path / "longer", tmp_path / "shorter"
    embedded_node(longer, 60)
    embedded_node(shorter, 10)  # the same first records, fewer of them
    assert cluster_import(longer, dsn).returncode == 0
    before = database_point(dsn)
    refused = cluster_import(shorter, dsn)
    assert refused.returncode == 1
    assert "not a prefix" in refused.stderr and "the WAL ends at" in refused.stderr
    assert database_point(dsn) == before


def test_import_refuses_while_the_embedded_node_runs(tmp_path: Path, dsn: str) -> None:
    data_dir = tmp_path / "node"
    with Engine.embedded(data_dir, EngineSettings(fsync=False)) as engine:
        write_history(engine, 5)
        refused = cluster_import(data_dir, dsn)
    assert refused.returncode == 1
    assert "Error: StorageError:" in refused.stderr and "in use by another" in refused.stderr
    assert database_point(dsn)[0] == 0


def test_import_without_a_database_or_a_wal_says_what_is_missing(tmp_path: Path, dsn: str) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    no_dsn = stemedb("cluster", "import", "--data-dir", str(empty))
    assert no_dsn.returncode == 2 and "storage.postgres_dsn" in no_dsn.stderr
    no_wal = cluster_import(empty, dsn)
    assert no_wal.returncode == 1 and "no WAL segments" in no_wal.stderr
    assert not (empty / "wal").exists()  # nothing created in the data directory
