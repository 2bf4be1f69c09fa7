"""A Server-Sent Events line parser for ``GET /v1/feed/stream``.

The server sends one event per committed record (``id: <lsn>``, ``event: <kind>``,
``data: <FeedItem JSON>``), comments (``: keep-alive``) and a ``retry:`` hint.
"""

from __future__ import annotations

import msgspec

from stemedb.wire import FeedItem, decode_feed_item


class SseEvent(msgspec.Struct, frozen=True):
    id: str | None
    event: str
    data: str


class SseParser:
    """Feed it lines (without the newline); it returns an event at each blank line."""

    __slots__ = ("_data", "_event", "_id")

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> SseEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SseEvent(
                id=self._id, event=self._event or "message", data="\n".join(self._data)
            )
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None


def feed_item(event: SseEvent) -> FeedItem:
    """The FeedItem an event carries."""
    return decode_feed_item(event.data)
