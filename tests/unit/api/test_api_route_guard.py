"""The route guard charges a write's body by its Content-Length or, without one, by
the bytes the handler read: the same tokens either way."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message

from stemedb.api.guard.access import AccessControl
from stemedb.api.guard.gate import admit_agent
from stemedb.api.http.errors import AGENT_KEY
from stemedb.api.http.routing import RouteApp
from stemedb.api.observability.metrics import Metrics
from stemedb.config import Config, load_config

AGENT = "ab" * 32
BODY = b"x" * 5000  # 4 whole KiB: 4 tokens on top of an assertion's 10


async def handler(request: Request) -> Response:
    """A write endpoint: reads the body, names the signer, answers 201."""
    await request.body()
    request.scope[AGENT_KEY] = AGENT
    await admit_agent(request)
    return Response(b"{}", status_code=201)


def _config(data_dir: Path) -> Config:
    raw = msgspec.to_builtins(load_config(None, environ={}))
    raw["storage"]["data_dir"] = str(data_dir)
    raw["quota"].update(enabled=True, tokens_per_hour=1000)
    raw["rate_limit"].update(enabled=True, default_per_minute=1000)
    return msgspec.convert(raw, Config)


async def _post(app: Any, headers: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    chunks = [BODY[:3000], BODY[3000:]]
    answer: dict[bytes, bytes] = {}

    async def receive() -> Message:
        body = chunks.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer.update(message["headers"])

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/assert",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "query_string": b"",
    }
    await app(scope, receive, send)
    return answer


def test_a_writes_quota_charge_is_the_same_with_or_without_content_length(
    tmp_path: Path,
) -> None:
    access = AccessControl(_config(tmp_path), Metrics("test"))
    access.open(tmp_path)
    route = Route("/v1/assert", handler, methods=["POST"])
    route.app = RouteApp(handler)
    access.protect([route])
    try:
        declared = [(b"content-length", b"%d" % len(BODY))]
        first = asyncio.run(_post(route.app, declared))
        second = asyncio.run(_post(route.app, []))
    finally:
        access.keys.close()
    assert first[b"x-quota-remaining"] == b"%d" % (1000 - 14)
    assert second[b"x-quota-remaining"] == b"%d" % (1000 - 28)
    assert first[b"x-ratelimit-remaining"] == b"999"
    assert second[b"x-ratelimit-remaining"] == b"998"
