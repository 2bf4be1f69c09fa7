"""Helpers of the API tests: posting msgspec records, the feed head, envelope checks."""

from __future__ import annotations

import time
from typing import Any

import httpx
import msgspec

MAX_BATCH = 5
MAX_BODY_BYTES = 200_000
FEED_MAX_WAIT_SECONDS = 2
MIN_LSN_WAIT_SECONDS = 0.3


def now() -> int:
    return int(time.time())


def post(client: httpx.Client, path: str, record: Any, **kwargs: Any) -> httpx.Response:
    return client.post(
        path,
        content=msgspec.json.encode(record),
        headers={"content-type": "application/json"},
        **kwargs,
    )


def last_lsn(client: httpx.Client) -> int:
    page = client.get("/v1/feed", params={"after": 0, "limit": 1}).json()
    return int(page["last_lsn"])


def assert_envelope(
    response: httpx.Response, status: int, error_type: str, code: str | None = None
) -> dict[str, Any]:
    """The API.md envelope, with the request id in the body and the header."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "request_id"}
    error = body["error"]
    assert set(error) == {"code", "type", "message", "details", "retryable"}
    assert error["type"] == error_type, body
    if code is not None:
        assert error["code"] == code, body
    assert response.headers["x-request-id"] == body["request_id"]
    assert "Traceback" not in response.text and "/src/" not in response.text
    return dict(error)
