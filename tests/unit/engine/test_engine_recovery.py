"""Recovery and storage faults: WAL replay on open, rebuild, a failed fsync (read-only
from then on) and a full disk (refused, nothing acknowledged lost, resumes)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from stemedb.engine import Engine, EngineSettings, WriteResult
from stemedb.engine.codec import encode_payload
from stemedb.errors import DiskFullError, ReadOnlyError, StorageError
from stemedb.model.ids import record_id
from stemedb.model.kinds import KIND_OF_TYPE
from stemedb.model.records import Assertion, TrustOutcome
from stemedb.model.signing import (
    AgentKey,
    cosign,
    sign_epoch,
    sign_retraction,
    sign_source,
    sign_supersession,
    sign_vote,
)
from stemedb.query.params import QueryParams
from stemedb.query.service import QueryService
from stemedb.sys import RealFileSystem
from stemedb.sys.faults import FakeClock, FaultyFileSystem
from stemedb.wal import Wal

T0 = 1_700_000_000
LENSES = ("recency", "confidence", "consensus", "votes", "authority", "layered")
KEYS = (
    ("drugs/semaglutide", "gastroparesis_risk"),
    ("drugs/semaglutide", "dose_mg"),
    ("drugs/tirzepatide", "gastroparesis_risk"),
)

Claim = Callable[..., Assertion]
EngineFactory = Callable[..., Engine]


def populate(engine: Engine, claim: Claim, keys: list[AgentKey], clock: FakeClock) -> None:
    """A small data set touching every record kind, written in several batches."""
    src = sign_source(
        keys[0], uri="doi:10/trial", content="trial", source_class="clinical", timestamp=T0 - 500
    )
    bad = sign_source(keys[1], uri="doi:10/fraud", content="fraud", timestamp=T0 - 500)
    assert all(isinstance(r, WriteResult) for r in engine.write_many([src, bad]))
    clock.advance(10)
    a = claim("rare", source_hash=src.source_hash, timestamp=T0 - 90)
    b = claim("common", key=keys[1], source_hash=bad.source_hash, timestamp=T0 - 80)
    c = claim("rare", key=keys[2], confidence=0.6, timestamp=T0 - 70)
    d = claim(2.4, predicate="dose_mg", source_class="regulatory", timestamp=T0 - 60)
    e = claim(1.0, predicate="dose_mg", key=keys[3], timestamp=T0 - 50)
    f = claim("none", subject="drugs/tirzepatide", key=keys[4], timestamp=T0 - 40)
    ids = [r.id for r in engine.write_many([a, b, c, d, e, f]) if isinstance(r, WriteResult)]
    assert len(ids) == 6
    clock.advance(10)
    child = claim("uncommon", key=keys[1], parent=ids[1], timestamp=T0 - 30)
    old_epoch = sign_epoch(keys[0], name="v1", timestamp=T0 - 30)
    more = engine.write_many([child, old_epoch, cosign(keys[3], ids[0], signed_at=T0 - 20)])
    assert all(isinstance(r, WriteResult) for r in more)
    clock.advance(10)
    records: list[Any] = [
        sign_vote(keys[2], assertion_id=ids[4], weight=0.9, timestamp=T0 - 20),
        sign_vote(keys[2], assertion_id=ids[4], weight=0.1, timestamp=T0 - 10),
        sign_supersession(keys[4], old=ids[2], new=ids[0], reason="merged", timestamp=T0 - 10),
        sign_retraction(keys[1], source_hash=bad.source_hash, reason="fraud", timestamp=T0),
        claim("in-epoch", subject="drugs/tirzepatide", epoch=record_id(old_epoch)),
        sign_epoch(keys[0], name="v2", supersedes=(record_id(old_epoch),), timestamp=T0),
        TrustOutcome(agent_id=keys[3].agent_id, accurate=True, timestamp=T0),
    ]
    for record in records:
        engine.write(record)
        clock.advance(1)


def answers(service: QueryService) -> list[Any]:
    """Every lens over every key, as plain data without the per-query id."""
    out = []
    for subject, predicate in KEYS:
        for lens in LENSES:
            for include_retracted in (False, True):
                params = QueryParams(
                    subject=subject,
                    predicate=predicate,
                    lens=lens,
                    include_retracted=include_retracted,
                )
                result = msgspec.to_builtins(service.query(params))
                result.pop("query_id")
                out.append(result)
        skeptic = msgspec.to_builtins(service.skeptic(subject, predicate))
        skeptic.pop("query_id")
        out.append(skeptic)
    prefix = msgspec.to_builtins(service.query(QueryParams(subject_prefix="drugs/")))
    prefix.pop("query_id")
    return [*out, prefix]


def with_service(engine: Engine) -> list[Any]:
    service = QueryService(engine, refresh_views=False)
    try:
        return answers(service)
    finally:
        service.close()


def test_reopen_after_losing_the_store_replays_the_wal_to_identical_answers(
    make_engine: EngineFactory, tmp_path: Path, claim: Claim, keys: list[AgentKey], clock: FakeClock
) -> None:
    engine = make_engine()
    populate(engine, claim, keys, clock)
    expected, last = with_service(engine), engine.wal.last_lsn
    counts = engine.store.counts()
    engine.close()
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / "data" / f"store.sqlite{suffix}").unlink(missing_ok=True)
    reopened = make_engine()
    assert reopened.replayed == last
    assert reopened.applied_lsn == last
    assert reopened.store.counts() == counts
    assert with_service(reopened) == expected


def test_reopen_applies_wal_records_the_store_has_not_applied(
    make_engine: EngineFactory, tmp_path: Path, claim: Claim, keys: list[AgentKey]
) -> None:
    engine = make_engine()
    first = engine.write(claim("rare"))
    engine.close()
    # Records that reached the WAL but not the store (a crash between the two steps).
    late = [claim("common", key=keys[1]), claim("common", key=keys[2], timestamp=T0 - 50)]
    wal = Wal.open(tmp_path / "data" / "wal")
    frames = [(int(KIND_OF_TYPE[Assertion]), encode_payload(record_id(a), T0, a)) for a in late]
    assert wal.append(frames) == first.lsn + 1
    wal.close()
    reopened = make_engine()
    assert reopened.replayed == 2
    assert reopened.applied_lsn == 3
    service = QueryService(reopened, refresh_views=False)
    q = service.query(QueryParams(subject="drugs/semaglutide", predicate="gastroparesis_risk"))
    service.close()
    assert q.resolution is not None and q.resolution.winner is not None
    assert q.resolution.winner.object.value == "common"
    assert len(q.claims) == 3
    assert reopened.write(late[0]).status == "exists"


def test_reopen_without_changes_replays_nothing(make_engine: EngineFactory, claim: Claim) -> None:
    engine = make_engine()
    engine.write(claim())
    engine.close()
    assert make_engine().replayed == 0


def test_store_ahead_of_its_wal_refuses_to_open(
    make_engine: EngineFactory, tmp_path: Path, claim: Claim
) -> None:
    engine = make_engine()
    engine.write(claim())
    engine.close()
    shutil.rmtree(tmp_path / "data" / "wal")
    with pytest.raises(StorageError) as info:
        make_engine()
    assert info.value.code == "wal_behind_store"


def test_rebuild_gives_the_same_answers_and_writes_continue(
    engine: Engine, claim: Claim, keys: list[AgentKey], clock: FakeClock
) -> None:
    populate(engine, claim, keys, clock)
    expected, last = with_service(engine), engine.wal.last_lsn
    assert engine.rebuild() == last
    assert engine.applied_lsn == last
    assert with_service(engine) == expected
    assert engine.write(claim("after-rebuild")).lsn == last + 1


# -- storage faults ------------------------------------------------------------------


@pytest.fixture
def faulty() -> FaultyFileSystem:
    return FaultyFileSystem(RealFileSystem())


def test_failed_fsync_fails_the_write_and_leaves_the_node_read_only_but_readable(
    make_engine: EngineFactory, faulty: FaultyFileSystem, claim: Claim
) -> None:
    engine = make_engine(fs=faulty)
    service = QueryService(engine, refresh_views=False)
    try:
        kept = engine.write(claim("rare"))
        faulty.fail_fsync(1)  # one failure only: a retry would succeed and must not happen
        with pytest.raises(StorageError) as info:
            engine.write(claim("common"))
        assert info.value.code == "fsync_failed" and not info.value.retryable
        assert engine.read_only and engine.read_only_reason
        assert engine.applied_lsn == kept.lsn
        with pytest.raises(ReadOnlyError):
            engine.write(claim("later"))
        results = engine.write_many([claim("x"), claim("y")])
        assert all(isinstance(r, ReadOnlyError) for r in results)
        q = service.query(QueryParams(subject="drugs/semaglutide", predicate="gastroparesis_risk"))
        assert [c.id for c in q.claims] == [kept.id]
    finally:
        service.close()


def test_disk_full_refuses_the_write_keeps_acknowledged_data_and_resumes_when_freed(
    make_engine: EngineFactory, faulty: FaultyFileSystem, claim: Claim
) -> None:
    engine = make_engine(fs=faulty)
    acknowledged = [r for r in engine.write_many([claim("a"), claim("b")])]
    faulty.fill_disk(0)
    with pytest.raises(DiskFullError) as info:
        engine.write(claim("c"))
    assert info.value.code == "disk_full" and info.value.retryable
    assert all(isinstance(r, DiskFullError) for r in engine.write_many([claim("d"), claim("e")]))
    assert engine.wal.last_lsn == engine.applied_lsn == 2
    assert not engine.read_only
    faulty.free_space()
    resumed = engine.write(claim("c"))
    assert (resumed.status, resumed.lsn) == ("created", 3)
    engine.close()
    faulty.restart()
    reopened = make_engine()
    assert reopened.replayed == 0 and reopened.applied_lsn == 3
    for r in [*acknowledged, resumed]:
        assert isinstance(r, WriteResult)
        assert reopened.store.assertion(r.id) is not None
    assert reopened.store.counts()["assertions"] == 3


def test_durable_write_whose_store_transaction_failed_becomes_visible_without_another_write(
    tmp_path: Path,
) -> None:
    import time

    import apsw

    from stemedb.model.signing import AgentKey, sign_assertion

    key = AgentKey.from_seed(b"\x07" * 32)
    record = sign_assertion(key, subject="s/busy", predicate="p", object="v", confidence=0.5)
    with Engine.embedded(tmp_path / "data", EngineSettings(busy_timeout_ms=50)) as engine:
        blocker = apsw.Connection(str(tmp_path / "data" / "store.sqlite"))
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the store's write lock
        with pytest.raises(StorageError) as failed:
            engine.write(record)
        assert failed.value.code == "store_busy"
        assert engine.wal.last_lsn == 1  # durable in the WAL, not yet in the store
        blocker.execute("ROLLBACK")
        blocker.close()
        deadline = time.monotonic() + 5.0
        while engine.applied_lsn < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert engine.applied_lsn == 1
        assert engine.store.assertion(record_id(record)) is not None
