"""SIGKILL during ingest, over and over: every acknowledged write survives.

A child process (``_ingest_child.py``) ingests signed assertions from several threads
and prints each acknowledged id; the parent SIGKILLs it at a random moment (sometimes
while it is still opening or replaying), then checks the WAL (``verify``: a torn tail is
fine, corruption is not), reopens the engine, and finds every id ever acknowledged in
the store (at its acknowledged LSN) and through a query.

``STEMEDB_KILL9_CYCLES`` (default 50) sets the number of kills per test; thousands
work (the data directory is renewed every ``CYCLES_PER_DIRECTORY`` cycles so a cycle
costs the same at the end as at the start).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import pytest

from stemedb.engine import Engine
from stemedb.query.params import QueryParams
from stemedb.query.service import QueryService
from stemedb.wal import verify

CHILD = Path(__file__).with_name("_ingest_child.py")
CYCLES = int(os.environ.get("STEMEDB_KILL9_CYCLES", "50"))
CYCLES_PER_DIRECTORY = 25
READY_TIMEOUT_SECONDS = 30.0
EARLY_KILL_SHARE = 0.15  # kills before the child reports READY (open, replay, signing)


class Ack(NamedTuple):
    lsn: int
    subject: str
    predicate: str


class Cycle(NamedTuple):
    acks: dict[str, Ack]
    ready: bool
    done: bool


def run_child_until_killed(
    data_dir: Path, tag: str, rng: random.Random, *, records: int, threads: int, segment_bytes: int
) -> Cycle:
    """Start the child, SIGKILL it at a random moment, return what it acknowledged."""
    stderr_path = data_dir.parent / f"child-{tag}.stderr"
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(CHILD),
                str(data_dir),
                tag,
                str(records),
                str(threads),
                str(segment_bytes),
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert proc.stdout is not None
        lines: list[bytes] = []
        ready = threading.Event()

        def read() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                lines.append(raw)
                if raw.startswith(b"READY "):
                    ready.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        if rng.random() < EARLY_KILL_SHARE:
            time.sleep(rng.uniform(0.0, 0.3))
        else:
            if not ready.wait(READY_TIMEOUT_SECONDS):
                proc.kill()
                pytest.fail(f"child did not open the engine: {stderr_path.read_text()}")
            time.sleep(rng.uniform(0.0, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        reader.join()
        proc.stdout.close()
    if proc.returncode != -signal.SIGKILL:
        pytest.fail(f"child exited by itself ({proc.returncode}): {stderr_path.read_text()}")
    acks: dict[str, Ack] = {}
    done = False
    for raw in lines:
        if not raw.endswith(b"\n"):
            continue  # a line cut by the kill: its write was not reported as acknowledged
        parts = raw.decode().split()
        if parts[0] == "A":
            acks[parts[2]] = Ack(int(parts[1]), parts[3], parts[4])
        elif parts[0] == "DONE":
            done = True
    stderr_path.unlink()
    return Cycle(acks, ready.is_set(), done)


def check_survivors(data_dir: Path, acked: dict[str, Ack], query_keys: set[tuple[str, str]]) -> int:
    """WAL verifies; every acknowledged id is stored at its LSN and comes back from a
    query of its (subject, predicate). Returns the WAL's last LSN."""
    wal_dir = data_dir / "wal"
    if wal_dir.exists():
        report = verify(wal_dir)
        assert report.corruption is None, report
    with Engine.embedded(data_dir) as engine:
        stored = engine.store.assertion_lsns(list(acked))
        missing = sorted(set(acked) - set(stored))
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
        wrong = {i: (a.lsn, stored[i]) for i, a in acked.items() if stored[i] != a.lsn}
        assert not wrong, (
            f"{len(wrong)} acknowledged LSNs differ from the stored ones (acked, stored),"
            f" e.g. {dict(list(wrong.items())[:3])}"
        )
        if acked:
            assert engine.wal.last_lsn >= max(a.lsn for a in acked.values())
        assert engine.store.applied_lsn() == engine.wal.last_lsn
        service = QueryService(engine, refresh_views=False)
        try:
            by_key: dict[tuple[str, str], set[str]] = defaultdict(set)
            for record_id, ack in acked.items():
                if (ack.subject, ack.predicate) in query_keys:
                    by_key[ack.subject, ack.predicate].add(record_id)
            for (subject, predicate), ids in by_key.items():
                result = service.query(
                    QueryParams(subject=subject, predicate=predicate, lens="recency", limit=1000)
                )
                seen = {claim.id for claim in result.claims}
                assert ids <= seen, f"query of {subject} misses {sorted(ids - seen)[:3]}"
        finally:
            service.close()
        return engine.wal.last_lsn


def kill_loop(
    tmp_path: Path, *, cycles: int, seed: int, records: int, threads: int, segment_bytes: int
) -> dict[str, int]:
    rng = random.Random(seed)
    acked: dict[str, Ack] = {}
    data_dir = tmp_path
    totals = {"cycles": 0, "acked": 0, "early_kills": 0, "finished_before_kill": 0}
    for cycle in range(cycles):
        if cycle % CYCLES_PER_DIRECTORY == 0:
            data_dir = tmp_path / f"data-{cycle}"
            acked = {}
        result = run_child_until_killed(
            data_dir,
            f"{seed}-{cycle}",
            rng,
            records=records,
            threads=threads,
            segment_bytes=segment_bytes,
        )
        acked.update(result.acks)
        new_keys = {(a.subject, a.predicate) for a in result.acks.values()}
        check_survivors(data_dir, acked, new_keys)
        totals["cycles"] += 1
        totals["acked"] += len(result.acks)
        totals["early_kills"] += not result.ready
        totals["finished_before_kill"] += result.done
    return totals


def test_kill9_during_ingest_loses_no_acknowledged_write(tmp_path: Path) -> None:
    totals = kill_loop(
        tmp_path, cycles=CYCLES, seed=9, records=1500, threads=4, segment_bytes=64 * 1024 * 1024
    )
    assert totals["cycles"] == CYCLES
    assert totals["acked"] > 0  # the kills did land while writes were being acknowledged


def test_kill9_during_wal_rotation_loses_no_acknowledged_write(tmp_path: Path) -> None:
    # 8 KiB segments hold ~15 records: nearly every group commit rotates (fsync old
    # segment, create + header + fsync new one, fsync the directory), so kills land
    # inside rotations often.
    cycles = max(10, CYCLES // 2)
    totals = kill_loop(tmp_path, cycles=cycles, seed=99, records=600, threads=4, segment_bytes=8192)
    assert totals["cycles"] == cycles
    assert totals["acked"] > 0
