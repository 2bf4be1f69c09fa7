"""Child process of the kill -9 tests: open an Engine and ingest until killed.

Run as ``python tests/crash/_ingest_child.py DATA_DIR TAG RECORDS THREADS SEGMENT_BYTES``.
Protocol on stdout (one line each, flushed before anything else happens):

- ``READY <open_seconds> <replayed>`` once the engine is open;
- ``A <lsn> <id> <subject> <predicate>`` after each ACKNOWLEDGED write (the write
  call returned, so the record must survive any crash from then on);
- ``DONE`` when every record is written (the child then idles until killed).

Records are signed here with a fixed pool of keys (cheap: a few hundred per key);
subjects carry ``TAG`` so every child writes new records. Several threads write one
record at a time and one thread writes small ``write_many`` chunks, so group commits
of mixed sizes are in flight when the parent's SIGKILL lands.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from pathlib import Path

from stemedb.engine import Engine, EngineSettings
from stemedb.errors import StemeError
from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey, sign_assertion

KEY_POOL_SIZE = 4
CLAIMS_PER_KEY = 8
WRITE_MANY_CHUNK = 16


def keys() -> list[AgentKey]:
    return [
        AgentKey.from_seed(hashlib.sha256(f"kill9-key-{i}".encode()).digest())
        for i in range(KEY_POOL_SIZE)
    ]


def records(tag: str, count: int) -> list[Assertion]:
    pool = keys()
    now = int(time.time())
    return [
        sign_assertion(
            pool[i % len(pool)],
            subject=f"kill9/{tag}/s{i // CLAIMS_PER_KEY}",
            predicate="p",
            object=f"v{i}",
            confidence=((i % 10) + 1) / 10,
            timestamp=now,
        )
        for i in range(count)
    ]


def main() -> None:
    data_dir, tag = Path(sys.argv[1]), sys.argv[2]
    count, threads, segment_bytes = (int(x) for x in sys.argv[3:6])
    out_lock = threading.Lock()
    out = sys.stdout

    def emit(line: str) -> None:
        with out_lock:
            out.write(line + "\n")
            out.flush()

    settings = EngineSettings(segment_size_bytes=segment_bytes, group_commit_max_delay_us=500)
    engine = Engine.embedded(data_dir, settings)
    emit(f"READY {engine.open_seconds:.4f} {engine.replayed}")
    todo = records(tag, count)

    def ack(a: Assertion, lsn: int, record_id: str) -> None:
        emit(f"A {lsn} {record_id} {a.subject} {a.predicate}")

    def single_writer(mine: list[Assertion]) -> None:
        for a in mine:
            result = engine.write(a)
            ack(a, result.lsn, result.id)

    def batch_writer(mine: list[Assertion]) -> None:
        for i in range(0, len(mine), WRITE_MANY_CHUNK):
            chunk = mine[i : i + WRITE_MANY_CHUNK]
            for a, result in zip(chunk, engine.write_many(chunk), strict=True):
                if isinstance(result, StemeError):
                    raise result
                ack(a, result.lsn, result.id)

    workers = [
        threading.Thread(target=single_writer, args=(todo[i :: threads + 1],))
        for i in range(threads)
    ]
    workers.append(threading.Thread(target=batch_writer, args=(todo[threads :: threads + 1],)))
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    emit("DONE")
    while True:  # wait for the SIGKILL; never close cleanly
        time.sleep(1)


if __name__ == "__main__":
    main()
