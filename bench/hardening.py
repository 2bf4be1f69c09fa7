"""Hardening overhead (issue 4): the same HTTP load with access control off and on.

Each run starts a fresh server (``bench/http_load.py``'s ``Server``: subprocess, tmp data
dir, fsync ON) and drives it with wrk, 64 connections:

1. ``single``: ``POST /v1/assert``, one pre-signed assertion per request, every
   request a distinct record (``bench/http_post.lua``; the same bodies serve every run,
   each run has a fresh, empty store);
2. ``query``: default-lens ``GET /v1/query?subject=&predicate=`` over 2,000
   (subject, predicate) pairs written by step 1 (``bench/http_get.lua``), with
   ``X-Agent-Id`` set so the reader's agent limit and quota apply.

Two configurations, alternated ``off, on, off, on, …`` (``--rounds`` of each) so a
noisy shared VM hits both alike:

- ``off``: ``[auth]``, ``[rate_limit]`` and ``[quota]`` disabled (the defaults).
  Metrics are always on (they cannot be turned off), and so is the access log.
- ``on``: ``[auth] enabled`` + ``require_for_reads``; every request carries a
  ``writer`` key as ``X-API-Key`` (created through ``POST /v1/admin/api-keys`` with the
  root key of ``STEMEDB_ROOT_API_KEY``); ``[rate_limit] enabled`` with ``memory://``
  storage, ``default_per_minute`` and ``[rate_limit.endpoints]`` limits on both routes
  far too high to trigger (so every request is counted per endpoint, per key and per
  agent); ``[quota] enabled`` with a budget that cannot run out (every request of an
  agent is checked and charged); per-agent circuit breakers active (automatic with
  auth on: every write's outcome is recorded).

Prints one JSON document: every run (throughput, p50/p90/p99, WAL group-commit
sizes, CPU of server vs wrk), the mean per configuration and the overhead
``1 - on/off`` in throughput. A run with any non-201/200 answer is an error: a limit
that triggered would make the comparison meaningless.

    uv run --locked python bench/hardening.py                     # 3 rounds x 20 s
    uv run --locked python bench/hardening.py --rounds 2 --seconds 10
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import http_load

ROOT_SECRET = "bench-root-" + "0123456789abcdef" * 3  # >= 32 characters
NEVER = 1_000_000_000  # a limit / budget no benchmark run can reach
ENTITIES, PREDICATES = 500, http_load.PREDICATES


def server_env(hardened: bool) -> dict[str, str]:
    if not hardened:
        return {
            "STEMEDB_AUTH_ENABLED": "false",
            "STEMEDB_RATE_LIMIT_ENABLED": "false",
            "STEMEDB_QUOTA_ENABLED": "false",
        }
    return {
        "STEMEDB_AUTH_ENABLED": "true",
        "STEMEDB_AUTH_REQUIRE_FOR_READS": "true",
        "STEMEDB_ROOT_API_KEY": ROOT_SECRET,
        "STEMEDB_RATE_LIMIT_ENABLED": "true",
        "STEMEDB_RATE_LIMIT_STORAGE": "memory://",
        "STEMEDB_RATE_LIMIT_DEFAULT_PER_MINUTE": str(NEVER),
        "STEMEDB_RATE_LIMIT_ENDPOINTS": json.dumps({"/v1/assert": NEVER, "/v1/query": NEVER}),
        "STEMEDB_QUOTA_ENABLED": "true",
        "STEMEDB_QUOTA_TOKENS_PER_HOUR": str(NEVER * 1000),
        "STEMEDB_RESILIENCE_ENABLE_CIRCUIT_BREAKER": "true",
    }


def create_key(url: str, role: str) -> str:
    """A new API key's secret, created with the root key."""
    body = json.dumps({"name": f"bench-{role}", "role": role}).encode()
    request = urllib.request.Request(
        url + "/v1/admin/api-keys",
        data=body,
        method="POST",
        headers={"X-API-Key": ROOT_SECRET, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return str(json.loads(answer.read())["secret"])


def check_refused(url: str, path: str) -> int:
    """The status of a request without a key (must be 401 when hardened)."""
    try:
        with urllib.request.urlopen(url + path, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def one_run(
    mode: str,
    index: int,
    tmp: Path,
    bodies: Path,
    paths: Path,
    agent: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    hardened = mode == "on"
    run_dir = tmp / f"run-{index}-{mode}"
    run_dir.mkdir()
    server = http_load.Server(run_dir / "data", server_env(hardened))
    out: dict[str, Any] = {"mode": mode, "index": index}
    try:
        key = ""
        if hardened:
            key = create_key(server.url, "writer")
            out["anonymous_query_status"] = check_refused(
                server.url, "/v1/query?subject=x&predicate=y"
            )
        common = {"threads": args.threads, "connections": args.connections, "seconds": args.seconds}
        out["single"] = http_load.phase_wrk(
            server,
            "single",
            http_load.POST_LUA,
            "/v1/assert",
            {"BENCH_BODIES": str(bodies), "BENCH_PATH": "/v1/assert", "BENCH_API_KEY": key},
            per_request=1,
            **common,
        )
        time.sleep(args.pause)
        out["query"] = http_load.phase_wrk(
            server,
            "query",
            http_load.GET_LUA,
            "/",
            {"BENCH_PATHS": str(paths), "BENCH_API_KEY": key, "BENCH_AGENT_ID": agent},
            per_request=0,
            **common,
        )
    finally:
        out["server_exit_code"] = server.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    return out


def summary(runs: list[dict[str, Any]], phase: str, metric: str) -> dict[str, Any]:
    def values(mode: str, field: str) -> list[float]:
        return [r[phase][field] for r in runs if r["mode"] == mode]

    off, on = values("off", metric), values("on", metric)
    mean_off, mean_on = statistics.mean(off), statistics.mean(on)
    out: dict[str, Any] = {
        "metric": metric,
        "off": off,
        "on": on,
        "mean_off": round(mean_off, 1),
        "mean_on": round(mean_on, 1),
        "overhead_percent": round(100.0 * (1.0 - mean_on / mean_off), 1),
        "median_overhead_percent": round(
            100.0 * (1.0 - statistics.median(on) / statistics.median(off)), 1
        ),
        # pairwise: each "on" run against the "off" run just before it
        "paired_overhead_percent": [
            round(100.0 * (1.0 - b / a), 1) for a, b in zip(off, on, strict=True)
        ],
    }
    for field in ("p50_ms", "p99_ms", "server_cpu_seconds"):
        out[f"{field}_off"] = round(statistics.mean(values("off", field)), 2)
        out[f"{field}_on"] = round(statistics.mean(values("on", field)), 2)
    requests_off = sum(values("off", "requests"))
    requests_on = sum(values("on", "requests"))
    cpu_off = sum(values("off", "server_cpu_seconds"))
    cpu_on = sum(values("on", "server_cpu_seconds"))
    out["server_cpu_us_per_request_off"] = round(1e6 * cpu_off / requests_off, 1)
    out["server_cpu_us_per_request_on"] = round(1e6 * cpu_on / requests_on, 1)
    out["within_10_percent"] = out["overhead_percent"] <= 10.0
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each configuration")
    parser.add_argument("--seconds", type=float, default=20.0, help="each wrk phase's length")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between phases")
    parser.add_argument(
        "--single-rate-cap",
        type=float,
        default=8000.0,
        help="distinct records pre-signed per second of the single phase",
    )
    parser.add_argument("--sign-workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--order",
        default="alternate",
        choices=["alternate", "on-first"],
        help="alternate: off,on,off,on...; on-first: on,off,on,off...",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (scripts/install-debian-deps.sh)")

    from stemedb.model.signing import AgentKey

    tmp = Path(tempfile.mkdtemp(prefix="stemedb-hardening-bench-"))
    report: dict[str, Any] = {
        "benchmark": "hardening",
        "cpus": os.cpu_count(),
        "machine": http_load.machine_speed(),
        "fsync": True,
        "config": vars(args),
        "metrics_on_in_both": True,
        "hardened_env": {
            k: ("<root secret>" if "ROOT" in k else v) for k, v in server_env(True).items()
        },
        "runs": [],
    }
    try:
        t0 = time.monotonic()
        count = int(args.single_rate_cap * args.seconds)
        bodies = http_load.write_lines(
            tmp / "single.jsonl", http_load.presign(count, "s", args.sign_workers)
        )
        report["presign_seconds"] = round(time.monotonic() - t0, 1)
        pairs = [
            f"/v1/query?subject=https/entity-{e}&predicate=attr-{p}"
            for e in range(ENTITIES)
            for p in range(PREDICATES)
        ]
        paths = http_load.write_lines(tmp / "queries.txt", [p.encode() for p in pairs])
        # the agent of the reads: one of the benchmark's signers
        agent = AgentKey.from_seed(hashlib.sha256(b"stemedb-http-bench-0").digest()).agent_id
        first, second = ("off", "on") if args.order == "alternate" else ("on", "off")
        index = 0
        for _ in range(args.rounds):
            for mode in (first, second):
                run = one_run(mode, index, tmp, bodies, paths, agent, args)
                report["runs"].append(run)
                brief = {
                    p: (run[p]["requests_per_second"], run[p]["other_status"])
                    for p in ("single", "query")
                }
                print(f"run {index} {mode}: {brief}", file=sys.stderr, flush=True)
                index += 1
                time.sleep(args.pause)
        report["single"] = summary(report["runs"], "single", "assertions_per_second")
        report["query"] = summary(report["runs"], "query", "requests_per_second")
        bad = [
            (r["index"], p)
            for r in report["runs"]
            for p in ("single", "query")
            if r[p]["other_status"] or r[p]["socket_errors"] or r[p].get("wrapped_bodies")
        ]
        report["runs_with_errors_or_reused_bodies"] = bad
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return 1 if report.get("runs_with_errors_or_reused_bodies") else 0


if __name__ == "__main__":
    sys.exit(main())
