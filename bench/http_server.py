"""Which HTTP server for the API: StemeDB's app under uvicorn (with and without the
project's patch) and under granian, against the bare Starlette app under each server.

Every variant is a real server process (tmp data dir, fsync ON, one HTTP process, the
writer process as deployed) driven by wrk on loopback. The variants run alternated,
round after round (A B C … A B C …), so that a VM that slows down or speeds up during
the run weighs on every variant alike; each figure is also given as a ratio to the bare
Starlette app under uvicorn measured in the same round. Prints one JSON document.

Variants (``--variants``):
- ``uvicorn-patched``: ``stemedb.api.app.serve`` as shipped (uvicorn + httptools, with
  ``api/http/uvicorn_patch.py``'s coalesced writes and header check).
- ``uvicorn``: the same app and uvicorn settings with uvicorn's own httptools protocol.
- ``granian``: the same app under granian's ASGI interface (one worker, one runtime
  thread), lifespan on.
- ``bare-uvicorn`` / ``bare-granian``: a Starlette app with one GET and one POST route
  that answer a small JSON body, and nothing else (the ceiling of each server).

    uv run --locked python bench/http_server.py --rounds 2 --seconds 8
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import http_load

VARIANTS = ("uvicorn-patched", "uvicorn", "granian", "bare-uvicorn", "bare-granian")
BASELINE = "bare-uvicorn"
ENTITIES = 500
# Records signed per second of a phase: more than any variant reaches here (a variant
# that runs out starts over, and its repeats count as "wrapped", not as created).
SINGLE_RATE_CAP, BATCH_RATE_CAP = 6000, 16000


# -- the servers (``--serve VARIANT`` runs one in this process) -----------------------


def _bare_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    body = b'{"status":"ok"}'

    async def get(request: Request) -> Response:
        return Response(body, media_type="application/json")

    async def post(request: Request) -> Response:
        await request.body()
        return Response(body, status_code=201, media_type="application/json")

    async def metrics(request: Request) -> Response:
        return Response(b"", media_type="text/plain")

    return Starlette(
        routes=[
            Route("/ready", get),
            Route("/metrics", metrics),
            Route("/v1/query", get),
            Route("/v1/assert", post, methods=["POST"]),
            Route("/v1/assert/batch", post, methods=["POST"]),
        ]
    )


def _uvicorn(app: Any, host: str, port: int, *, patched: bool) -> None:
    import uvicorn

    from stemedb.api.app import BACKLOG

    http: Any = "httptools"
    if patched:
        from stemedb.api.http.uvicorn_patch import CoalescingHttpToolsProtocol

        http = CoalescingHttpToolsProtocol
    uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="on",
            http=http,
            access_log=False,
            log_config=None,
            server_header=False,
            backlog=BACKLOG,
            timeout_keep_alive=30,
        )
    ).run()


def _granian(app: Any, host: str, port: int) -> None:
    import asyncio

    from granian.constants import Interfaces
    from granian.server.embed import Server

    from stemedb.api.app import BACKLOG

    async def run() -> None:
        server = Server(
            app,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            backlog=BACKLOG,
            log_enabled=False,
        )
        await server.serve()

    try:
        import uvloop

        uvloop.run(run())
    except ImportError:
        asyncio.run(run())


def serve(variant: str) -> None:
    from stemedb.api.app import create_app, parse_bind
    from stemedb.api.observability.logs import configure_logging
    from stemedb.config import load_config

    config = load_config(None)
    host, port = parse_bind(config.api.bind)
    if variant == "uvicorn-patched":
        from stemedb.api.app import serve as stemedb_serve

        stemedb_serve(config)
        return
    if variant.startswith("bare-"):
        app = _bare_app()
    else:
        configure_logging(config.logging)
        app = create_app(config)
    if variant.endswith("granian"):
        _granian(app, host, port)
    else:
        _uvicorn(app, host, port, patched=False)


# -- the driver ------------------------------------------------------------------------


class VariantServer(http_load.Server):  # type: ignore[misc]
    """bench/http_load.py's server, started as ``bench/http_server.py --serve VARIANT``."""

    def __init__(self, data_dir: Path, variant: str) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "--serve", variant]
        super().__init__(data_dir, {"STEMEDB_API_WORKERS": "1"}, command)


