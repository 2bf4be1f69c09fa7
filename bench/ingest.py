"""Durable ingest throughput of signed assertions through the engine's write path.

Pre-signs ``--records`` assertions (signing is the client's cost, done before the clock
starts), then ``--clients`` concurrent submitters write them through ``Engine``:
validation, content ID (JCS + SHA-256), Ed25519 verification, group commit, WAL
append + fdatasync, SQLite apply. Prints one JSON document.

    uv run --locked python bench/ingest.py --records 100000 --clients 64
    uv run --locked python bench/ingest.py --records 100000 --clients 4 --batch 256
    uv run --locked python bench/ingest.py --records 100000 --clients 256 --mode asyncio
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    FsyncCounter,
    batch_size_distribution,
    latency_summary_ms,
    memory_kib,
    presign,
    try_plot,
)

from stemedb.config import DefenceConfig
from stemedb.engine import Engine, EngineSettings
from stemedb.errors import StemeError
from stemedb.model.records import Assertion


def run_threads(
    engine: Engine, records: Sequence[Assertion], clients: int, batch: int
) -> tuple[list[float], int]:
    """Each client thread writes its share, one record (or one ``batch`` chunk) per call."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        mine = records[index::clients]
        lat = latencies[index]
        clock = time.perf_counter
        start.wait()
        if batch > 0:
            for i in range(0, len(mine), batch):
                chunk = mine[i : i + batch]
                t0 = clock()
                results = engine.write_many(chunk)
                lat.append(clock() - t0)
                errors[index] += sum(isinstance(r, StemeError) for r in results)
        else:
            for record in mine:
                t0 = clock()
                try:
                    engine.write(record)
                except StemeError:
                    errors[index] += 1
                lat.append(clock() - t0)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    for t in threads:
        t.join()
    return [x for lat in latencies for x in lat], sum(errors)


def run_asyncio(
    engine: Engine, records: Sequence[Assertion], clients: int, batch: int
) -> tuple[list[float], int]:
    """``clients`` coroutines on one event loop, each awaiting ``write_async`` in turn."""
    latencies: list[float] = []
    errors = 0

    async def client(index: int) -> None:
        nonlocal errors
        mine = records[index::clients]
        clock = time.perf_counter
        if batch > 0:
            for i in range(0, len(mine), batch):
                t0 = clock()
                results = await engine.write_many_async(mine[i : i + batch])
                latencies.append(clock() - t0)
                errors += sum(isinstance(r, StemeError) for r in results)
        else:
            for record in mine:
                t0 = clock()
                try:
                    await engine.write_async(record)
                except StemeError:
                    errors += 1
                latencies.append(clock() - t0)

    async def main() -> None:
        await asyncio.gather(*(client(i) for i in range(clients)))

    asyncio.run(main())
    return latencies, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=64, help="concurrent submitters")
    parser.add_argument("--mode", choices=("threads", "asyncio"), default="threads")
    parser.add_argument(
        "--batch",
        type=int,
        nargs="?",
        const=256,
        default=0,
        help="records per write_many call (bare --batch = 256); 0 = one write per record",
    )
    parser.add_argument("--keys", type=int, default=16, help="agent keys in the signing pool")
    parser.add_argument("--max-batch", type=int, default=1024, help="group_commit_max_batch")
    parser.add_argument("--max-delay-us", type=int, default=200, help="group_commit_max_delay_us")
    parser.add_argument("--verify-threads", type=int, default=2)
    parser.add_argument("--no-fsync", action="store_true", help="NOT durable; for comparison")
    parser.add_argument(
        "--quarantine", action="store_true", help="[defence] quarantine = true (screening on)"
    )
    parser.add_argument("--data-dir", type=Path, help="default: a fresh temporary directory")
    parser.add_argument("--profile", type=Path, help="write cProfile stats (all threads) here")
    parser.add_argument("--plot", type=Path, help="write a latency histogram PNG (matplotlib)")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    records = presign(args.records, key_count=args.keys)
    presign_seconds = time.perf_counter() - t0

    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = tempfile.mkdtemp(prefix="stemedb-bench-ingest-")
        data_dir = Path(tmp)
    profilers: list[cProfile.Profile] = []
    if args.profile:
        # cProfile sees only the thread it is enabled in: enable one in every thread
        # (the writer and verify threads start inside Engine.embedded(), so hook them first).
        def start_thread_profile(*_: Any) -> None:
            p = cProfile.Profile(time.thread_time)  # CPU time, not lock waits
            profilers.append(p)
            p.enable()

        threading.setprofile(start_thread_profile)
    counter = FsyncCounter()
    engine = Engine.embedded(
        data_dir,
        EngineSettings(
            group_commit_max_batch=args.max_batch,
            group_commit_max_delay_us=args.max_delay_us,
            fsync=not args.no_fsync,
            verify_threads=args.verify_threads,
            defence=DefenceConfig(quarantine=args.quarantine),
        ),
        observer=counter,
    )
    profiler = cProfile.Profile(time.thread_time) if args.profile else None
    try:
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        if args.mode == "threads":
            latencies, errors = run_threads(engine, records, args.clients, args.batch)
        else:
            latencies, errors = run_asyncio(engine, records, args.clients, args.batch)
        if profiler is not None:
            profiler.disable()
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        stats = engine.writer.stats
        batch_sizes = dict(stats.batch_sizes)
        result: dict[str, Any] = {
            "bench": "ingest",
            "records": args.records,
            "clients": args.clients,
            "mode": args.mode,
            "write_many_chunk": args.batch,
            "durable": not args.no_fsync,
            "group_commit_max_batch": args.max_batch,
            "group_commit_max_delay_us": args.max_delay_us,
            "verify_threads": args.verify_threads,
            "quarantine": args.quarantine,
            "quarantined": len(engine.store.quarantined(limit=1_000_000)),
            "cpus": os.cpu_count(),
            "presign_seconds": round(presign_seconds, 2),
            "seconds": round(elapsed, 3),
            "throughput_per_s": round(args.records / elapsed, 1),
            "cpu_seconds": round(cpu, 2),
            "cpu_us_per_record": round(cpu / args.records * 1e6, 1),
            "errors": errors,
            "latency_unit": "write_many call" if args.batch else "write call",
            "latency": latency_summary_ms(latencies),
            "writer_batches": batch_size_distribution(batch_sizes),
            "wal": counter.summary(args.records),
            "memory": memory_kib(),
            "store_bytes": engine.store.disk_bytes(),
        }
    finally:
        threading.setprofile(None)
        engine.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.profile and profiler is not None:
        stats_obj = pstats.Stats(profiler)
        for p in profilers:
            p.disable()
            with contextlib.suppress(TypeError):  # a thread that never ran a call
                stats_obj.add(p)
        stats_obj.dump_stats(str(args.profile))
        result["profile"] = str(args.profile)
    if args.plot:
        plotted = try_plot(
            args.plot,
            lambda plt: (
                plt.hist([x * 1e3 for x in latencies], bins=100, log=True),
                plt.xlabel("latency (ms)"),
                plt.ylabel("calls"),
                plt.title(f"ingest latency, {args.clients} {args.mode} clients"),
            ),
        )
        result["plot"] = plotted or "skipped: matplotlib is not installed"
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
