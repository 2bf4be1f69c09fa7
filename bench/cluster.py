"""Embedded vs cluster mode on this machine: one StemeDB node on its WAL + SQLite, and
one node with ``storage.backend = "postgres"`` on a local PostgreSQL 15 (loopback).

Per mode, alternated (embedded, cluster, embedded, cluster with ``--rounds 2``):
- ``single``: durable signed assertions/s, one per ``POST /v1/assert``, wrk with
  ``--connections`` (64) connections (``http_load.phase_wrk``);
- ``batch``: the same through ``POST /v1/assert/batch`` (``--batch`` a request);
- ``query``: default-lens ``GET /v1/query`` p50/p99 over what was written;
- CPU per write: the StemeDB node's processes vs PostgreSQL's (every process of its
  data directory), so that the write throughput of N nodes can be computed from the
  measured per-node cost (the node's CPU scales with nodes, PostgreSQL's does not).

Plus PostgreSQL's own ingest headroom: binary ``COPY`` rows/s into a table shaped like
``assertions`` (``copy_rows_per_second``). Prints one JSON document with the machine
figure (``http_load.machine_speed``). Benchmarks are not tests; loopback only.

    uv run --locked python bench/cluster.py                  # ~2 min
    uv run --locked python bench/cluster.py --seconds 3 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from http_load import GET_LUA, POST_LUA, Server, machine_speed, phase_wrk, presign, write_lines

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' throwaway PostgreSQL server

from support.postgres import PostgresServer  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
COPY_ROWS = 200_000


def postgres_cpu_seconds(server: PostgresServer) -> float:
    """CPU seconds (user + system) of every process of the PostgreSQL server: the
    postmaster (first line of postmaster.pid) and its children."""
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for task in Path(f"/proc/{postmaster}/task").iterdir():
        pids.extend(int(p) for p in (task / "children").read_text().split())
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (
            int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        ) / CLOCK_TICKS
    return total


def copy_rows_per_second(dsn: str, rows: int) -> dict[str, Any]:
    """Binary COPY of ``rows`` assertion-shaped rows in one transaction (committed)."""
    import psycopg

    payload = [
        (i, os.urandom(32), f"copy/entity-{i // 4}", f"attr-{i % 4}", b"x" * 120, 0.5, 1.0)
        for i in range(rows)
    ]
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_copy (lsn bigint PRIMARY KEY, id bytea UNIQUE,"
            ' subject text COLLATE "C", predicate text, record bytea, confidence float8,'
            " committed_at float8)"
        )
        conn.execute("CREATE INDEX IF NOT EXISTS bench_copy_key ON bench_copy (subject, predicate)")
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY bench_copy (lsn, id, subject, predicate, record, confidence, committed_at)"
                " FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["int8", "bytea", "text", "text", "bytea", "float8", "float8"])
            for row in payload:
                copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE bench_copy")
        conn.commit()
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_second": round(rows / seconds)}


def run_mode(
    mode: str,
    base: Path,
    round_: int,
    pg: PostgresServer,
    files: dict[str, Path],
    args: argparse.Namespace,
) -> dict[str, Any]:
    env = {"STEMEDB_API_WORKERS": str(args.workers)}
    if mode == "cluster":
        env.update(
            STEMEDB_STORAGE_BACKEND="postgres",
            STEMEDB_STORAGE_POSTGRES_DSN=pg.create_database(),
            STEMEDB_STORAGE_AUTO_MIGRATE="true",
        )
    run_dir = base / f"{mode}-{round_}"  # an empty store each round, as in cluster mode
    run_dir.mkdir()
    server = Server(run_dir / "data", env)
    phases: list[dict[str, Any]] = []
    try:
        for name, script, path, per_request, connections in (
            ("single", POST_LUA, "/v1/assert", 1, args.connections),
            ("batch", POST_LUA, "/v1/assert/batch", args.batch, args.batch_connections),
        ):
            pg0 = postgres_cpu_seconds(pg)
            result = phase_wrk(
                server,
                name,
                script,
                path,
                {"BENCH_BODIES": str(files[name]), "BENCH_PATH": path},
                threads=args.threads,
                connections=connections,
                seconds=args.seconds,
                per_request=per_request,
            )
            written = result["ok_requests"] * per_request
            pg_cpu = postgres_cpu_seconds(pg) - pg0
            result["postgres_cpu_seconds"] = round(pg_cpu, 2)
            if written and mode == "cluster":
                result["postgres_cpu_us_per_item"] = round(pg_cpu / written * 1e6, 1)
            phases.append(result)
        pairs = [
            f"/v1/query?subject=httpcs/entity-{e}&predicate=attr-{p}"
            for e in range(500)
            for p in range(4)
        ]
        paths = write_lines(run_dir / "queries.txt", [p.encode() for p in pairs])
        phases.append(
            phase_wrk(
                server,
                "query",
                GET_LUA,
                "/",
                {"BENCH_PATHS": str(paths)},
                threads=args.threads,
                connections=args.connections,
                seconds=args.seconds,
                per_request=0,
            )
        )
    finally:
        exit_code = server.stop()
    return {"mode": mode, "server_exit_code": exit_code, "phases": phases}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="each wrk phase's length")
    parser.add_argument("--rounds", type=int, default=2, help="embedded/cluster alternations")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--batch-connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="each node's api.workers")
    parser.add_argument("--single-rate-cap", type=float, default=8000.0)
    parser.add_argument("--batch-rate-cap", type=float, default=30000.0)
    parser.add_argument("--sign-workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--copy-rows", type=int, default=COPY_ROWS)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (scripts/install-debian-deps.sh)")
    tmp = Path(tempfile.mkdtemp(prefix="stemedb-cluster-bench-"))
    report: dict[str, Any] = {
        "benchmark": "cluster",
        "cpus": os.cpu_count(),
        "machine": machine_speed(),
        "config": vars(args),
        "runs": [],
    }
    # Signed before any server starts (the clients' cost); every mode writes the same
    # records into its own empty store.
    files = {
        "single": write_lines(
            tmp / "single.jsonl",
            presign(int(args.single_rate_cap * args.seconds), "cs", args.sign_workers),
        )
    }
    bodies = presign(int(args.batch_rate_cap * args.seconds), "cb", args.sign_workers)
    files["batch"] = write_lines(
        tmp / "batch.jsonl",
        [
            b'{"assertions":[' + b",".join(bodies[i : i + args.batch]) + b"]}"
            for i in range(0, len(bodies), args.batch)
        ],
    )
    pg = PostgresServer().start()  # its own directory, which the postgres user owns
    try:
        report["postgres_copy"] = copy_rows_per_second(pg.create_database(), args.copy_rows)
        for round_ in range(args.rounds):
            for mode in ("embedded", "cluster"):
                report["runs"].append(run_mode(mode, tmp, round_, pg, files, args))
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