def presigned_files(tmp: Path, tag: str, args: Any) -> dict[str, Path]:
    """The wrk input of one run: distinct signed records (single and batched) and the
    queries over what the single phase writes."""
    singles = http_load.presign(int(SINGLE_RATE_CAP * args.seconds), f"s{tag}", args.sign_workers)
    batched = http_load.presign(int(BATCH_RATE_CAP * args.seconds), f"b{tag}", args.sign_workers)
    bodies = [
        b'{"assertions":[' + b",".join(batched[i : i + args.batch]) + b"]}"
        for i in range(0, len(batched), args.batch)
    ]
    queries = [
        f"/v1/query?subject=https{tag}/entity-{e}&predicate=attr-{p}".encode()
        for e in range(ENTITIES)
        for p in range(http_load.PREDICATES)
    ]
    return {
        "single": http_load.write_lines(tmp / "single.jsonl", singles),
        "batch": http_load.write_lines(tmp / "batch.jsonl", bodies),
        "query": http_load.write_lines(tmp / "queries.txt", queries),
    }


def run_variant(variant: str, tmp: Path, files: dict[str, Path], args: Any) -> dict[str, Any]:
    run_dir = tmp / f"{variant}-{time.monotonic_ns()}"
    run_dir.mkdir()
    server = VariantServer(run_dir / "data", variant)
    out: dict[str, Any] = {"variant": variant}
    try:
        out["single"] = http_load.phase_wrk(
            server,
            "single",
            http_load.POST_LUA,
            "/v1/assert",
            {"BENCH_BODIES": str(files["single"]), "BENCH_PATH": "/v1/assert"},
            threads=args.threads,
            connections=args.connections,
            seconds=args.seconds,
            per_request=1,
        )
        out["batch"] = http_load.phase_wrk(
            server,
            "batch",
            http_load.POST_LUA,
            "/v1/assert/batch",
            {"BENCH_BODIES": str(files["batch"]), "BENCH_PATH": "/v1/assert/batch"},
            threads=args.threads,
            connections=args.batch_connections,
            seconds=args.seconds,
            per_request=args.batch,
        )
        out["query"] = http_load.phase_wrk(
            server,
            "query",
            http_load.GET_LUA,
            "/",
            {"BENCH_PATHS": str(files["query"])},
            threads=args.threads,
            connections=args.connections,
            seconds=args.seconds,
            per_request=0,
        )
    finally:
        out["exit_code"] = server.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    return out


PHASE_FIGURE = {
    "single": "requests_per_second",
    "batch": "assertions_per_second",
    "query": "requests_per_second",
}


def summarise(rounds: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Per variant and phase: the figure of each round and its median, and the median of
    the ratio of its requests/s to the baseline variant's in the same round."""
    out: dict[str, Any] = {}
    for variant in {run["variant"] for runs in rounds for run in runs}:
        out[variant] = {}
        for phase, figure in PHASE_FIGURE.items():
            runs = _runs_of(rounds, variant)
            ratios = [
                by[variant][phase]["requests_per_second"]
                / by[BASELINE][phase]["requests_per_second"]
                for by in ({run["variant"]: run for run in runs} for runs in rounds)
                if BASELINE in by and variant in by
            ]
            values = [run[phase][figure] for run in runs]
            out[variant][phase] = {
                figure: values,
                "median": statistics.median(values),
                f"requests_ratio_to_{BASELINE}": round(statistics.median(ratios), 3)
                if ratios
                else None,
                "p99_ms": [run[phase]["p99_ms"] for run in runs],
                "server_cpu_us_per_item": [
                    run[phase].get("server_cpu_us_per_item") for run in runs
                ],
            }
    return out


def _runs_of(rounds: list[list[dict[str, Any]]], variant: str) -> list[dict[str, Any]]:
    return [run for runs in rounds for run in runs if run["variant"] == variant]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0, help="each wrk phase's length")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--batch-connections", type=int, default=8)
    parser.add_argument("--sign-workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if unknown := set(variants) - set(VARIANTS):
        parser.error(f"unknown variants: {sorted(unknown)}")
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (scripts/install-debian-deps.sh)")

    tmp = Path(tempfile.mkdtemp(prefix="stemedb-http-server-bench-"))
    report: dict[str, Any] = {
        "benchmark": "http_server",
        "cpus": os.cpu_count(),
        "machine": http_load.machine_speed(),
        "fsync": True,
        "config": {k: v for k, v in vars(args).items() if k != "serve"},
    }
    try:
        rounds: list[list[dict[str, Any]]] = []
        for round_index in range(args.rounds):
            results = []
            for variant_index, variant in enumerate(variants):
                tag = f"{round_index}-{variant_index}"  # every run writes records of its own
                files = presigned_files(tmp, tag, args)
                results.append(run_variant(variant, tmp, files, args))
            rounds.append(results)
        report["rounds"] = rounds
        report["summary"] = summarise(rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
