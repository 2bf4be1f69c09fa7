"""HTTP API benchmark: a real server (subprocess, tmp data dir, fsync ON) on loopback.

Phases (``--phases``, default all):
- ``single``: durable signed assertions/s, one assertion per ``POST /v1/assert``, wrk
  with ``--connections`` (64) connections; every request a distinct pre-signed record.
- ``batch``: the same through ``POST /v1/assert/batch`` (``--batch`` records a request).
- ``query``: default-lens ``GET /v1/query?subject=&predicate=`` over the ingested data.
- ``pilot``: the pilot criterion, open loop: ``--rate`` (1000) assertions/s for
  ``--duration`` seconds (300) from our own raw-socket asyncio client; latency counts
  from each request's *scheduled* send time (no coordinated omission); p99 <= 50 ms.

Reports requests/s, p50/p99, the server's group-commit sizes (``stemedb_wal_batch_size``
from /metrics, per phase) and CPU seconds of the server vs the load generator (both
share the machine's cores). Prints one JSON document. Benchmarks are not tests.

    uv run --locked python bench/http_load.py                       # everything, 5-min pilot
    uv run --locked python bench/http_load.py --duration 20 --seconds 5   # CI-sized
    uv run --locked python bench/http_load.py --workers 2 --phases single,batch,query
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
POST_LUA = BENCH_DIR / "http_post.lua"
GET_LUA = BENCH_DIR / "http_get.lua"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SOURCE_CLASSES = ("regulatory", "clinical", "observational", "expert", "community", "anecdotal")
PREDICATES = 4


# -- pre-signed records ---------------------------------------------------------------


def _sign_range(args: tuple[str, int, int, int]) -> list[bytes]:
    import msgspec

    from stemedb.model.signing import AgentKey, sign_assertion

    tag, start, stop, now = args
    keys = [
        AgentKey.from_seed(hashlib.sha256(f"stemedb-http-bench-{i}".encode()).digest())
        for i in range(16)
    ]
    enc = msgspec.json.Encoder()
    out = []
    for i in range(start, stop):
        record = sign_assertion(
            keys[i % len(keys)],
            subject=f"http{tag}/entity-{i // PREDICATES}",
            predicate=f"attr-{i % PREDICATES}",
            object=f"value-{i}",
            confidence=0.5 + (i % 50) / 100.0,
            timestamp=now - (i % 1000),
            source_class=SOURCE_CLASSES[i % len(SOURCE_CLASSES)],  # type: ignore[arg-type]
        )
        out.append(enc.encode(record))
    return out


def presign(count: int, tag: str, workers: int) -> list[bytes]:
    """``count`` distinct signed assertions as JSON bodies (signing is the client's cost)."""
    now = int(time.time())
    step = max(500, -(-count // (workers * 8)))
    jobs = [(tag, s, min(count, s + step), now) for s in range(0, count, step)]
    out: list[bytes] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for part in pool.map(_sign_range, jobs):
            out.extend(part)
    return out


# -- the server -----------------------------------------------------------------------


def _verify_seconds(count: int) -> float:
    """Seconds for ``count`` Ed25519 verifications (libsodium, as the server does them)."""
    import nacl.bindings
    import nacl.signing

    key = nacl.signing.SigningKey(hashlib.sha256(b"stemedb-machine-speed").digest())
    signed, public = bytes(key.sign(b"x" * 200)), bytes(key.verify_key)
    started = time.perf_counter()
    for _ in range(count):
        nacl.bindings.crypto_sign_open(signed, public)
    return time.perf_counter() - started


def _loop_seconds(count: int) -> float:
    started = time.perf_counter()
    total = 0
    for i in range(count):
        total += i
    return time.perf_counter() - started


def machine_speed() -> dict[str, float]:
    """How fast this VM is at what the server spends most of its CPU on, so that runs on
    different VMs can be compared (the same code measured 42 and 63 µs per Ed25519
    verification on two VMs of the same kind): one Ed25519 verification and one
    iteration of a plain Python loop (best of 5), and how much faster two processes
    verify than one (the VM of 2026-11-28 gave ≈ 1.1: its two vCPUs behaved like SMT
    siblings; that of 2026-12-02 gave 2.0)."""
    verify = min(_verify_seconds(400) / 400 for _ in range(5))
    loop = min(_loop_seconds(200_000) / 200_000 for _ in range(5))
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_verify_seconds, [1, 1]))  # both workers started
        count = 3000
        rates = [count / seconds for seconds in pool.map(_verify_seconds, [count, count])]
    return {
        "ed25519_verify_us": round(verify * 1e6, 1),
        "python_loop_ns": round(loop * 1e9, 1),
        "ed25519_two_process_scaling": round(sum(rates) * verify, 2),
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(
        self, data_dir: Path, env: dict[str, str], command: Sequence[str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / "server.log"
        environ = {
            **os.environ,
            "STEMEDB_DB_DIR": str(data_dir),
            "STEMEDB_BIND_ADDR": f"127.0.0.1:{self.port}",
            "STEMEDB_WAL_FSYNC": "true",
            "STEMEDB_API_MAX_BATCH": "1000",
            **env,
        }
        environ.pop("STEMEDB_CONFIG", None)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            command or [sys.executable, "-m", "stemedb.api"],
            env=environ,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.log_path.read_text()[-2000:])
            try:
                with urllib.request.urlopen(self.url + "/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not become ready")

    def pids(self) -> list[int]:
        """The server and its children (the writer process, the other HTTP workers)."""
        out = [self.proc.pid]
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                out.extend(int(p) for p in (task / "children").read_text().split())
            except OSError:
                continue
        return out

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) of the HTTP processes (``api.workers``) and of the
        writer process (``[wal] writer_process``)."""
        out = {"server": 0.0, "writer": 0.0}
        for pid in self.pids():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                writer = b"runtime.writer_process" in Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            out["writer" if writer else "server"] += seconds
        return out

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as r:
            return str(r.read().decode())

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)


_BUCKET = re.compile(r'^stemedb_wal_batch_size_bucket\{le="([^"]+)"\} (\S+)$', re.M)
_SUM = re.compile(r"^stemedb_wal_batch_size_sum (\S+)$", re.M)
_COUNT = re.compile(r"^stemedb_wal_batch_size_count (\S+)$", re.M)


def batch_histogram(text: str) -> dict[str, Any]:
    buckets = {m[1]: float(m[2]) for m in _BUCKET.finditer(text)}
    s, c = _SUM.search(text), _COUNT.search(text)
    return {"buckets": buckets, "sum": float(s[1]) if s else 0.0, "count": float(c[1]) if c else 0}


def batch_sizes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Group commits during a phase: count, mean records per commit, p50/p99 bucket."""
    commits = after["count"] - before["count"]
    records = after["sum"] - before["sum"]
    out: dict[str, Any] = {
        "commits": int(commits),
        "mean": round(records / commits, 1) if commits else 0.0,
    }
    for q in (0.5, 0.99):
        for le, cum in after["buckets"].items():
            if cum - before["buckets"].get(le, 0.0) >= q * commits and commits:
                out[f"p{int(q * 100)}_le"] = le
                break
    return out


def cpu_fields(
    before: dict[str, float],
    after: dict[str, float],
    load_cpu: float,
    wall: float,
    items: int,
    *,
    ceiling: bool = True,
) -> dict[str, Any]:
    """A phase's CPU: both server processes, the load generator, the server's CPU per
    item (assertion or query), and (``ceiling``, for a closed loop at full load) the rate
    that cost allows on this machine: every core the load generator leaves, busy with
    nothing but this work (never reached: it tells what a target asks of the code on
    this VM)."""
    server = after["server"] - before["server"]
    writer = after["writer"] - before["writer"]
    total = server + writer
    out: dict[str, Any] = {
        "server_cpu_seconds": round(total, 2),
        "writer_process_cpu_seconds": round(writer, 2),
        "load_generator_cpu_seconds": round(load_cpu, 2),
        "server_cpu_share": round(total / wall, 2),
        "load_generator_cpu_share": round(load_cpu / wall, 2),
    }
    if not (items and total):
        return out
    per_item = total / items
    out["server_cpu_us_per_item"] = round(per_item * 1e6, 1)
    out["writer_process_cpu_us_per_item"] = round(writer / items * 1e6, 1)
    if ceiling:
        free_cores = (os.cpu_count() or 1) - load_cpu / wall
        out["cpu_bound_ceiling_per_s"] = round(free_cores / per_item)
    return out


# -- wrk ------------------------------------------------------------------------------


def run_wrk(
    script: Path,
    url: str,
    env: dict[str, str],
    *,
    threads: int,
    connections: int,
    seconds: float,
) -> tuple[dict[str, Any], float, float]:
    """Run wrk; return its BENCH_JSON summary, its CPU seconds and wall seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        env={**os.environ, **env, "BENCH_THREADS": str(threads)},
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("BENCH_JSON "))
    return json.loads(line.split(" ", 1)[1]), cpu, wall


def phase_wrk(
    server: Server,
    name: str,
    script: Path,
    path: str,
    env: dict[str, str],
    *,
    threads: int,
    connections: int,
    seconds: float,
    per_request: int,
) -> dict[str, Any]:
    hist0, cpu0 = batch_histogram(server.metrics()), server.cpu_seconds()
    summary, load_cpu, wall = run_wrk(
        script,
        server.url + path,
        env,
        threads=threads,
        connections=connections,
        seconds=seconds,
    )
    cpu1 = server.cpu_seconds()
    hist1 = batch_histogram(server.metrics())
    duration = summary["duration_us"] / 1e6
    good = summary.get("created", summary.get("ok", 0))
    out = {
        "phase": name,
        "connections": connections,
        "seconds": round(duration, 2),
        "requests": summary["requests"],
        "requests_per_second": round(summary["requests"] / duration, 1),
        "ok_requests": good,
        "other_status": summary["other"],
        "socket_errors": sum(v for k, v in summary.items() if k.startswith("errors_")),
        "p50_ms": summary["p50_us"] / 1e3,
        "p90_ms": summary["p90_us"] / 1e3,
        "p99_ms": summary["p99_us"] / 1e3,
        "max_ms": summary["max_us"] / 1e3,
        **cpu_fields(cpu0, cpu1, load_cpu, wall, good * max(1, per_request)),
    }
    if per_request:
        out["assertions_per_second"] = round(good * per_request / duration, 1)
        out["wrapped_bodies"] = summary.get("wrapped", 0)
        out["wal_batch_size"] = batch_sizes(hist0, hist1)
    return out


# -- the open-loop pilot client ---------------------------------------------------------


async def _open_loop(
    host: str, port: int, bodies: Sequence[bytes], rate: float, connections: int
) -> tuple[list[float], int, int]:
    """Send ``bodies`` at ``rate``/s over a pool of keep-alive connections; latency of
    each from its scheduled time. Returns (latencies, 201 count, other count)."""
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses = {"created": 0, "other": 0}
    head = (
        f"POST /v1/assert HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        while (item := await queue.get()) is not None:
            index, scheduled = item
            body = bodies[index]
            writer.write(b"%s%d\r\n\r\n%s" % (head, len(body), body))
            header = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", header)[1])  # type: ignore[index]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - scheduled)
            statuses["created" if header[9:12] == b"201" else "other"] += 1
        writer.close()

    tasks = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.perf_counter() + 0.05
    interval = 1.0 / rate
    for index in range(len(bodies)):
        scheduled = start + index * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((index, scheduled))
    for _ in tasks:
        queue.put_nowait(None)
    await asyncio.gather(*tasks)
    return latencies, statuses["created"], statuses["other"]


def phase_pilot(server: Server, bodies: Sequence[bytes], rate: float) -> dict[str, Any]:
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        loop_factory = asyncio.new_event_loop
    hist0, cpu0 = batch_histogram(server.metrics()), server.cpu_seconds()
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        latencies, created, other = runner.run(
            _open_loop("127.0.0.1", server.port, bodies, rate, connections=64)
        )
    wall = time.monotonic() - started
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    load_cpu = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
    cpu1 = server.cpu_seconds()
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3, 2)

    p99 = pct(0.99)
    return {
        "phase": "pilot",
        "target_rate": rate,
        "seconds": round(wall, 1),
        "requests": len(latencies),
        "achieved_rate": round(len(latencies) / wall, 1),
        "created": created,
        "other_status": other,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": p99,
        "p999_ms": pct(0.999),
        "max_ms": round(latencies[-1] * 1e3, 2),
        "pilot_criterion_met": p99 <= 50.0 and other == 0,
        "wal_batch_size": batch_sizes(hist0, batch_histogram(server.metrics())),
        # At a fixed rate little is coalesced: the cost per item says nothing of a ceiling.
        **cpu_fields(cpu0, cpu1, load_cpu, wall, created, ceiling=False),
    }


# -- main -----------------------------------------------------------------------------


def write_lines(path: Path, lines: Sequence[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", default="single,batch,query,pilot")
    parser.add_argument("--seconds", type=float, default=10.0, help="wrk phases' length")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--batch", type=int, default=500, help="assertions per batch request")
    parser.add_argument("--batch-connections", type=int, default=8)
    parser.add_argument("--rate", type=float, default=1000.0, help="pilot assertions/s")
    parser.add_argument("--duration", type=float, default=300.0, help="pilot seconds")
    parser.add_argument(
        "--single-rate-cap",
        type=float,
        default=12000.0,
        help="records pre-signed for the single phase per second",
    )
    parser.add_argument("--batch-rate-cap", type=float, default=40000.0)
    parser.add_argument("--workers", type=int, default=1, help="the server's api.workers")
    parser.add_argument("--sign-workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args(argv)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if shutil.which("wrk") is None and set(phases) - {"pilot"}:
        parser.error("wrk is not installed (scripts/install-debian-deps.sh)")

    tmp = Path(tempfile.mkdtemp(prefix="stemedb-http-bench-"))
    report: dict[str, Any] = {
        "benchmark": "http",
        "cpus": os.cpu_count(),
        "machine": machine_speed(),
        "fsync": True,
        "config": {k: v for k, v in vars(args).items() if k != "keep"},
        "phases": [],
    }
    # Sign everything before the server starts: signing is the clients' cost, not ours.
    t0 = time.monotonic()
    files: dict[str, Path] = {}
    if "single" in phases:
        count = int(args.single_rate_cap * args.seconds)
        files["single"] = write_lines(tmp / "single.jsonl", presign(count, "s", args.sign_workers))
    if "batch" in phases:
        count = int(args.batch_rate_cap * args.seconds)
        bodies = presign(count, "b", args.sign_workers)
        batches = [
            b'{"assertions":[' + b",".join(bodies[i : i + args.batch]) + b"]}"
            for i in range(0, len(bodies), args.batch)
        ]
        files["batch"] = write_lines(tmp / "batch.jsonl", batches)
    pilot_bodies: list[bytes] = []
    if "pilot" in phases:
        pilot_bodies = presign(int(args.rate * args.duration), "p", args.sign_workers)
    report["presign_seconds"] = round(time.monotonic() - t0, 1)

    server = Server(tmp / "data", {"STEMEDB_API_WORKERS": str(args.workers)})
    try:
        if "single" in phases:
            report["phases"].append(
                phase_wrk(
                    server,
                    "single",
                    POST_LUA,
                    "/v1/assert",
                    {"BENCH_BODIES": str(files["single"]), "BENCH_PATH": "/v1/assert"},
                    threads=args.threads,
                    connections=args.connections,
                    seconds=args.seconds,
                    per_request=1,
                )
            )
        if "batch" in phases:
            report["phases"].append(
                phase_wrk(
                    server,
                    "batch",
                    POST_LUA,
                    "/v1/assert/batch",
                    {"BENCH_BODIES": str(files["batch"]), "BENCH_PATH": "/v1/assert/batch"},
                    threads=args.threads,
                    connections=args.batch_connections,
                    seconds=args.seconds,
                    per_request=args.batch,
                )
            )
        if "query" in phases:
            tag = "s" if "single" in phases else "b"
            pairs = [
                f"/v1/query?subject=http{tag}/entity-{e}&predicate=attr-{p}"
                for e in range(500)
                for p in range(PREDICATES)
            ]
            if not {"single", "batch"} & set(phases):
                server_note = "no ingest phase ran: queries hit empty subjects"
                report["query_note"] = server_note
            paths = write_lines(tmp / "queries.txt", [p.encode() for p in pairs])
            report["phases"].append(
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
        if "pilot" in phases:
            report["phases"].append(phase_pilot(server, pilot_bodies, args.rate))
    finally:
        report["server_exit_code"] = server.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            report["data_dir"] = str(tmp)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
