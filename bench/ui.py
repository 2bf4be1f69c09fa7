"""Dashboard benchmark: server time per ``/ui`` page with N assertions loaded.

The demo and ``--assertions`` synthetic signed assertions (``--claims-per-question``
claims on each subject + predicate, from ``--agents`` agents, six source classes, four
values) are written **through the engine's write path** (validation, Ed25519
verification, group commit, WAL, store apply) in bulk, in this process, with
``wal.fsync = false`` (the load is not what is measured; signing runs in worker
processes ahead of the writes), into a temporary data directory. Then a real server
(subprocess, that directory, loopback) serves it and each page is requested
``--requests`` times, one at a time, after one unmeasured warm-up request. The server
time of each request is the ``duration_ms`` of the server's own access-log line (what
the server spent, not the client's loopback round trip). Prints one JSON document: the
first (cold) request's time, p50, p99 and max per page, the page weight, and the
machine figure. ``[defence] quarantine`` is set off explicitly (a spam screen is not
what is measured; its default changes). Bounded: every request has a timeout; the
measurement stops after ``--max-seconds``. Benchmarks are not tests.

    uv run --locked python bench/ui.py                          # 100k assertions
    uv run --locked python bench/ui.py --assertions 1000000     # the 1M target (slow to load)
    uv run --locked python bench/ui.py --assertions 1000000 --data-dir /tmp/ui-1m  # kept, reusable
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import httpx
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import agent_keys
from search import machine_speed

from stemedb.cli.demo import PREDICATE, SUBJECT, demo_records
from stemedb.config import DefenceConfig
from stemedb.engine import Engine, EngineSettings
from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey, sign_assertion

ACCESS = re.compile(r'"message":"HTTP GET (\S+) 200 .*?duration_ms=([0-9.]+)')
VALUES = ("rare", "common", "elevated", "none")
CLASSES = ("regulatory", "clinical", "observational", "expert", "community", "anecdotal")
CHUNK = 5000
NO_QUARANTINE = {"STEMEDB_DEFENCE_QUARANTINE": "false"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sign_chunk(job: tuple[int, int, int, int, int]) -> bytes:
    """Assertions ``start`` .. ``stop`` (msgpack): question ``i // per_question``."""
    start, stop, per_question, agents, now = job
    keys = agent_keys(agents)
    records = []
    for i in range(start, stop):
        q = i // per_question
        records.append(
            sign_assertion(
                keys[i % agents],
                subject=f"bench/subject-{q // 4:07d}",
                predicate=f"p{q % 4}",
                object=VALUES[(i * 7 + q) % len(VALUES)],
                confidence=0.3 + (i % 7) / 10,
                source_class=CLASSES[i % len(CLASSES)],  # type: ignore[arg-type]
                timestamp=now - (i % 1000),
            )
        )
    return msgspec.msgpack.encode(records)


def _signed(count: int, per_question: int, agents: int) -> Iterator[list[Assertion]]:
    """Chunks of signed assertions, signed two chunks ahead in worker processes."""
    now = int(time.time())
    jobs = [
        (start, min(count, start + CHUNK), per_question, agents, now)
        for start in range(0, count, CHUNK)
    ]
    decoder = msgspec.msgpack.Decoder(list[Assertion])
    with ProcessPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) - 1)) as pool:
        ahead: list[Future[bytes]] = [pool.submit(_sign_chunk, job) for job in jobs[:3]]
        for index in range(len(jobs)):
            if index + 3 < len(jobs):
                ahead.append(pool.submit(_sign_chunk, jobs[index + 3]))
            yield decoder.decode(ahead[index].result())
            ahead[index] = Future()  # let the chunk's bytes go


def load(data_dir: Path, count: int, per_question: int, agents: int) -> dict[str, float]:
    """The demo and ``count`` assertions through the engine's write path (no fsync)."""
    settings = EngineSettings(fsync=False, defence=DefenceConfig(quarantine=False))
    started = time.perf_counter()
    engine = Engine.embedded(data_dir, settings)
    try:
        for record in demo_records():
            engine.write(record)
        for chunk in _signed(count, per_question, agents):
            outcomes = engine.write_many(chunk)
            failed = [o for o in outcomes if isinstance(o, Exception)]
            if failed:
                raise RuntimeError(f"{len(failed)} writes failed, e.g. {failed[0]!r}")
        assertions = engine.store.assertion_count()
    finally:
        engine.close()
    seconds = time.perf_counter() - started
    return {
        "assertions": assertions,
        "load_seconds": round(seconds, 1),
        "load_per_second": round(count / seconds),
    }


