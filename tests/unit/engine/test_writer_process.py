"""The writer process (``runtime``): same answers as the in-process writer, and
what happens when either process goes away."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from support.engines import engine_for_test

from stemedb.engine import Engine
from stemedb.engine.verify import VERIFY_HERE_RECORDS
from stemedb.errors import StemeError, StorageError
from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey, sign_assertion, sign_vote
from stemedb.query.params import QueryParams
from stemedb.query.service import QueryService

Claim = Callable[..., Assertion]
T0 = 1_700_000_000  # the claim fixture's clock


class RecordingObserver:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_fsync(self, duration_seconds: float) -> None:
        self.events.append(("fsync", duration_seconds))

    def on_append(self, records: int, bytes: int) -> None:
        self.events.append(("append", records, bytes))

    def on_rotation(self) -> None:
        self.events.append(("rotation",))

    def on_fsync_error(self) -> None:
        self.events.append(("fsync_error",))


@pytest.fixture
def open_engine(make_engine: Callable[..., Engine]) -> Callable[..., Engine]:
    """``make_engine`` with the writer process, which keeps its own (real) clock."""

    def factory(**kwargs: Any) -> Engine:
        kwargs.setdefault("writer_process", True)
        if kwargs["writer_process"]:
            kwargs.setdefault("clock", None)
        return make_engine(**kwargs)

    return factory


def _writer_pid(engine: Engine) -> int:
    pid = getattr(engine.writer, "pid", None)
    assert isinstance(pid, int)
    return pid


def test_writes_are_durable_visible_and_read_back_after_a_restart(
    open_engine: Callable[..., Engine], claim: Claim, keys: list[AgentKey]
) -> None:
    observer = RecordingObserver()
    engine = open_engine(wal_observer=observer)
    service = QueryService(engine)
    first = engine.write(claim("rare"))
    assert (first.lsn, first.status) == (1, "created")
    assert engine.applied_lsn == 1 and engine.wal.last_lsn == 1
    answer = service.query(QueryParams(subject="drugs/semaglutide", predicate="gastroparesis_risk"))
    assert [c.id for c in answer.claims] == [first.id]  # read-your-writes in this process
    again = engine.write(claim("rare"))
    assert (again.id, again.status) == (first.id, "exists")
    results = engine.write_many([claim(f"v{i}", key=keys[i % 5]) for i in range(1, 40)])
    assert all(not isinstance(r, Exception) and r.status == "created" for r in results)
    assert {e[0] for e in observer.events} >= {"fsync", "append"}
    segments = engine.wal.segments()
    assert segments and segments[-1].last_lsn == engine.applied_lsn == 40
    service.close()
    engine.close()
    reopened = open_engine()
    assert reopened.applied_lsn == 40 and reopened.replayed == 0
    reopened.close()
    in_process = open_engine(writer_process=False)  # the same files, the other mode
    assert in_process.applied_lsn == 40


def test_errors_keep_their_type_code_and_details_across_the_process_boundary(
    tmp_path: Path, claim: Claim, keys: list[AgentKey]
) -> None:
    vote = sign_vote(keys[1], assertion_id="ab" * 32, weight=1.0, timestamp=T0)  # no such claim
    answers = []
    for remote in (False, True):
        with engine_for_test(tmp_path / f"data-{remote}", writer_process=remote) as engine:
            created, error = engine.write_many([claim("rare"), vote])
        assert not isinstance(created, Exception) and created.status == "created"
        assert isinstance(error, StemeError)
        answers.append(
            (
                type(error),
                error.code,
                error.status,
                error.details,
                error.message,
                error.retryable,
                getattr(error, "field", None),
            )
        )
    assert answers[0] == answers[1]


def test_a_second_engine_on_a_locked_directory_fails_like_the_in_process_one(
    open_engine: Callable[..., Engine],
) -> None:
    open_engine(writer_process=False)
    with pytest.raises(StorageError) as in_process:
        open_engine(writer_process=False)
    with pytest.raises(StorageError) as remote:
        open_engine()
    assert remote.value.code == in_process.value.code
    assert type(remote.value) is type(in_process.value)


def test_a_killed_writer_fails_pending_and_new_writes_and_makes_the_node_read_only(
    open_engine: Callable[..., Engine], claim: Claim
) -> None:
    engine = open_engine()
    engine.write(claim("rare"))
    os.kill(_writer_pid(engine), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not engine.read_only and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.read_only and "writer process" in (engine.read_only_reason or "")
    with pytest.raises(StorageError) as failed:
        engine.write(claim("common"))
    assert failed.value.code == "read_only" and failed.value.retryable is False
    engine.close()  # does not hang


def test_close_finishes_every_queued_write(
    open_engine: Callable[..., Engine], claim: Claim, keys: list[AgentKey]
) -> None:
    engine = open_engine()
    futures = [
        engine.writer.submit_group([engine.prepare(claim(f"v{i}", key=keys[i % 5]))])
        for i in range(200)
    ]
    engine.close()
    assert all(f.done() for f in futures)
    lsns = sorted(f.result()[0].lsn for f in futures)  # type: ignore[union-attr]
    assert lsns == list(range(1, 201))
    assert open_engine().applied_lsn == 200


def test_archived_segments_are_removed_by_the_writer_process(
    open_engine: Callable[..., Engine], claim: Claim, keys: list[AgentKey]
) -> None:
    engine = open_engine(segment_size_bytes=4096)
    for i in range(60):
        engine.write(claim(f"v{i}", key=keys[i % 5]))
    segments = engine.wal.segments()
    assert len(segments) > 2 and all(s.sealed for s in segments[:-1])
    bound = segments[1].first_lsn
    removed = engine.wal.remove_segments_before(bound)
    assert removed == [segments[0].path] and not segments[0].path.exists()
    assert engine.wal.segments()[0].first_lsn == bound


def test_the_writer_exits_when_the_server_process_is_killed(tmp_path: Path) -> None:
    """EOF on its socket: the writer finishes, releases the lock and exits."""
    data = tmp_path / "data"
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from stemedb.engine import EngineSettings
        from stemedb.runtime.writer_start import start_writer_process
        from stemedb.model.signing import AgentKey, sign_assertion
        engine = start_writer_process(Path({str(data)!r}), EngineSettings())
        result = engine.write(sign_assertion(
            AgentKey.from_seed(bytes([1]) * 32), subject="s/1", predicate="p", object="v",
            confidence=0.5, timestamp={T0},
        ))
        print(engine.writer.pid, result.lsn, flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        writer_pid, lsn = map(int, proc.stdout.readline().split())
        assert lsn == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(writer_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(writer_pid, signal.SIGKILL)
            pytest.fail("the writer process outlived the server process")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    with Engine.embedded(data) as engine:  # the lock is free and the acknowledged write is there
        assert engine.applied_lsn == 1


def test_no_acknowledged_write_is_lost_when_the_writer_is_killed_mid_stream(
    tmp_path: Path, keys: list[AgentKey]
) -> None:
    """kill -9 the writer process while writes stream in; every write that was
    acknowledged is in the WAL and the store after a restart."""
    data = tmp_path / "data"
    engine = engine_for_test(data, writer_process=True, group_commit_max_delay_us=0)
    acknowledged: list[str] = []
    stop = threading.Event()

    def stream(worker: int) -> None:
        index = 0
        while not stop.is_set():
            claim = sign_assertion(
                keys[worker],
                subject=f"kill/{worker}/{index}",
                predicate="p",
                object=index,
                confidence=0.5,
                timestamp=T0,
            )
            index += 1
            try:
                acknowledged.append(engine.write(claim).id)
            except StorageError:
                return

    threads = [threading.Thread(target=stream, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 300 and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(_writer_pid(engine), signal.SIGKILL)
    for thread in threads:
        thread.join(30)
    stop.set()
    engine.close()
    assert len(acknowledged) >= 300
    with Engine.embedded(data) as reopened:  # recovery in this process: WAL replay
        missing = [i for i in acknowledged if reopened.store.assertion(i) is None]
        assert missing == []
        assert reopened.applied_lsn >= len(acknowledged)


def test_an_integer_msgpack_cannot_carry_is_refused_like_in_process(
    tmp_path: Path, claim: Claim
) -> None:
    """JSON allows integers past 64 bits; such a record is verified in the server
    (ValidationError), and the writer process is not disturbed."""
    huge = msgspec.structs.replace(claim("rare"), valid_to=-(2**100))
    answers = []
    for remote in (False, True):
        with engine_for_test(tmp_path / f"data-{remote}", writer_process=remote) as engine:
            loop = asyncio.new_event_loop()
            try:
                (outcome,) = loop.run_until_complete(engine.write_each_async([huge]))
                fine = loop.run_until_complete(engine.write_each_async([claim("common")]))
            finally:
                loop.close()
            assert isinstance(outcome, StemeError)
            assert not isinstance(fine[0], StemeError) and fine[0].status == "created"
            answers.append((type(outcome), outcome.code, outcome.details))
    assert answers[0] == answers[1]


@pytest.mark.parametrize("remote", [False, True])
def test_a_waiter_that_gives_up_does_not_disturb_the_writer(
    tmp_path: Path, claim: Claim, keys: list[AgentKey], remote: bool
) -> None:
    """A request past its timeout cancels its wait; the write goes on (all or nothing)
    and the engine stays writable."""

    async def give_up_then_write_again(engine: Engine) -> None:
        waiter = asyncio.ensure_future(engine.write_each_async([claim("rare")]))
        await asyncio.sleep(0)
        waiter.cancel()
        (after,) = await engine.write_each_async([claim("common", key=keys[1])])
        assert not isinstance(after, StemeError) and after.status == "created"

    with engine_for_test(tmp_path / "data", writer_process=remote) as engine:
        asyncio.run(give_up_then_write_again(engine))
        assert not engine.read_only
        assert engine.wait_for_lsn(2, timeout=10) == 2  # the abandoned write landed too


@pytest.mark.parametrize("group", [5, 40])  # verified by the caller / by the verify pool
def test_single_writes_verified_in_the_http_process_get_the_writers_answers(
    tmp_path: Path, claim: Claim, keys: list[AgentKey], group: int
) -> None:
    """With several HTTP processes each verifies its own coalesced single writes (a
    small group in the calling thread); every record gets the same outcome as when the
    writer process verifies them (one HTTP process)."""
    forged = msgspec.structs.replace(claim("forged"), signatures=claim("other").signatures)
    records: list[Any] = [claim(f"v{i}", key=keys[i % len(keys)]) for i in range(group - 3)] + [
        forged,
        claim("late", timestamp=int(time.time()) + 3600),
        claim("v0", key=keys[0]),
    ]
    answers = []
    for processes in (1, 2):
        with engine_for_test(
            tmp_path / f"data-{processes}", writer_process=True, http_processes=processes
        ) as engine:
            outcomes = asyncio.run(engine.write_each_async(records))
            answers.append(
                [
                    (type(o).__name__, getattr(o, "code", None))
                    if isinstance(o, StemeError)
                    else (o.status, o.id)
                    for o in outcomes
                ]
            )
            assert engine.store.counts()["assertions"] == group - 3
            pool_started = bool(engine._verifier._pool._threads)  # threads start on use
            assert pool_started == (processes == 2 and group > VERIFY_HERE_RECORDS)
            for spare in getattr(engine.writer, "spare_links", []):  # no second process
                spare.close()
    # The two writes of "v0" are concurrent: when the verify pool's chunks finish out of
    # order the later one commits first. Either way one is created and the other exists.
    for answer in answers:
        first, last = answer[0], answer[-1]
        assert first[1] == last[1] and {first[0], last[0]} == {"created", "exists"}
        answer[0] = answer[-1] = ("duplicate pair", first[1])
    assert answers[0] == answers[1]
    assert answers[1][-3][0] == "SignatureError" and answers[1][-2][0] == "ValidationError"
