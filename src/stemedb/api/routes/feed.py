"""The change feed: ``GET /v1/feed`` (page + long-poll) and ``GET /v1/feed/stream`` (SSE).

Both read committed records in LSN order after a cursor LSN. A long-poll with nothing
new waits on the ``FeedHub`` (the engine's commit listener bridged to asyncio,
``api.streaming.hub``) for at most ``min(wait_seconds, api.feed_max_wait_seconds)``.
The stream (``api.streaming.sse``) resumes after the ``Last-Event-ID`` header (else
``?after=``).
"""

from __future__ import annotations

import time
from typing import Final

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from stemedb.api.http.params import QueryString
from stemedb.api.http.routing import ApiRoute, EndpointDoc, Param, api_route, json_response
from stemedb.api.routes.context import state_of
from stemedb.api.streaming.sse import SSE_HEADERS, SSE_MEDIA_TYPE, feed_events
from stemedb.errors import ValidationError
from stemedb.wire import (
    ErrorEnvelope,
    FeedItem,
    FeedPage,
)

DEFAULT_FEED_LIMIT: Final = 100


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


async def get_feed(request: Request) -> Response:
    qs = QueryString(request)
    after = _lsn("after", qs.text("after"))
    limit = qs.integer("limit", DEFAULT_FEED_LIMIT)
    wait = qs.number("wait_seconds") or 0.0
    qs.finish()
    if wait < 0:
        raise ValidationError("wait_seconds", "negative", "wait_seconds must be >= 0")
    state = state_of(request)
    wait = min(wait, state.config.api.feed_max_wait_seconds)
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
    state = state_of(request)
    provenance = state.service.provenance

    async def read_page(after: int, limit: int) -> FeedPage:
        page: FeedPage = await state.offload(provenance.feed, after, limit)
        return page

    return StreamingResponse(
        feed_events(state.feed, read_page, after),
        media_type=SSE_MEDIA_TYPE,
        headers=SSE_HEADERS,
    )


def routes() -> list[ApiRoute]:
    return [
        api_route(
            "/v1/feed",
            get_feed,
            ["GET"],
            EndpointDoc(
                summary="Committed records after an LSN, in LSN order; long-polls with"
                " wait_seconds when there is nothing new.",
                tag="feed",
                params=(
                    Param("after", int, "LSN cursor: records with a greater LSN (default 0)"),
                    Param("limit", int, f"1..1000 (default {DEFAULT_FEED_LIMIT})"),
                    Param(
                        "wait_seconds",
                        float,
                        "long-poll up to this long (capped by api.feed_max_wait_seconds)",
                    ),
                ),
                responses={200: FeedPage, 400: ErrorEnvelope},
            ),
            timeout_seconds=None,
        ),
        api_route(
            "/v1/feed/stream",
            get_feed_stream,
            ["GET"],
            EndpointDoc(
                summary="Server-Sent Events of committed records (id = LSN, event = kind);"
                " resumes after Last-Event-ID or ?after=.",
                tag="feed",
                params=(Param("after", int, "LSN cursor (Last-Event-ID wins)"),),
                responses={200: FeedItem, 400: ErrorEnvelope},
                media_type=SSE_MEDIA_TYPE,
            ),
            timeout_seconds=None,
        ),
    ]
