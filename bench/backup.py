"""Backup and restore throughput: MiB/s and assertions/s.

1. Load ``--records`` signed assertions (default 100,000) with ``write_many``
   (``fsync=False``: loading speed is bench/ingest.py's subject), engine left open.
2. ``backup create`` into a local directory while the engine is open (and, with
   ``--concurrent``, while a thread keeps writing through it).
3. ``backup verify`` (all four stages: checksums, trial restore, state hash).
4. Full restore (copy + verify checksums + open), WAL-only restore (store rebuilt by
   replaying every record), and point-in-time restore to the middle LSN.
5. With ``--s3``, the backup and a restore through a local moto S3 server as well.

    uv run --locked python bench/backup.py --records 100000
    uv run --locked python bench/backup.py --records 1000000 --s3

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import msgspec

from stemedb.engine import Engine, EngineSettings
from stemedb.model.records import Assertion
from stemedb.ops.backup.create import create_backup
from stemedb.ops.backup.location import LocalBackups, S3Backups
from stemedb.ops.backup.restore import RestoreRequest, restore_backup
from stemedb.ops.backup.verify import verify_backup

sys.path.insert(0, str(Path(__file__).resolve().parent))
from query import LOAD_CHUNK_RECORDS, _sign_chunk

MIB = 1024 * 1024


def load(engine: Engine, records: int, start: int = 0) -> None:
    decoder = msgspec.msgpack.Decoder(Assertion)
    now = int(time.time())
    chunks = [
        (s, min(start + records, s + LOAD_CHUNK_RECORDS), now)
        for s in range(start, start + records, LOAD_CHUNK_RECORDS)
    ]
    with ProcessPoolExecutor(max_workers=2) as pool:
        pending: list[Future[list[bytes]]] = [pool.submit(_sign_chunk, c) for c in chunks[:2]]
        next_chunk = 2
        while pending:
            blobs = pending.pop(0).result()
            if next_chunk < len(chunks):
                pending.append(pool.submit(_sign_chunk, chunks[next_chunk]))
                next_chunk += 1
            engine.write_many([decoder.decode(b) for b in blobs])


def rates(seconds: float, nbytes: int, assertions: int) -> dict[str, float]:
    return {
        "seconds": round(seconds, 2),
        "mib": round(nbytes / MIB, 1),
        "mib_per_s": round(nbytes / MIB / seconds, 1),
        "assertions_per_s": round(assertions / seconds),
    }


def timed(label: str, results: dict[str, Any], fn: Any) -> Any:
    started = time.perf_counter()
    value = fn()
    results[label] = {"seconds": round(time.perf_counter() - started, 2)}
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: tmp)")
    parser.add_argument("--concurrent", action="store_true", help="write during the backup")
    parser.add_argument("--s3", action="store_true", help="also through a moto S3 server")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="stemedb-bench-backup-", dir=args.dir))
    out: dict[str, Any] = {"records": args.records}
    try:
        data = work / "data"
        settings = EngineSettings(fsync=False, group_commit_max_batch=LOAD_CHUNK_RECORDS)
        engine = Engine.embedded(data, settings)
        started = time.perf_counter()
        load(engine, args.records)
        out["load_seconds"] = round(time.perf_counter() - started, 1)
        out["store_bytes"] = engine.store.disk_bytes()
        out["wal_bytes"] = engine.wal.disk_usage_bytes()

        stop = threading.Event()
        extra = {"written": 0}

        def keep_writing() -> None:
            while not stop.is_set():
                load(engine, LOAD_CHUNK_RECORDS, args.records + extra["written"])
                extra["written"] += LOAD_CHUNK_RECORDS

        writer = threading.Thread(target=keep_writing, daemon=True)
        if args.concurrent:
            writer.start()
        started = time.perf_counter()
        backup = create_backup(data, data / "wal", LocalBackups(work / "backups"))
        seconds = time.perf_counter() - started
        stop.set()
        if args.concurrent:
            writer.join()
        manifest = backup.manifest
        out["backup"] = rates(seconds, manifest.total_bytes, manifest.assertion_count)
        out["backup"]["concurrent_writes"] = args.concurrent
        out["backup"]["records_written_during"] = extra["written"]
        engine.close()

        started = time.perf_counter()
        verified = verify_backup(backup.url, scratch_root=work)
        out["verify"] = rates(
            time.perf_counter() - started, manifest.total_bytes, manifest.assertion_count
        )
        out["verify"]["ok"] = verified.ok
        out["verify"]["stages_seconds"] = {s.name: s.seconds for s in verified.stages}

        for label, request in (
            ("restore_full", RestoreRequest(backup.url, work / "r-full")),
            ("restore_wal_only", RestoreRequest(backup.url, work / "r-wal", wal_only=True)),
            (
                "restore_pitr_mid",
                RestoreRequest(backup.url, work / "r-pitr", to_lsn=manifest.last_lsn // 2),
            ),
        ):
            started = time.perf_counter()
            report = restore_backup(request)
            seconds = time.perf_counter() - started
            out[label] = rates(seconds, report.bytes_restored, report.restored_lsn)
            out[label]["records_replayed"] = report.records_replayed
            out[label]["ok"] = report.ok
            shutil.rmtree(request.data_dir)

        if args.s3:
            out.update(s3_round_trip(data, work, manifest.assertion_count))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


def s3_round_trip(data: Path, work: Path, assertions: int) -> dict[str, Any]:
    import logging
    import socket

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request

    from stemedb.ops.s3 import S3Client, S3Location

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "STEMEDB_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        }
    )
    out: dict[str, Any] = {}
    try:
        S3Client.from_env().create_bucket("bench")
        location = S3Backups(S3Location("bench", "backups"))
        started = time.perf_counter()
        backup = create_backup(data, data / "wal", location)
        out["backup_s3_moto"] = rates(
            time.perf_counter() - started, backup.manifest.total_bytes, assertions
        )
        started = time.perf_counter()
        report = restore_backup(RestoreRequest(backup.url, work / "r-s3"))
        out["restore_s3_moto"] = rates(
            time.perf_counter() - started, report.bytes_restored, assertions
        )
        out["restore_s3_moto"]["ok"] = report.ok
    finally:
        server.stop()
    return out


if __name__ == "__main__":
    raise SystemExit(main())
