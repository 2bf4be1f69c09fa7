"""The change feed: pages, a waiting long-poll woken by a write, and SSE delivery."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import msgspec
from api_helpers import FEED_MAX_WAIT_SECONDS, last_lsn, post
from api_server import ServerProcess

from stemedb.model.signing import AgentKey, sign_assertion


def write_later(server: ServerProcess, record: Any, delay: float) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        with httpx.Client(base_url=server.url) as client:
            assert post(client, "/v1/assert", record).status_code == 201

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_feed_pages_in_lsn_order(client: httpx.Client, alice: AgentKey, subject: str) -> None:
    start = last_lsn(client)
    for i in range(3):
        record = sign_assertion(alice, subject=subject, predicate="p", object=i, confidence=0.5)
        post(client, "/v1/assert", record)
    page = client.get("/v1/feed", params={"after": start, "limit": 2}).json()
    assert [i["lsn"] for i in page["items"]] == [start + 1, start + 2]
    assert page["next_after"] == start + 2 and page["last_lsn"] >= start + 3
    item = page["items"][0]
    assert item["kind"] == "assertion" and item["record"]["subject"] == subject
    rest = client.get("/v1/feed", params={"after": page["next_after"]}).json()
    assert rest["items"][0]["lsn"] == start + 3


def test_long_poll_is_woken_by_a_new_record(
    server: ServerProcess, client: httpx.Client, alice: AgentKey, subject: str
) -> None:
    start = last_lsn(client)
    record = sign_assertion(alice, subject=subject, predicate="p", object="x", confidence=0.5)
    writer = write_later(server, record, 0.5)
    began = time.monotonic()
    page = client.get("/v1/feed", params={"after": start, "wait_seconds": 10}).json()
    waited = time.monotonic() - began
    writer.join()
    assert [i["record"]["subject"] for i in page["items"]] == [subject]
    assert 0.3 < waited < FEED_MAX_WAIT_SECONDS


def test_long_poll_with_nothing_new_returns_empty_after_the_cap(client: httpx.Client) -> None:
    head = last_lsn(client)
    began = time.monotonic()
    page = client.get("/v1/feed", params={"after": head + 10_000, "wait_seconds": 0.4}).json()
    assert page["items"] == [] and 0.3 < time.monotonic() - began < 3
    began = time.monotonic()
    capped = client.get("/v1/feed", params={"after": head + 10_000, "wait_seconds": 3600})
    assert capped.status_code == 200
    assert time.monotonic() - began < FEED_MAX_WAIT_SECONDS + 2


def _read_events(response: httpx.Response, count: int) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in current:
                events.append(current)
                if len(events) == count:
                    return events
            current = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            current[key] = value
    return events


def test_sse_stream_delivers_new_records(
    server: ServerProcess, alice: AgentKey, subject: str
) -> None:
    with httpx.Client(base_url=server.url, timeout=20) as client:
        start = last_lsn(client)
        record = sign_assertion(alice, subject=subject, predicate="p", object="y", confidence=0.5)
        writer = write_later(server, record, 0.5)
        with client.stream("GET", "/v1/feed/stream", params={"after": start}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = _read_events(response, 1)
        writer.join()
    assert events[0]["id"] == str(start + 1)
    assert events[0]["event"] == "assertion"
    data = msgspec.json.decode(events[0]["data"])
    assert data["lsn"] == start + 1 and data["record"]["subject"] == subject


def test_sse_resumes_after_last_event_id(
    server: ServerProcess, client: httpx.Client, alice: AgentKey, subject: str
) -> None:
    start = last_lsn(client)
    for i in range(2):
        record = sign_assertion(alice, subject=subject, predicate="p", object=i, confidence=0.5)
        post(client, "/v1/assert", record)
    headers = {"Last-Event-ID": str(start + 1)}
    with (
        httpx.Client(base_url=server.url, timeout=20) as sse,
        sse.stream("GET", "/v1/feed/stream", params={"after": 0}, headers=headers) as response,
    ):
        events = _read_events(response, 1)
    assert events[0]["id"] == str(start + 2)


def test_bad_feed_parameters_are_400(client: httpx.Client) -> None:
    for params in ({"after": "-1"}, {"after": "x"}, {"limit": "0"}, {"wait_seconds": "-2"}):
        response = client.get("/v1/feed", params=params)
        assert response.status_code == 400, params
        assert response.json()["error"]["type"] == "ValidationError"
    bad = client.get("/v1/feed/stream", headers={"Last-Event-ID": "abc"})
    assert bad.status_code == 400
