"""Route-guard cost in process: event-loop CPU per request, access control off vs on.

``bench/hardening.py`` measures the guard through a real server and wrk, where a few
per cent are within the noise of a shared VM. This drives the ASGI app itself: two apps
(``create_app``) in one event loop, configured like ``hardening.py``'s ``off`` and
``on`` (same environment variables; ``fsync`` off and a tmp data dir here), lifespan
started by hand, and requests built as ASGI ``scope``/``receive``/``send`` with no
sockets. The ``send`` does what the server's (``api.http.uvicorn_patch.LeanCycle``) does with
the response headers (the validation regexes, the status line, one join), since the
guard's extra headers cost there too.

Per round and configuration (alternated ``off, on, off, on, …``): ``--writes``
distinct pre-signed ``POST /v1/assert`` over ``--concurrency`` concurrent "connections",
then ``--queries`` default-lens ``GET /v1/query`` with ``X-Agent-Id`` (and ``X-API-Key``
when on). ``--set`` changes the ``on`` configuration, e.g. to turn one part off again
and see what the rest costs. The number is the CPU time of the event-loop thread
(``time.thread_time``) per request; the guard's cost is the ``on - off`` difference
(median of the rounds).

    uv run --locked python bench/guard_micro.py
    uv run --locked python bench/guard_micro.py --rounds 40 --set STEMEDB_QUOTA_ENABLED=false
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


class Lifespan:
    """The ASGI lifespan protocol of one app, driven by hand."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _receive(self) -> dict[str, Any]:
        return await self._inbox.get()

    async def _send(self, message: dict[str, Any]) -> None:
        await self._outbox.put(message)

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._task = asyncio.create_task(self.app(scope, self._receive, self._send))
        await self._inbox.put({"type": "lifespan.startup"})
        answer = await self._outbox.get()
        if answer["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"lifespan startup failed: {answer}")

    async def stop(self) -> None:
        await self._inbox.put({"type": "lifespan.shutdown"})
        answer = await self._outbox.get()
        if answer["type"] != "lifespan.shutdown.complete":
            raise RuntimeError(f"lifespan shutdown failed: {answer}")
        if self._task is not None:
            await self._task


class Exchange:
    """One request's ``receive`` and ``send``; ``send`` treats headers like uvicorn."""

    __slots__ = ("body", "sent_body", "status")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.sent_body = False
        self.status = 0

    async def receive(self) -> dict[str, Any]:
        if not self.sent_body:
            self.sent_body = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await asyncio.Event().wait()  # never: the handlers read the body once
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            content = [b"HTTP/1.1 %d\r\n" % self.status]
            headers = [*DEFAULT_HEADERS, *message.get("headers", [])]
            # as the server's api.http.uvicorn_patch.LeanCycle checks them
            if HEADER_RE.search(b"".join([name for name, _ in headers])):
                raise RuntimeError("invalid header name")
            if HEADER_VALUE_RE.search(b"".join([value for _, value in headers])):
                raise RuntimeError("invalid header value")
            for name, value in headers:
                content.extend((name.lower(), b": ", value, b"\r\n"))
            content.append(b"\r\n")
            b"".join(content)


DEFAULT_HEADERS: list[tuple[bytes, bytes]] = [(b"date", b"Thu, 01 Jan 2026 00:00:00 GMT")]
HEADER_RE: Any = None
HEADER_VALUE_RE: Any = None


def request_scope(
    method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]]
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": headers,
        "state": {},
    }


class Target:
    """One app (off or on) with its request headers."""

    def __init__(self, mode: str, app: Any, key: str, agent: str) -> None:
        self.mode = mode
        self.app = app
        common = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"guard-micro")]
        if key:
            common.append((b"x-api-key", key.encode()))
        self.write_headers = [*common, (b"content-type", b"application/json")]
        self.read_headers = [*common, (b"x-agent-id", agent.encode())]
        self.bad = 0

    async def post(self, body: bytes) -> None:
        headers = [*self.write_headers, (b"content-length", b"%d" % len(body))]
        exchange = Exchange(body)
        scope = request_scope("POST", "/v1/assert", b"", headers)
        await self.app(scope, exchange.receive, exchange.send)
        if exchange.status != 201:
            self.bad += 1

    async def get(self, query: bytes) -> None:
        exchange = Exchange(b"")
        await self.app(
            request_scope("GET", "/v1/query", query, self.read_headers),
            exchange.receive,
            exchange.send,
        )
        if exchange.status != 200:
            self.bad += 1


