"""Loading records into a running server over HTTP (``stemedb demo --url``), with the SDK."""

from __future__ import annotations

from collections.abc import Sequence

from stemedb.client import Client
from stemedb.client.calls import SignedRecord


def load_remote(url: str, records: Sequence[SignedRecord], api_key: str | None = None) -> int:
    """Send every record in order; the number newly created (a second load creates none).
    Raises the SDK's ``ApiError`` / ``NetworkError`` on the first failure."""
    created = 0
    with Client.from_env(url=url, api_key=api_key) as db:
        for record in records:
            if db.write(record).status == "created":
                created += 1
    return created
