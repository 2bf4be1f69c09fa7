"""The route guard counts the same over memory:// and over a shared storage: one gate,
two storages (``api.guard.counters``), the same answers and headers, request by request."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
from limits import RateLimitItem
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message

from stemedb.api.guard.access import AccessControl
from stemedb.api.guard.counters import Counters, MemoryCounter, Window
from stemedb.api.guard.gate import admit_agent
from stemedb.api.http.errors import AGENT_KEY
from stemedb.api.http.routing import RouteApp
from stemedb.api.observability.metrics import Metrics
from stemedb.config import Config, load_config

READER = "cd" * 32
WRITER = "ab" * 32


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class SharedMemory:
    """A ``WindowCounter`` that is not ``memory://``: the gate awaits it."""

    def __init__(self, clock: FakeClock) -> None:
        self.memory = MemoryCounter(clock)

    async def hit(self, item: RateLimitItem, ids: tuple[str, ...], cost: int = 1) -> Window:
        return self.memory.hit_now(item, ids, cost)

    async def peek(self, item: RateLimitItem, ids: tuple[str, ...]) -> Window:
        return self.memory.peek_now(item, ids)

    async def close(self) -> None:
        return None


async def read(request: Request) -> Response:
    return Response(b"{}")


async def write(request: Request) -> Response:
    await request.body()
    request.scope[AGENT_KEY] = WRITER
    await admit_agent(request)
    return Response(b"{}", status_code=201)


def _config(data_dir: Path) -> Config:
    raw = msgspec.to_builtins(load_config(None, environ={}))
    raw["storage"]["data_dir"] = str(data_dir)
    raw["quota"].update(enabled=True, tokens_per_hour=40)
    raw["rate_limit"].update(enabled=True, default_per_minute=5)
    return msgspec.convert(raw, Config)


def _access(data_dir: Path, *, shared: bool) -> AccessControl:
    access = AccessControl(_config(data_dir), Metrics("test"))
    clock = FakeClock()
    counters = Counters(SharedMemory(clock) if shared else MemoryCounter(clock))
    access.counters = access.rates.counters = access.quota.counters = counters
    access.memory = counters.memory
    assert (access.memory is None) == shared
    access.open(data_dir)
    return access


async def _call(app: Any, method: str, path: str, agent: str | None) -> tuple[int, list[Any]]:
    answer: dict[str, Any] = {}
    body = [b"x" * 1500]

    async def receive() -> Message:
        return {"type": "http.request", "body": body.pop() if body else b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = sorted(message["headers"])
        elif message["type"] == "http.response.body":
            decoded = msgspec.json.decode(message.get("body", b""))
            decoded.pop("request_id", None)  # fresh for every request
            answer["body"] = decoded

    headers = [] if agent is None else [(b"x-agent-id", agent.encode())]
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "query_string": b"",
    }
    await app(scope, receive, send)
    return answer["status"], [answer["headers"], answer["body"]]


def _conversation(data_dir: Path, *, shared: bool) -> list[Any]:
    access = _access(data_dir, shared=shared)
    reads = Route("/v1/query", read, methods=["GET"])
    writes = Route("/v1/assert", write, methods=["POST"])
    for route in (reads, writes):
        route.app = RouteApp(route.endpoint)
    access.protect([reads, writes])
    calls = [("GET", "/v1/query", READER)] * 8 + [("POST", "/v1/assert", None)] * 6
    calls += [("GET", "/v1/query", None)] * 2
    try:
        return [
            asyncio.run(_call((reads if method == "GET" else writes).app, method, path, agent))
            for method, path, agent in calls
        ]
    finally:
        access.keys.close()


def test_memory_and_a_shared_storage_answer_the_same(tmp_path: Path) -> None:
    memory = _conversation(tmp_path / "memory", shared=False)
    shared = _conversation(tmp_path / "shared", shared=True)
    assert [status for status, _ in memory] == [status for status, _ in shared]
    for index, (mine, theirs) in enumerate(zip(memory, shared, strict=True)):
        assert mine == theirs, index
    statuses = [status for status, _ in memory]
    assert 429 in statuses[:8] and 201 in statuses and 429 in statuses[8:14]
    quota_errors = [a for s, a in memory if s == 429 and a[1]["error"]["code"] == "quota_exceeded"]
    assert quota_errors, "the quota refused nothing"
    assert any(b"x-quota-remaining" in dict(a[0]) for _, a in memory)
