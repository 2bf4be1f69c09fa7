"""Dependency resilience against a real HTTP server: request timeouts (504, and the
write is all or nothing), body limits before parsing, the signature time window,
SQLite busy/locked bounded, the storage circuit breakers and the stale fallback."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import apsw
import httpx
import msgspec
from api_helpers import assert_envelope, post
from inprocess import InProcessServer, faulty_fs, running_server

from stemedb.model.ids import record_id
from stemedb.model.records import Assertion
from stemedb.model.signing import AgentKey, sign_assertion
from stemedb.ops.state import compare_store_with_wal

ALICE = AgentKey.from_seed(b"\x52" * 32)


def _claim(subject: str, value: str = "x", **kwargs: int) -> Assertion:
    return sign_assertion(
        ALICE, subject=subject, predicate="p", object=value, confidence=0.8, **kwargs
    )


def _subject() -> str:
    return f"res/{uuid.uuid4().hex[:10]}"


def _query(client: httpx.Client, subject: str, **params: str) -> httpx.Response:
    return client.get("/v1/query", params={"subject": subject, "predicate": "p", **params})


def _fail_reads(server: InProcessServer, *operations: str) -> list[str]:
    """Make the store's reads of ``operations`` fail as SQLite I/O errors; returns the
    failed calls made for requests (to check that an open breaker stops calling the
    store; the view refresher's own reads are not counted)."""
    calls: list[str] = []

    def fault(operation: str) -> None:
        if operation in operations:
            if threading.current_thread().name.startswith("stemedb-read"):
                calls.append(operation)
            raise apsw.IOError("disk I/O error (injected)")

    engine = server.state.opened_engine
    assert engine is not None
    engine.store.read_fault = fault
    return calls


def _heal_reads(server: InProcessServer) -> None:
    engine = server.state.opened_engine
    assert engine is not None
    engine.store.read_fault = None


def _wait(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


# -- request timeout -------------------------------------------------------------------


def test_write_past_the_request_timeout_gets_504_and_is_applied_whole_or_not_at_all(
    tmp_path: Path,
) -> None:
    fs = faulty_fs()
    subject = _subject()
    api = {"request_timeout_seconds": 0.3}
    with running_server(tmp_path / "data", fs=fs, api=api) as (_, client):
        fs.delay_fsync(1.0)  # a slow disk: the group commit outlives the request
        record = _claim(subject)
        started = time.monotonic()
        slow = post(client, "/v1/assert", record)
        assert time.monotonic() - started < 0.9
        error = assert_envelope(slow, 504, "TimeoutError", "request_timeout")
        assert error["retryable"] is True
        fs.delay_fsync(0)
        time.sleep(1.0)  # the commit that was under way finishes

        rid = record_id(record)
        detail = client.get(f"/v1/assertions/{rid}")
        feed = client.get("/v1/feed", params={"after": 0, "limit": 100}).json()
        in_feed = [item for item in feed["items"] if item.get("id") == rid]
        answer = _query(client, subject).json()
        if detail.status_code == 200:  # applied: everywhere, exactly once
            assert len(in_feed) == 1
            assert answer["resolution"]["winner"]["id"] == rid
        else:  # not applied: nowhere
            assert detail.status_code == 404 and not in_feed
            assert answer["resolution"]["winner"] is None
        # the client's retry is safe either way
        retry = post(client, "/v1/assert", record)
        assert retry.status_code in (200, 201) and retry.json()["id"] == rid
        assert (
            len(
                [
                    i
                    for i in client.get("/v1/feed", params={"after": 0}).json()["items"]
                    if i.get("id") == rid
                ]
            )
            == 1
        )


# -- body limit and signature window ---------------------------------------------------


def test_oversized_body_is_413_before_it_is_parsed(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", api={"max_body_bytes": 1000}) as (_, client):
        junk = b"{" * 5000  # not JSON: parsing it would be a 400
        declared = client.post(
            "/v1/assert", content=junk, headers={"content-type": "application/json"}
        )
        assert_envelope(declared, 413, "ValidationError", "body_too_large")

        def chunks() -> object:  # no Content-Length: counted while streaming
            for _ in range(50):
                yield b"{" * 100

        streamed = client.post(
            "/v1/assert", content=chunks(), headers={"content-type": "application/json"}
        )  # type: ignore[arg-type]
        assert_envelope(streamed, 413, "ValidationError", "body_too_large")
        assert client.get("/ready").status_code == 200


def test_signature_from_beyond_the_time_window_is_refused(tmp_path: Path) -> None:
    skew = {"signature_max_skew_seconds": 5}
    with running_server(tmp_path / "data", auth=skew) as (_, client):
        ahead = int(time.time()) + 60
        future = post(client, "/v1/assert", _claim(_subject(), timestamp=ahead, signed_at=ahead))
        error = assert_envelope(future, 400, "ValidationError")
        assert error["details"]["rule"] == "in_future"
        near = int(time.time()) + 2  # inside the window: a clock slightly ahead is fine
        ok = post(client, "/v1/assert", _claim(_subject(), timestamp=near, signed_at=near))
        assert ok.status_code == 201, ok.text


# -- SQLite busy/locked ----------------------------------------------------------------


def test_locked_store_fails_the_write_within_the_bound_then_the_retry_succeeds(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    subject = _subject()
    with running_server(data_dir, storage={"busy_timeout_ms": 150}) as (server, client):
        blocker = apsw.Connection(str(data_dir / "store.sqlite"))
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the store's write lock
        record = _claim(subject)
        started = time.monotonic()
        busy = post(client, "/v1/assert", record)
        elapsed = time.monotonic() - started
        error = assert_envelope(busy, 503, "StorageError", "store_busy")
        assert error["retryable"] is True and "busy" in error["message"]
        assert 0.1 < elapsed < 3.0
        blocker.execute("ROLLBACK")
        blocker.close()
        retry = post(client, "/v1/assert", record)  # durable in the WAL: applied first
        assert retry.status_code in (200, 201), retry.text
        assert _query(client, subject).json()["resolution"]["winner"]["id"] == record_id(record)
        config = server.config
    assert compare_store_with_wal(config)["ok"]


# -- storage circuit breakers ------------------------------------------------------------


def test_read_breaker_opens_fails_fast_half_opens_and_closes(tmp_path: Path) -> None:
    resilience = {"failure_threshold": 2, "reset_timeout_ms": 400}
    with running_server(tmp_path / "data", resilience=resilience) as (server, client):
        created = post(client, "/v1/assert", _claim(_subject()))
        path = f"/v1/assertions/{created.json()['id']}"
        calls = _fail_reads(server, "get")
        for _ in range(2):
            assert_envelope(client.get(path), 503, "StorageError", "store_error")
        refused = client.get(path)
        error = assert_envelope(refused, 503, "StorageError", "storage_circuit_open")
        assert error["retryable"] is True and error["details"]["breaker"] == "read"
        assert 1 <= int(refused.headers["Retry-After"]) <= 1
        assert len(calls) == 2, "an open breaker must not call the store"
        status = client.get("/v1/admin/cluster/status").json()
        assert status["health"] == "degraded"
        metrics = client.get("/metrics").text
        assert 'stemedb_storage_circuit_open{breaker="read"} 1.0' in metrics
        assert (
            'stemedb_storage_operation_errors_total{backend="sqlite",operation="assertion"} 2.0'
            in metrics
        )
        # writes have their own breaker: a failing read path does not stop them
        assert post(client, "/v1/assert", _claim(_subject())).status_code == 201

        _heal_reads(server)
        time.sleep(0.45)  # reset_timeout_ms: one trial call goes through and closes it
        assert client.get(path).status_code == 200
        assert client.get(path).status_code == 200
        assert client.get("/v1/admin/cluster/status").json()["health"] == "healthy"


def test_write_breaker_opens_on_a_full_disk_without_touching_it_and_recovers(
    tmp_path: Path,
) -> None:
    fs = faulty_fs()
    resilience = {"failure_threshold": 2, "reset_timeout_ms": 300}
    with running_server(tmp_path / "data", fs=fs, resilience=resilience) as (_, client):
        subject = _subject()
        fs.fill_disk(0)
        for value in ("a", "b"):
            assert_envelope(
                post(client, "/v1/assert", _claim(subject, value)), 503, "StorageError", "disk_full"
            )
        writes_before = fs.write_calls
        refused = post(client, "/v1/assert", _claim(subject, "c"))
        assert_envelope(refused, 503, "StorageError", "storage_circuit_open")
        assert fs.write_calls == writes_before
        assert _query(client, subject).status_code == 200  # reads are not affected
        fs.free_space()
        time.sleep(0.35)
        assert post(client, "/v1/assert", _claim(subject, "c")).status_code == 201
        assert post(client, "/v1/assert", _claim(subject, "d")).status_code == 201


# -- stale fallback ----------------------------------------------------------------------


def test_failed_read_is_answered_from_the_last_good_answer_marked_stale(tmp_path: Path) -> None:
    fallback = {"max_stale_seconds": 0.5}
    resilience = {"failure_threshold": 1000}
    settings = {"fallback": fallback, "resilience": resilience}
    with running_server(tmp_path / "data", **settings) as (server, client):
        subject = _subject()
        post(client, "/v1/assert", _claim(subject, "cached"))
        fresh = _query(client, subject, lens="recency").json()
        assert fresh["stale"] is False
        _fail_reads(server, "query", "get")
        # a newer claim: the result cache drops the key, so the next read needs the store
        later = int(time.time()) + 1
        post(client, "/v1/assert", _claim(subject, "newer", timestamp=later, signed_at=later))
        stale = _query(client, subject, lens="recency")
        assert stale.status_code == 200
        body = stale.json()
        assert body["stale"] is True and body["query_id"] != fresh["query_id"]
        assert body["resolution"]["winner"]["object"]["value"] == "cached"
        batch = client.post(
            "/v1/query",
            json={"queries": [{"subject": subject, "predicate": "p", "lens": "recency"}]},
        )
        assert batch.status_code == 200 and batch.json()["results"][0]["stale"] is True
        never_asked = _query(client, _subject(), lens="recency")
        assert_envelope(never_asked, 503, "StorageError", "store_error")
        time.sleep(0.6)  # older than fallback.max_stale_seconds: no longer served
        assert_envelope(_query(client, subject, lens="recency"), 503, "StorageError")
        assert 'stemedb_cache_hits_total{cache="fallback"}' in client.get("/metrics").text
        _heal_reads(server)
        healed = _query(client, subject, lens="recency").json()
        assert healed["stale"] is False
        assert healed["resolution"]["winner"]["object"]["value"] == "newer"


def test_failed_read_falls_back_to_the_materialized_view(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as (server, client):
        subject = _subject()
        first = _claim(subject, "viewed")
        post(client, "/v1/assert", first)
        service = server.state.service
        assert service.views.lookup(subject, "p", 100, None) is None  # a reader wants it
        _wait(lambda: service.views.pending() == 0 and service.store.view(subject, "p") is not None)
        _fail_reads(server, "query")  # the view table still reads; the claims do not
        post(client, "/v1/assert", _claim(subject, "newer", timestamp=int(time.time()) + 1))
        answer = _query(client, subject)  # default lens, never asked over HTTP before
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["stale"] is True
        assert body["resolution"]["winner"]["id"] == record_id(first)


def test_fallback_off_answers_503(tmp_path: Path) -> None:
    fallback = {"enable_cache_fallback": False}
    with running_server(tmp_path / "data", fallback=fallback) as (server, client):
        subject = _subject()
        post(client, "/v1/assert", _claim(subject))
        assert _query(client, subject, lens="recency").status_code == 200
        _fail_reads(server, "query")
        post(client, "/v1/assert", _claim(subject, "newer"))  # drops the cached answer
        assert_envelope(_query(client, subject, lens="recency"), 503, "StorageError")


def test_breaker_state_is_listed_in_storage_stats(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as (_, client):
        stats = client.get("/v1/admin/storage/stats").json()
        assert {b["name"]: b["state"] for b in stats["breakers"]} == {
            "read": "closed",
            "write": "closed",
        }
        assert threading.active_count() > 1
        assert msgspec.json.decode(client.get("/health").content)["status"] == "ok"