def pages(claim_id: str, source_hash: str) -> dict[str, str]:
    question = urllib.parse.urlencode({"subject": SUBJECT, "predicate": PREDICATE})
    bench_q = urllib.parse.urlencode({"subject": "bench/subject-0000001", "predicate": "p1"})
    return {
        "home": "/ui",
        "search": "/ui/search?q=gastroparesis",
        "browse": "/ui/search?prefix=bench/",
        "question (demo)": f"/ui/question?{question}",
        "question (bench)": f"/ui/question?{bench_q}",
        "claim": f"/ui/claims/{claim_id}",
        "sources": "/ui/sources",
        "retraction preview": f"/ui/sources/{source_hash}/retract",
        "audit": "/ui/audit",
        "disagreements (prefix)": "/ui/disagreements?prefix=bench/subject-00000",
        "disagreements (all, bounded)": "/ui/disagreements",
        "agents": "/ui/agents",
        "admin": "/ui/admin",
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _server_ms(log: Path, before: int, route: str) -> list[float]:
    time.sleep(0.2)  # the last access lines reach the file
    lines = log.read_text().splitlines()[before:]
    return [
        float(m.group(2)) for line in lines if (m := ACCESS.search(line)) and m.group(1) == route
    ]


def _summary(ms: list[float], first: list[float], size: int) -> dict[str, object]:
    return {
        "requests": len(ms),
        "first_ms": round(first[0], 2) if first else None,
        "p50_ms": round(percentile(ms, 0.5), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
        "html_bytes": size,
    }


def measure(
    url: str, log: Path, targets: dict[str, str], requests: int, deadline: float
) -> dict[str, object]:
    """Each page: one first (cold) request, then ``requests`` measured ones."""
    out: dict[str, object] = {}
    with httpx.Client(base_url=url, timeout=60.0) as http:
        for name, path in targets.items():
            route = urllib.parse.urlsplit(path).path
            before = len(log.read_text().splitlines())
            size = len(http.get(path).raise_for_status().content)
            first = _server_ms(log, before, route)
            before = len(log.read_text().splitlines())
            for _ in range(requests):
                if time.monotonic() > deadline:
                    break
                http.get(path).raise_for_status()
            ms = _server_ms(log, before, route)
            if ms:
                out[name] = _summary(ms, first, size)
    return out


def measure_board_under_writes(url: str, log: Path, views: int, deadline: float) -> object:
    """The whole board, one new claim on one of its questions before each view: what a
    view costs when the questions it shows keep changing (one row recomputed a view)."""
    key = AgentKey.generate()
    before = len(log.read_text().splitlines())
    with httpx.Client(base_url=url, timeout=60.0) as http:
        for i in range(views):
            if time.monotonic() > deadline:
                break
            record = sign_assertion(
                key,
                subject=f"bench/subject-{i % 100:07d}",
                predicate="p0",
                object=VALUES[i % len(VALUES)],
                confidence=0.6,
                source_class="clinical",
                timestamp=int(time.time()),
            )
            body = msgspec.json.encode(record)
            headers = {"Content-Type": "application/json"}
            http.post("/v1/assert", content=body, headers=headers).raise_for_status()
            http.get("/ui/disagreements").raise_for_status()
    ms = _server_ms(log, before, "/ui/disagreements")
    return _summary(ms, [], 0) if ms else None


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(1200):
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            if httpx.get(url + "/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not get ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assertions", type=int, default=100_000)
    parser.add_argument("--claims-per-question", type=int, default=10)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--views-under-writes", type=int, default=50)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    parser.add_argument("--no-machine", action="store_true", help="skip the machine figure")
    parser.add_argument(
        "--data-dir",
        help="load into this directory and keep it; if it holds a store already, measure"
        " that store again (no load)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stemedb-bench-ui-") as tmp:
        data = Path(args.data_dir) if args.data_dir else Path(tmp) / "data"
        if args.data_dir and (data / "wal").exists():
            loaded: dict[str, float] = {"reused_data_dir": 1}
        else:
            loaded = load(data, args.assertions, args.claims_per_question, args.agents)
        deadline = time.monotonic() + args.max_seconds
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = Path(tmp) / "server.log"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")},
            **NO_QUARANTINE,
            "STEMEDB_DB_DIR": str(data),
            "STEMEDB_BIND_ADDR": f"127.0.0.1:{port}",
            "STEMEDB_LOGGING_FORMAT": "json",
        }
        with log.open("ab") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "stemedb.api"],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_ready(url, proc)
            query = httpx.get(
                url + "/v1/query", params={"subject": SUBJECT, "predicate": PREDICATE}
            ).json()
            source = httpx.get(url + "/v1/sources").json()["sources"][0]["source_hash"]
            targets = pages(query["claims"][0]["id"], source)
            result = measure(url, log, targets, args.requests, deadline)
            under_writes = measure_board_under_writes(url, log, args.views_under_writes, deadline)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    print(
        json.dumps(
            {
                **loaded,
                "requests_per_page": args.requests,
                "server_ms_by_page": result,
                "disagreements (all) with a write before each view": under_writes,
                "machine": {} if args.no_machine else machine_speed(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
