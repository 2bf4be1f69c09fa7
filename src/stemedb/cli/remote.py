"""Loading records into a running server over HTTP (``stemedb demo --url``)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import msgspec

from stemedb.model.kinds import AnyRecord
from stemedb.model.records import (
    Assertion,
    CoSignature,
    Epoch,
    Retraction,
    Source,
    Supersession,
    Vote,
)


def _route(record: AnyRecord) -> tuple[str, bytes]:
    if isinstance(record, Assertion):
        return "/v1/assert", msgspec.json.encode(record)
    if isinstance(record, CoSignature):
        return f"/v1/assertions/{record.assertion_id}/signatures", msgspec.json.encode(
            record.signature
        )
    if isinstance(record, Vote):
        return "/v1/vote", msgspec.json.encode(record)
    if isinstance(record, Epoch):
        return "/v1/epoch", msgspec.json.encode(record)
    if isinstance(record, Supersession):
        return "/v1/supersede", msgspec.json.encode(record)
    if isinstance(record, Source):
        return "/v1/sources", msgspec.json.encode(record)
    if isinstance(record, Retraction):
        body = {
            "reason": record.reason,
            "timestamp": record.timestamp,
            "signatures": record.signatures,
        }
        return f"/v1/sources/{record.source_hash}/retract", msgspec.json.encode(body)
    raise TypeError(f"cannot send {type(record).__name__} over HTTP")


def load_remote(url: str, records: Sequence[AnyRecord]) -> None:
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for record in records:
            path, body = _route(record)
            response = client.post(path, content=body, headers={"content-type": "application/json"})
            response.raise_for_status()