async def phase(requests: list[Any], concurrency: int) -> float:
    """Run the coroutines ``concurrency`` at a time; the loop thread's CPU seconds."""
    queue = iter(requests)

    async def connection() -> None:
        for request in queue:
            await request

    gc.collect()
    started = time.thread_time()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.thread_time() - started


def config_for(mode: str, data_dir: Path, hardening: Any, overrides: list[str]) -> Any:
    from stemedb.config import load_config

    env = {
        **hardening.server_env(mode == "on"),
        "STEMEDB_DB_DIR": str(data_dir),
        "STEMEDB_WAL_FSYNC": "false",
        "STEMEDB_API_MAX_BATCH": "1000",
    }
    if mode == "on":
        for item in overrides:
            name, _, value = item.partition("=")
            env[name] = value
    return load_config(None, environ=env)


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    global HEADER_RE, HEADER_VALUE_RE
    import hardening
    import http_load
    from uvicorn.protocols.http import httptools_impl

    from stemedb.api.app import create_app
    from stemedb.model.signing import AgentKey

    HEADER_RE, HEADER_VALUE_RE = httptools_impl.HEADER_RE, httptools_impl.HEADER_VALUE_RE
    count = args.writes * args.rounds
    bodies: list[bytes] = http_load.presign(count, "s", args.sign_workers)
    agent = AgentKey.from_seed(hashlib.sha256(b"stemedb-http-bench-0").digest()).agent_id
    entities = max(1, min(500, args.writes // 4))  # written in the first round
    pairs = [
        f"subject=https/entity-{(i // 4) % entities}&predicate=attr-{i % 4}".encode()
        for i in range(args.queries)
    ]
    targets: list[Target] = []
    lifespans: list[Lifespan] = []
    for mode in ("off", "on"):
        app = create_app(config_for(mode, tmp / mode, hardening, args.set))
        lifespan = Lifespan(app)
        await lifespan.start()
        lifespans.append(lifespan)
        key = ""
        if mode == "on" and app.state.api.access.auth_enabled:
            key = app.state.api.access.keys.create("bench-writer", "writer", None).secret
        targets.append(Target(mode, app, key, agent))
    results: dict[str, dict[str, list[float]]] = {
        t.mode: {"write_us": [], "query_us": []} for t in targets
    }
    try:
        for round_ in range(args.rounds):
            batch = bodies[round_ * args.writes : (round_ + 1) * args.writes]
            for target in targets:
                seconds = await phase([target.post(b) for b in batch], args.concurrency)
                results[target.mode]["write_us"].append(1e6 * seconds / len(batch))
                seconds = await phase([target.get(q) for q in pairs], args.concurrency)
                results[target.mode]["query_us"].append(1e6 * seconds / len(pairs))
    finally:
        for lifespan in lifespans:
            await lifespan.stop()
    report: dict[str, Any] = {"benchmark": "guard_micro", "config": vars(args)}
    for field in ("write_us", "query_us"):
        off, on = results["off"][field], results["on"][field]
        report[field] = {
            "off": [round(v, 1) for v in off],
            "on": [round(v, 1) for v in on],
            "median_off": round(statistics.median(off), 1),
            "median_on": round(statistics.median(on), 1),
            "median_difference": round(
                statistics.median(b - a for a, b in zip(off, on, strict=True)), 1
            ),
            "mean_difference": round(statistics.mean(on) - statistics.mean(off), 1),
        }
    report["non_2xx"] = {t.mode: t.bad for t in targets}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=25, help="off/on pairs")
    parser.add_argument("--writes", type=int, default=1000, help="POST /v1/assert per round")
    parser.add_argument("--queries", type=int, default=2000, help="GET /v1/query per round")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent requests")
    parser.add_argument("--sign-workers", type=int, default=2)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="STEMEDB_NAME=VALUE",
        help="override a variable of the on configuration (e.g. to turn one part off)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="stemedb-guard-micro-"))
    try:
        report = asyncio.run(run(args, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return 1 if any(report["non_2xx"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
