"""Dashboard benchmark: server time per ``/ui`` page with N assertions loaded.

A real server (subprocess, its own temporary data directory, loopback) gets the demo
and ``--assertions`` synthetic signed assertions (``--claims-per-question`` claims on
each subject + predicate, from ``--agents`` agents, over ``POST /v1/assert/batch``);
then each page is requested ``--requests`` times, one at a time. The server time of
each request is the ``duration_ms`` of the server's own access-log line (what the
server spent, not the client's loopback round trip). Prints one JSON document: p50,
p99 and max per page. Bounded: every request has a timeout; the whole run stops after
``--max-seconds``. Benchmarks are not tests.

    uv run --locked python bench/ui.py                          # 100k assertions
    uv run --locked python bench/ui.py --assertions 1000000     # the 1M target (slow to load)
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
from pathlib import Path

import httpx
import msgspec

from stemedb.cli.demo import PREDICATE, SUBJECT, demo_records
from stemedb.cli.remote import load_remote
from stemedb.model.signing import AgentKey, sign_assertion

ACCESS = re.compile(r'"message":"HTTP GET (\S+) 200 .*?duration_ms=([0-9.]+)')
VALUES = ("rare", "common", "elevated", "none")
CLASSES = ("regulatory", "clinical", "observational", "expert", "community", "anecdotal")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load(url: str, count: int, per_question: int, agents: int, batch: int) -> float:
    keys = [AgentKey.generate() for _ in range(agents)]
    started = time.perf_counter()
    now = int(time.time())
    with httpx.Client(base_url=url, timeout=120.0) as http:
        records = []
        for i in range(count):
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
            if len(records) == batch or i == count - 1:
                body = msgspec.json.encode({"assertions": records})
                answer = http.post(
                    "/v1/assert/batch",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                answer.raise_for_status()
                records = []
    return time.perf_counter() - started


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


def measure(
    url: str, log: Path, targets: dict[str, str], requests: int, deadline: float
) -> dict[str, object]:
    out: dict[str, object] = {}
    with httpx.Client(base_url=url, timeout=30.0) as http:
        for name, path in targets.items():
            before = len(log.read_text().splitlines())
            for _ in range(requests):
                if time.monotonic() > deadline:
                    break
                http.get(path).raise_for_status()
            time.sleep(0.2)  # the last access lines reach the file
            lines = log.read_text().splitlines()[before:]
            route = urllib.parse.urlsplit(path).path
            ms = [
                float(m.group(2))
                for line in lines
                if (m := ACCESS.search(line)) and m.group(1) == route
            ]
            if ms:
                size = len(http.get(path).content)
                out[name] = {
                    "requests": len(ms),
                    "p50_ms": round(percentile(ms, 0.5), 2),
                    "p99_ms": round(percentile(ms, 0.99), 2),
                    "max_ms": round(max(ms), 2),
                    "html_bytes": size,
                }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assertions", type=int, default=100_000)
    parser.add_argument("--claims-per-question", type=int, default=10)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    args = parser.parse_args()
    deadline = time.monotonic() + args.max_seconds
    with tempfile.TemporaryDirectory(prefix="stemedb-bench-ui-") as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = Path(tmp) / "server.log"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")},
            "STEMEDB_DB_DIR": str(Path(tmp) / "data"),
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
            for _ in range(600):
                try:
                    if httpx.get(url + "/ready", timeout=1.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            load_remote(url, list(demo_records()))
            seconds = load(url, args.assertions, args.claims_per_question, args.agents, args.batch)
            query = httpx.get(
                url + "/v1/query", params={"subject": SUBJECT, "predicate": PREDICATE}
            ).json()
            source = httpx.get(url + "/v1/sources").json()["sources"][0]["source_hash"]
            result = measure(
                url, log, pages(query["claims"][0]["id"], source), args.requests, deadline
            )
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    print(
        json.dumps(
            {
                "assertions": args.assertions + 11,
                "load_seconds": round(seconds, 1),
                "requests_per_page": args.requests,
                "server_ms_by_page": result,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
