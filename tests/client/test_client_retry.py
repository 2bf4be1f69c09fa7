"""The client's own retry logic (backoff, jitter, Retry-After, deadline, which failures
are retried). A local httpx.MockTransport plays the server here, and only here: it is
the only way to answer 503/429 on demand; everything else runs against a real server."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Callable

import httpx
import pytest

from stemedb.client import (
    AsyncClient,
    Client,
    NetworkError,
    RateLimitError,
    RetryPolicy,
    UnavailableError,
    ValidationError,
)
from stemedb.client.retry import parse_retry_after

HEALTH = b'{"status": "ok", "version": "t", "uptime_seconds": 1.0}'


def envelope(status: int, type_name: str, code: str) -> httpx.Response:
    body = {
        "error": {
            "code": code,
            "type": type_name,
            "message": code,
            "details": {},
            "retryable": status in (429, 503),
        },
        "request_id": "rid-1",
    }
    headers = {"Retry-After": "1"} if status in (429, 503) else {}
    return httpx.Response(status, json=body, headers=headers)


class Script:
    """Answers requests from a list, recording what was asked."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the client's waits instead of sleeping."""
    waits: list[float] = []
    monkeypatch.setattr("stemedb.client.sync_client.time.sleep", waits.append)
    return waits


def client(script: Callable[[httpx.Request], httpx.Response], **kw: object) -> Client:
    policy = kw.pop("retry", RetryPolicy(backoff_base_seconds=0.01))
    return Client("http://stemedb.test", transport=httpx.MockTransport(script), retry=policy, **kw)  # type: ignore[arg-type]


def test_503_is_retried_honouring_retry_after(sleeps: list[float]) -> None:
    script = Script(
        envelope(503, "UnavailableError", "unavailable"), httpx.Response(200, content=HEALTH)
    )
    assert client(script).health().status == "ok"
    assert len(script.requests) == 2
    assert sleeps and sleeps[0] >= 1.0  # Retry-After: 1 beats a 0.01 s backoff


def test_429_is_retried_until_max_retries_then_raised(sleeps: list[float]) -> None:
    script = Script(*[envelope(429, "RateLimitError", "rate_limited") for _ in range(4)])
    with pytest.raises(RateLimitError) as info:
        client(script, retry=RetryPolicy(max_retries=3)).health()
    assert len(script.requests) == 4 and len(sleeps) == 3
    assert info.value.retry_after_seconds == 1.0 and info.value.request_id == "rid-1"


def test_one_request_id_is_kept_across_retries(sleeps: list[float]) -> None:
    script = Script(envelope(503, "StorageError", "read_only"), httpx.Response(200, content=HEALTH))
    client(script).health()
    ids = {r.headers["x-request-id"] for r in script.requests}
    assert len(ids) == 1


def test_client_errors_are_not_retried(sleeps: list[float]) -> None:
    script = Script(envelope(400, "ValidationError", "invalid_field"))
    with pytest.raises(ValidationError):
        client(script).health()
    assert len(script.requests) == 1 and sleeps == []


def test_retry_after_longer_than_the_deadline_gives_up_at_once(sleeps: list[float]) -> None:
    script = Script(envelope(503, "UnavailableError", "unavailable"))
    with pytest.raises(UnavailableError):
        client(script, retry=RetryPolicy(deadline_seconds=0.5)).health()
    assert len(script.requests) == 1 and sleeps == []


def test_connection_errors_are_retried_then_raised_as_network_error(sleeps: list[float]) -> None:
    refused = httpx.ConnectError("refused")
    script = Script(refused, httpx.ReadError("reset"), httpx.Response(200, content=HEALTH))
    assert client(script).health().status == "ok"
    assert len(sleeps) == 2
    script = Script(*[httpx.ConnectError("refused") for _ in range(3)])
    with pytest.raises(NetworkError) as info:
        client(script, retry=RetryPolicy(max_retries=2)).health()
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_writes_are_retried_because_they_are_idempotent(sleeps: list[float]) -> None:
    from stemedb.client import AgentKey

    answer = httpx.Response(201, json={"id": "a" * 64, "lsn": 7, "status": "created"})
    script = Script(httpx.ReadTimeout("slow"), answer)
    result = client(script, key=AgentKey.generate()).assert_("s", "p", "v", 0.5)
    assert result.lsn == 7
    assert script.requests[0].content == script.requests[1].content  # the same signed record


def test_api_key_and_agent_id_headers_are_sent() -> None:
    from stemedb.client import AgentKey

    key = AgentKey.generate()
    script = Script(httpx.Response(200, content=HEALTH))
    client(script, key=key, api_key="stm_secret").health()
    headers = script.requests[0].headers
    assert headers["x-api-key"] == "stm_secret"
    assert headers["x-agent-id"] == key.agent_id
    assert headers["user-agent"].startswith("stemedb-python/")


def test_a_non_envelope_error_page_still_maps_by_status(sleeps: list[float]) -> None:
    script = Script(httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(NetworkError) as info:
        client(script).health()
    assert info.value.status == 502 and info.value.code == "no_envelope"


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(backoff_base_seconds=0.1, backoff_max_seconds=0.5, jitter=False)
    assert [policy.backoff_seconds(n) for n in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    jittered = RetryPolicy(backoff_base_seconds=0.1, backoff_max_seconds=0.5)
    rng = random.Random(7)
    draws = [jittered.backoff_seconds(3, rng) for _ in range(200)]
    assert all(0.0 <= d <= 0.4 for d in draws) and len(set(draws)) > 100
    assert jittered.delay_seconds(1, retry_after_seconds=2.0, rng=rng) == 2.0


def test_retry_after_parses_seconds_and_http_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = time.time()
    date = email.utils.formatdate(now + 10, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(10, abs=1)


def test_async_client_retries_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr("stemedb.client.async_client.asyncio.sleep", fake_sleep)
    script = Script(
        envelope(503, "UnavailableError", "unavailable"),
        httpx.ConnectError("x"),
        httpx.Response(200, content=HEALTH),
    )

    async def run() -> str:
        async with AsyncClient(
            "http://stemedb.test",
            transport=httpx.MockTransport(script),
            retry=RetryPolicy(backoff_base_seconds=0.01),
        ) as db:
            return (await db.health()).status

    assert asyncio.run(run()) == "ok"
    assert len(waits) == 2 and waits[0] >= 1.0
