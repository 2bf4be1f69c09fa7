"""Failure behaviour against a real HTTP server whose WAL runs on a FaultyFileSystem:
a failed fsync makes the node read-only at once; a full disk is a clear, retryable
``StorageError`` that corrupts nothing, and writes resume once space is freed."""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
from api_helpers import assert_envelope, post
from inprocess import faulty_fs, running_server
from support.server import ServerProcess

from stemedb.model.signing import AgentKey, sign_assertion
from stemedb.ops.state import compare_store_with_wal

ALICE = AgentKey.from_seed(b"\x41" * 32)


def _claim(subject: str, value: str = "x") -> object:
    return sign_assertion(ALICE, subject=subject, predicate="p", object=value, confidence=0.8)


def _metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exposed")


def test_failed_fsync_makes_the_node_read_only_and_not_ready_but_reads_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fs = faulty_fs()
    subject = f"fail/{uuid.uuid4().hex[:8]}"
    with running_server(tmp_path / "data", fs=fs) as (_, client):
        assert post(client, "/v1/assert", _claim(subject)).status_code == 201
        assert client.get("/ready").status_code == 200
        fs.fail_fsync(1)  # one failed fsync is enough: never retried (fsyncgate)
        with caplog.at_level(logging.WARNING):
            failed = post(client, "/v1/assert", _claim(subject, "y"))
        error = assert_envelope(failed, 503, "StorageError", "fsync_failed")
        assert error["retryable"] is False
        assert "Retry-After" in failed.headers
        # the error line is written right after the answer is sent, in the server's thread
        deadline = time.monotonic() + 5.0
        while not any(r.getMessage().startswith("Error: StorageError: ") for r in caplog.records):
            assert time.monotonic() < deadline, "no error line with the error type"
            time.sleep(0.01)

        # every later write is refused at once, though the disk would now sync fine
        later = post(client, "/v1/assert", _claim(subject, "z"))
        assert_envelope(later, 503, "StorageError", "read_only")
        ready = client.get("/ready")
        assert ready.status_code == 503 and "Retry-After" in ready.headers
        assert any("read-only" in reason for reason in ready.json()["reasons"])
        assert _metric(client, "stemedb_wal_fsync_errors_total") == 1.0

        # reads are still served, and show only the acknowledged write
        answer = client.get("/v1/query", params={"subject": subject, "predicate": "p"})
        assert answer.status_code == 200
        assert answer.json()["resolution"]["winner"]["object"]["value"] == "x"
        status = client.get("/v1/admin/cluster/status").json()
        assert status["health"] == "unhealthy"
        assert status["wal"]["writable"] is False and status["wal"]["fsync_errors"] == 1


def test_full_disk_is_disk_full_corrupts_nothing_and_writes_resume(tmp_path: Path) -> None:
    fs = faulty_fs()
    subject = f"full/{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path / "data"
    resilience = {"failure_threshold": 100}  # this test is about the disk, not the breaker
    with running_server(data_dir, fs=fs, resilience=resilience) as (server, client):
        ok = post(client, "/v1/assert", _claim(subject, "before"))
        assert ok.status_code == 201
        fs.fill_disk(10)  # the next WAL append gets a short write, then ENOSPC
        for value in ("a", "b"):
            full = post(client, "/v1/assert", _claim(subject, value))
            error = assert_envelope(full, 503, "StorageError", "disk_full")
            assert error["retryable"] is True and "Retry-After" in full.headers
        batch = post(client, "/v1/assert/batch", {"assertions": [_claim(subject, "c")]})
        assert batch.status_code == 207
        assert batch.json()["results"][0]["error"]["code"] == "disk_full"
        # the node stays ready (nothing was lost), reads go on
        assert client.get("/ready").status_code == 200
        assert client.get("/v1/query", params={"subject": subject, "predicate": "p"}).is_success

        fs.free_space()
        again = post(client, "/v1/assert", _claim(subject, "a"))
        assert again.status_code == 201, again.text
        assert again.json()["lsn"] == ok.json()["lsn"] + 1  # no LSN was burnt by the failures
        params = {"subject": subject, "predicate": "p", "lens": "recency"}
        answer = client.get("/v1/query", params=params)
        assert answer.json()["resolution"]["winner"]["object"]["value"] == "a"
        config = server.config
    # `stemedb verify`: the store and the WAL describe the same history, byte for byte
    report = compare_store_with_wal(config)
    assert report["ok"], report
    assert report["wal_last_lsn"] == 2
    with running_server(data_dir) as (_, client):  # and the WAL reopens cleanly
        assert client.get("/ready").status_code == 200


def test_a_dead_writer_process_is_respawned_and_reads_go_on(tmp_path: Path) -> None:
    """``[wal] writer_process`` (the default): kill -9 the writer; writes are refused
    (503, retryable) until the node has started a new one, reads go on."""
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log", isolated=True)
    try:
        with server.client() as client:
            subject = f"dead/{uuid.uuid4().hex[:8]}"
            assert post(client, "/v1/assert", _claim(subject)).status_code == 201
            tasks = Path(f"/proc/{server.proc.pid}/task").iterdir()
            (writer,) = [int(p) for t in tasks for p in (t / "children").read_text().split()]
            os.kill(writer, signal.SIGKILL)
            deadline = time.monotonic() + 60
            codes = set()
            while (answer := post(client, "/v1/assert", _claim(subject, "y"))).status_code != 201:
                assert answer.status_code == 503 and time.monotonic() < deadline, answer.text
                assert answer.json()["error"]["retryable"] is True
                codes.add(answer.json()["error"]["code"])
                query = client.get("/v1/query", params={"subject": subject, "predicate": "p"})
                assert query.status_code == 200
                time.sleep(0.02)
            assert codes <= {"writer_failed", "writer_restarting"}, codes
            assert client.get("/ready").json()["writes"] == "available"
    finally:
        assert server.stop() == 0
    assert any("writer process exited unexpectedly" in line for line in server.log_lines())
