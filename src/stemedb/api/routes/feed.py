"""The change feed: ``GET /v1/feed`` (page + long-poll) and ``GET /v1/feed/stream`` (SSE).

Both read committed records in LSN order after a cursor LSN. A long-poll with nothing
new waits on the ``FeedHub`` (the engine's commit listener bridged to asyncio) for at
most ``min(wait_seconds, api.feed_max_wait_seconds)``. The stream sends one event per
record (``id: <lsn>``, ``event: <kind>``, ``data: <json>``), resumes after the
``Last-Event-ID`` header (else ``?after=``), and sends a comment as keep-alive.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from stemedb.api.http.params import QueryString
from stemedb.api.http.routing import ApiRoute, EndpointDoc, Param, api_route, json_response
from stemedb.api.state import ApiState
from stemedb.errors import ValidationError
from stemedb.wire import ErrorEnvelope, FeedItem, FeedPage

DEFAULT_FEED_LIMIT: Final = 100
STREAM_PAGE: Final = 500
KEEPALIVE_SECONDS: Final = 15.0
SSE_MEDIA_TYPE: Final = "text/event-stream"

_ENCODER: Final = msgspec.json.Encoder()


def sse_event(item: FeedItem) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        item.lsn,
        item.kind.encode(),
        _ENCODER.encode(item),
    )


def _lsn(name: str, raw: str | None) -> int:
    if raw is None:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(name, "type", f"{name} must be an LSN (integer)") from None
    if value < 0:
        raise ValidationError(name, "negative", f"{name} must be >= 0")
    return value


def routes(state: ApiState) -> list[ApiRoute]:
    max_wait = state.config.api.feed_max_wait_seconds

    async def get_feed(request: Request) -> Response:
        qs = QueryString(request)
        after = _lsn("after", qs.text("after"))
        limit = qs.integer("limit", DEFAULT_FEED_LIMIT)
        wait = qs.number("wait_seconds") or 0.0
        qs.finish()
        if wait < 0:
            raise ValidationError("wait_seconds", "negative", "wait_seconds must be >= 0")
        wait = min(wait, max_wait)
        provenance = state.service.provenance
        page: FeedPage = await state.offload(provenance.feed, after, limit)
        deadline = time.monotonic() + wait
        while not page.items and not state.feed.closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not await state.feed.wait(after, remaining):
                break
            page = await state.offload(provenance.feed, after, limit)
        return json_response(page)

    async def get_feed_stream(request: Request) -> Response:
        qs = QueryString(request)
        after = _lsn("after", qs.text("after"))
        qs.finish()
        last_event = request.headers.get("last-event-id")
        if last_event:
            after = _lsn("Last-Event-ID", last_event.strip())
        provenance = state.service.provenance

        async def events(after: int) -> AsyncIterator[bytes]:
            yield b": stemedb change feed\nretry: 1000\n\n"
            while not state.feed.closed:
                page: FeedPage = await state.offload(provenance.feed, after, STREAM_PAGE)
                if page.items:
                    yield b"".join(sse_event(item) for item in page.items)
                    after = page.next_after
                    continue
                if not await state.feed.wait(after, KEEPALIVE_SECONDS):
                    if state.feed.closed:
                        return
                    yield b": keep-alive\n\n"

        return StreamingResponse(
            events(after),
            media_type=SSE_MEDIA_TYPE,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return [
        api_route("/v1/feed", get_feed, ["GET"], EndpointDoc(
            summary="Committed records after an LSN, in LSN order; long-polls with"
            " wait_seconds when there is nothing new.",
            tag="feed",
            params=(
                Param("after", int, "LSN cursor: records with a greater LSN (default 0)"),
                Param("limit", int, f"1..1000 (default {DEFAULT_FEED_LIMIT})"),
                Param("wait_seconds", float, "long-poll up to this long (capped by"
                      " api.feed_max_wait_seconds)"),
            ),
            responses={200: FeedPage, 400: ErrorEnvelope},
        ), timeout_seconds=None),
        api_route("/v1/feed/stream", get_feed_stream, ["GET"], EndpointDoc(
            summary="Server-Sent Events of committed records (id = LSN, event = kind);"
            " resumes after Last-Event-ID or ?after=.",
            tag="feed",
            params=(Param("after", int, "LSN cursor (Last-Event-ID wins)"),),
            responses={200: FeedItem, 400: ErrorEnvelope},
            media_type=SSE_MEDIA_TYPE,
        ), timeout_seconds=None),
    ]  # fmt: skip
