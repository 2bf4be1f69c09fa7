"""Read-side benchmark at scale: lens query latency, memory, and reopen after a crash.

1. A loader child process writes ``--records`` signed assertions (default 1,000,000)
   with ``write_many`` in big chunks. Loading uses ``fsync=False`` (the fast loading
   path; durability is what bench/ingest.py measures) unless ``--load-fsync``. One
   (subject, predicate) gets ``--hot-claims`` (default 100) competing claims from
   different agents, values, confidences, source classes and ages; every other key
   holds 4 claims. The loader is then killed with SIGKILL (a crash, not a close).
2. This process reopens the engine (normal crash recovery: the store is up to date,
   the WAL is scanned and verified) and measures lens query latency per lens on the
   hot key and on random keys, cold (result cache cleared before every query) and
   warm (cache hit), plus RSS.
3. Worst case: the store files are deleted and the engine reopened, so every WAL
   record is replayed into a fresh store.

    uv run --locked python bench/query.py --records 1000000
    uv run --locked python bench/query.py --records 100000 --reps 200
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    SOURCE_CLASSES,
    agent_keys,
    batch_size_distribution,
    latency_summary_ms,
    memory_kib,
    try_plot,
)

from stemedb.engine import Engine, EngineSettings
from stemedb.errors import StemeError
from stemedb.lens import LENS_NAMES
from stemedb.model.records import Assertion
from stemedb.model.signing import sign_assertion
from stemedb.query.params import QueryParams
from stemedb.query.service import QueryService

HOT_SUBJECT = "drugs/semaglutide"
HOT_PREDICATE = "gastroparesis_risk"
HOT_VALUES = ("rare", "uncommon", "common", "unknown")
KEY_COUNT = 16
CLAIMS_PER_KEY = 4
LOAD_CHUNK_RECORDS = 10_000
DAY_SECONDS = 86_400


def key_of(index: int) -> tuple[str, str]:
    """The (subject, predicate) of bulk record ``index``: 4 claims per key."""
    return f"bench/entity-{index // (CLAIMS_PER_KEY * 4)}", f"attr-{index % 4}"


def _sign_chunk(args: tuple[int, int, int]) -> list[bytes]:
    import msgspec

    start, stop, now = args
    keys = agent_keys(KEY_COUNT)
    enc = msgspec.msgpack.Encoder()
    out = []
    for i in range(start, stop):
        subject, predicate = key_of(i)
        out.append(
            enc.encode(
                sign_assertion(
                    keys[i % KEY_COUNT],
                    subject=subject,
                    predicate=predicate,
                    object=f"value-{i % 3}",
                    confidence=0.3 + (i % 70) / 100.0,
                    timestamp=now - (i % 400) * DAY_SECONDS,
                    source_class=SOURCE_CLASSES[i % len(SOURCE_CLASSES)],  # type: ignore[arg-type]
                )
            )
        )
    return out


def hot_claims(count: int, now: int) -> list[Assertion]:
    """``count`` competing claims on the hot key (distinct content, several agents)."""
    keys = agent_keys(KEY_COUNT)
    rng = random.Random(7)
    return [
        sign_assertion(
            keys[i % KEY_COUNT],
            subject=HOT_SUBJECT,
            predicate=HOT_PREDICATE,
            object=HOT_VALUES[i % len(HOT_VALUES)],
            confidence=round(rng.uniform(0.2, 1.0), 3),
            timestamp=now - rng.randrange(0, 730) * DAY_SECONDS - i,
            source_class=SOURCE_CLASSES[i % len(SOURCE_CLASSES)],  # type: ignore[arg-type]
        )
        for i in range(count)
    ]


# -- stage 1: the loader child ------------------------------------------------------


def load(data_dir: Path, records: int, hot: int, fsync: bool) -> dict[str, Any]:
    import msgspec

    decoder = msgspec.msgpack.Decoder(Assertion)
    now = int(time.time())
    settings = EngineSettings(fsync=fsync, group_commit_max_batch=LOAD_CHUNK_RECORDS)
    engine = Engine.embedded(data_dir, settings)
    started = time.perf_counter()
    errors = 0
    for result in engine.write_many(hot_claims(hot, now)):
        errors += isinstance(result, StemeError)
    bulk = records - hot
    chunks = [
        (s, min(bulk, s + LOAD_CHUNK_RECORDS), now) for s in range(0, bulk, LOAD_CHUNK_RECORDS)
    ]
    signing = 0.0
    with ProcessPoolExecutor(max_workers=2) as pool:
        pending: list[Future[list[bytes]]] = [pool.submit(_sign_chunk, c) for c in chunks[:2]]
        next_chunk = 2
        while pending:
            t0 = time.perf_counter()
            blobs = pending.pop(0).result()
            signing += time.perf_counter() - t0  # time the loader waited for signers
            if next_chunk < len(chunks):  # at most two chunks signed ahead (bounded memory)
                pending.append(pool.submit(_sign_chunk, chunks[next_chunk]))
                next_chunk += 1
            batch = [decoder.decode(b) for b in blobs]
            del blobs
            for result in engine.write_many(batch):
                errors += isinstance(result, StemeError)
    elapsed = time.perf_counter() - started
    out = {
        "records": records,
        "hot_claims": hot,
        "load_fsync": fsync,
        "load_seconds": round(elapsed, 1),
        "load_waiting_for_signers_seconds": round(signing, 1),
        "load_per_s": round(records / elapsed, 1),
        "load_errors": errors,
        "last_lsn": engine.wal.last_lsn,
        "writer_batches": batch_size_distribution(dict(engine.writer.stats.batch_sizes)),
        "loader_memory_after_load": memory_kib(),
        "store_bytes": engine.store.disk_bytes(),
        "wal_bytes": engine.wal.disk_usage_bytes(),
        "wal_segments": len(engine.wal.segments()),
    }
    return out  # the engine stays open: the parent SIGKILLs this process


def run_loader(data_dir: Path, records: int, hot: int, fsync: bool) -> dict[str, Any]:
    """Load in a child process, then SIGKILL it (a crash with everything in the WAL)."""
    cmd = [
        sys.executable,
        __file__,
        "--load-only",
        str(data_dir),
        "--records",
        str(records),
        "--hot-claims",
        str(hot),
    ] + (["--load-fsync"] if fsync else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    if proc.stdin is not None:
        proc.stdin.close()
    if not line:
        raise SystemExit("the loader died before reporting")
    result: dict[str, Any] = json.loads(line)
    result["loader_killed_with"] = "SIGKILL"
    return result


# -- stage 2: queries ---------------------------------------------------------------


def time_queries(
    service: QueryService, keys: list[tuple[str, str]], lens: str, *, cold: bool
) -> tuple[list[float], int]:
    cache = service.store.cache
    latencies = []
    claims = 0
    for subject, predicate in keys:
        params = QueryParams(subject=subject, predicate=predicate, lens=lens)
        if cold:
            cache.clear()
        t0 = time.perf_counter()
        result = service.query(params)
        latencies.append(time.perf_counter() - t0)
        claims += len(result.claims)
    return latencies, claims


def measure_queries(engine: Engine, records: int, hot: int, reps: int) -> dict[str, Any]:
    service = QueryService(engine)
    rng = random.Random(11)
    bulk = max(1, records - hot)
    random_keys = [key_of(rng.randrange(bulk)) for _ in range(reps)]
    out: dict[str, Any] = {"reps": reps, "hot_key": {}, "random_keys": {}}
    try:
        time_queries(
            service, [(HOT_SUBJECT, HOT_PREDICATE)] * 20, "consensus", cold=True
        )  # warm-up
        for lens in LENS_NAMES:
            cold, claims = time_queries(
                service, [(HOT_SUBJECT, HOT_PREDICATE)] * reps, lens, cold=True
            )
            warm, _ = time_queries(service, [(HOT_SUBJECT, HOT_PREDICATE)] * reps, lens, cold=False)
            out["hot_key"][lens] = {
                "claims_returned": claims // reps,
                "cold": latency_summary_ms(cold),
                "warm_cache": latency_summary_ms(warm),
            }
        for lens in LENS_NAMES:
            cold, claims = time_queries(service, random_keys, lens, cold=True)
            out["random_keys"][lens] = {
                "claims_returned_mean": round(claims / len(random_keys), 2),
                "cold": latency_summary_ms(cold),
            }
            if lens == "consensus":
                out["_raw_random_consensus_cold"] = cold
    finally:
        service.close()
    return out


def reopen(data_dir: Path) -> tuple[Engine, dict[str, Any]]:
    t0 = time.perf_counter()
    engine = Engine.embedded(data_dir)
    wall = time.perf_counter() - t0
    report = engine.wal.recovery
    return engine, {
        "seconds": round(wall, 2),
        "open_seconds": round(engine.open_seconds, 2),
        "wal_recovery_seconds": round(report.duration_seconds, 2),
        "wal_records_scanned": report.records_scanned,
        "replayed_records": engine.replayed,
        "replay_per_s": round(engine.replayed / max(1e-9, wall - report.duration_seconds), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--hot-claims", type=int, default=100)
    parser.add_argument("--reps", type=int, default=300, help="queries per lens and key set")
    parser.add_argument("--load-fsync", action="store_true", help="load durably (slower)")
    parser.add_argument("--data-dir", type=Path, help="keep the data here (default: temporary)")
    parser.add_argument("--reuse", action="store_true", help="--data-dir is already loaded")
    parser.add_argument("--skip-replay", action="store_true", help="skip the worst-case reopen")
    parser.add_argument("--plot", type=Path, help="write a latency histogram PNG (matplotlib)")
    parser.add_argument("--load-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.load_only:
        result = load(args.load_only, args.records, args.hot_claims, args.load_fsync)
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
        sys.stdin.read()  # wait for the SIGKILL
        return 0

    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = tempfile.mkdtemp(prefix="stemedb-bench-query-")
        data_dir = Path(tmp)
    out: dict[str, Any] = {"bench": "query", "cpus": os.cpu_count()}
    try:
        if not args.reuse:
            out["load"] = run_loader(data_dir, args.records, args.hot_claims, args.load_fsync)
        engine, out["reopen_store_up_to_date"] = reopen(data_dir)
        try:
            out["assertions"] = engine.store.assertion_count()
            out["memory_after_reopen"] = memory_kib()
            queries = measure_queries(engine, out["assertions"], args.hot_claims, args.reps)
            raw = queries.pop("_raw_random_consensus_cold")
            out["queries"] = queries
            out["memory_after_queries"] = memory_kib()
        finally:
            engine.close()
        if not args.skip_replay:
            for suffix in ("", "-wal", "-shm"):
                path = data_dir / f"store.sqlite{suffix}"
                if path.exists():
                    path.unlink()
            engine, out["reopen_store_deleted"] = reopen(data_dir)
            out["memory_after_full_replay"] = memory_kib()
            engine.close()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.plot:
        plotted = try_plot(
            args.plot,
            lambda plt: (
                plt.hist([x * 1e3 for x in raw], bins=100),
                plt.xlabel("latency (ms)"),
                plt.title("random-key consensus query latency (cold)"),
            ),
        )
        out["plot"] = plotted or "skipped: matplotlib is not installed"
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
