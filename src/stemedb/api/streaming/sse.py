"""Server-Sent Events of the change feed (``GET /v1/feed/stream``).

One event per committed record (``id: <lsn>``, ``event: <kind>``, ``data: <json>``),
pages of ``STREAM_PAGE`` records read after the cursor; with nothing new the stream
waits on the ``FeedHub`` and sends a comment as keep-alive every ``KEEPALIVE_SECONDS``.
It ends when the hub closes (shutdown).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

import msgspec

from stemedb.api.streaming.hub import FeedHub
from stemedb.wire import FeedItem, FeedPage

STREAM_PAGE: Final = 500
KEEPALIVE_SECONDS: Final = 15.0
SSE_MEDIA_TYPE: Final = "text/event-stream"
SSE_HEADERS: Final = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

_ENCODER: Final = msgspec.json.Encoder()


def sse_event(item: FeedItem) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        item.lsn,
        item.kind.encode(),
        _ENCODER.encode(item),
    )


async def feed_events(
    hub: FeedHub, read_page: Callable[[int, int], Awaitable[FeedPage]], after: int
) -> AsyncIterator[bytes]:
    """The stream's bytes after LSN ``after``: ``read_page(after, limit)`` reads a page."""
    yield b": stemedb change feed\nretry: 1000\n\n"
    while not hub.closed:
        page = await read_page(after, STREAM_PAGE)
        if page.items:
            yield b"".join(sse_event(item) for item in page.items)
            after = page.next_after
            continue
        if not await hub.wait(after, KEEPALIVE_SECONDS):
            if hub.closed:
                return
            yield b": keep-alive\n\n"


__all__ = ["KEEPALIVE_SECONDS", "SSE_MEDIA_TYPE", "STREAM_PAGE", "feed_events", "sse_event"]
