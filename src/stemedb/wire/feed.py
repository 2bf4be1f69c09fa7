"""The change feed: ``GET /v1/feed`` pages and the items of ``GET /v1/feed/stream``.

An item's ``record`` is the committed record as written (``model.records``), its type
named by the item's ``kind``. msgspec cannot decode an untagged union of structs, so to
msgspec (decoding, the OpenAPI document) the field is a JSON object, and
``decode_feed_page`` / ``decode_feed_item`` then convert it to the record struct of its
kind. To a type checker it is that struct.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeAlias

import msgspec

from stemedb.model.kinds import TYPE_OF_KIND, AnyRecord, RecordKind

FEED_KIND_NAMES: Final[dict[RecordKind, str]] = {kind: kind.name.lower() for kind in RecordKind}
RECORD_TYPES: Final[dict[str, type[Any]]] = {
    FEED_KIND_NAMES[kind]: cls for kind, cls in TYPE_OF_KIND.items()
}

if TYPE_CHECKING:
    FeedRecord: TypeAlias = AnyRecord
else:
    FeedRecord = dict[str, object]


class FeedItem(msgspec.Struct, kw_only=True):
    lsn: int
    kind: str
    id: str
    committed_at: float
    record: FeedRecord | None


class FeedPage(msgspec.Struct, kw_only=True):
    items: list[FeedItem]
    next_after: int
    last_lsn: int


_PAGE_DECODER: Final = msgspec.json.Decoder(FeedPage)
_ITEM_DECODER: Final = msgspec.json.Decoder(FeedItem)


def _with_typed_record(item: FeedItem) -> FeedItem:
    if item.record is not None:
        record_type = RECORD_TYPES.get(item.kind)
        if record_type is None:
            raise msgspec.ValidationError(f"unknown record kind {item.kind!r} at `$.kind`")
        item.record = msgspec.convert(item.record, record_type)
    return item


def decode_feed_page(data: bytes | str) -> FeedPage:
    """A ``GET /v1/feed`` answer, each record as its ``model.records`` struct."""
    page = _PAGE_DECODER.decode(data)
    for item in page.items:
        _with_typed_record(item)
    return page


def decode_feed_item(data: bytes | str) -> FeedItem:
    """One ``GET /v1/feed/stream`` event's data, the record as its ``model.records`` struct."""
    return _with_typed_record(_ITEM_DECODER.decode(data))


__all__ = [
    "FEED_KIND_NAMES",
    "RECORD_TYPES",
    "FeedItem",
    "FeedPage",
    "FeedRecord",
    "decode_feed_item",
    "decode_feed_page",
]
