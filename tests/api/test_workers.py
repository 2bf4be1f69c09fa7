"""Several HTTP processes on one port (``api.workers = 2``, ADR 0003): a write
acknowledged by one worker is visible to the next read on any connection, a long-poll on
either worker is woken by a write through the other, ``/metrics`` adds both up, and the
processes live and die together."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from api_helpers import last_lsn, post
from api_server import ServerProcess
from auth_server import (
    AUTH_ENV,
    QUOTA_TOKENS,
    SKEPTIC_LIMIT,
    admin_headers,
    create_key,
    fresh_agent,
    send,
    wait_for_new_window,
)
from auth_server import ServerProcess as AuthServer
from prometheus_client.parser import text_string_to_metric_families
from support.processes import children, module_of, wait_gone

from stemedb.model.signing import AgentKey, sign_assertion
from stemedb.runtime.control import control_address
from stemedb.runtime.writer_client import ABSORB_DELAY_FAILPOINT

WORKERS = 2
ABSORB_DELAY_SECONDS = 0.2


def worker_page(supervisor: int, index: int) -> str:
    """What worker ``index`` alone counts (its control socket, as ``/metrics`` asks)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(control_address(supervisor, index))
        sock.sendall(b"metrics\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def requests_of(page: str, path: str) -> float:
    return sum(
        s.value
        for f in text_string_to_metric_families(page)
        if f.name == "stemedb_http_requests"
        for s in f.samples
        if s.name.endswith("_total") and s.labels["path"] == path
    )


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("stemedb-workers")
    proc = ServerProcess(
        base / "data",
        base / "server.log",
        STEMEDB_API_WORKERS=str(WORKERS),
        # worker 1 absorbs each batch late: a read there must wait for it, not miss it
        **{ABSORB_DELAY_FAILPOINT: str(ABSORB_DELAY_SECONDS)},
    )
    yield proc
    assert proc.stop() == 0, proc.log_path.read_text()[-2000:]


def test_node_runs_one_writer_and_two_http_processes(node: ServerProcess) -> None:
    kinds = sorted(module_of(p) for p in children(node.proc.pid))
    assert kinds == ["stemedb.api.worker_main", "stemedb.runtime.writer_process"]


def test_a_write_is_visible_at_once_on_every_fresh_connection(
    node: ServerProcess, alice: AgentKey, subject: str
) -> None:
    """Each request on a new connection, so the kernel spreads them over both workers.
    Both have the pair's answer cached before each write; a 201 from either must be
    visible to the very next read on the other."""
    params = {"subject": subject, "predicate": "p"}

    def objects() -> list[float]:
        with httpx.Client(base_url=node.url) as reader:
            answer = reader.get("/v1/query", params=params)
        assert answer.status_code == 200
        return sorted(c["object"]["value"] for c in answer.json()["claims"])

    for i in range(25):
        for _ in range(4):  # warm both workers' result caches
            assert objects() == list(range(i))
        record = sign_assertion(alice, subject=subject, predicate="p", object=i, confidence=0.5)
        with httpx.Client(base_url=node.url) as writer:
            assert post(writer, "/v1/assert", record).status_code == 201
        assert objects() == list(range(i + 1)), i


def test_metrics_add_up_what_each_worker_served(node: ServerProcess) -> None:
    path = "/v1/health"
    before = requests_of(httpx.get(node.url + "/metrics").text, path)
    for _ in range(40):
        assert httpx.get(node.url + path).status_code == 200  # a connection each
    merged = requests_of(httpx.get(node.url + "/metrics").text, path)
    per_worker = [requests_of(worker_page(node.proc.pid, i), path) for i in range(WORKERS)]
    assert merged == before + 40 == sum(per_worker)
    assert all(n > 0 for n in per_worker), per_worker  # both served some


def test_long_polls_on_both_workers_are_woken_by_one_write(
    node: ServerProcess, alice: AgentKey, subject: str
) -> None:
    with httpx.Client(base_url=node.url) as client:
        start = last_lsn(client)
    pages: list[list[str]] = []

    def wait() -> None:
        with httpx.Client(base_url=node.url, timeout=30) as client:  # its own connection
            page = client.get("/v1/feed", params={"after": start, "wait_seconds": 20}).json()
            pages.append([i["record"]["subject"] for i in page["items"]])

    waiters = [threading.Thread(target=wait) for _ in range(8)]
    for thread in waiters:
        thread.start()
    time.sleep(1.0)
    record = sign_assertion(alice, subject=subject, predicate="p", object="x", confidence=0.5)
    began = time.monotonic()
    with httpx.Client(base_url=node.url) as client:
        assert post(client, "/v1/assert", record).status_code == 201
    for thread in waiters:
        thread.join()
    assert pages == [[subject]] * 8
    assert time.monotonic() - began < 10


def test_sigterm_stops_every_process_and_keeps_the_writes(
    tmp_path: Path, alice: AgentKey, subject: str
) -> None:
    node = ServerProcess(tmp_path / "data", tmp_path / "log", STEMEDB_API_WORKERS="2")
    pids = children(node.proc.pid)
    record = sign_assertion(alice, subject=subject, predicate="p", object=1, confidence=0.5)
    with node.client() as client:
        assert post(client, "/v1/assert", record).status_code == 201
    assert node.stop() == 0
    wait_gone(pids)
    again = ServerProcess(tmp_path / "data", tmp_path / "log2")
    try:
        with again.client() as client:
            claims = client.get("/v1/query", params={"subject": subject, "predicate": "p"})
        assert [c["object"]["value"] for c in claims.json()["claims"]] == [1]
    finally:
        assert again.stop() == 0


def test_a_worker_that_dies_takes_the_node_down_with_exit_code_1(tmp_path: Path) -> None:
    """With ``api.respawn_limit = 0``: the default replaces it (tests/crash/test_heal.py)."""
    node = ServerProcess(
        tmp_path / "data",
        tmp_path / "log",
        STEMEDB_API_WORKERS="2",
        STEMEDB_API_RESPAWN_LIMIT="0",
    )
    pids = children(node.proc.pid)
    worker = next(p for p in pids if module_of(p) == "stemedb.api.worker_main")
    os.kill(worker, signal.SIGKILL)
    assert node.proc.wait(30) == 1
    wait_gone(pids)
    assert any("HTTP worker 1 exited unexpectedly" in line for line in node.log_lines())
    node.stop()


def test_workers_stop_when_worker_0_is_killed(tmp_path: Path) -> None:
    node = ServerProcess(tmp_path / "data", tmp_path / "log", STEMEDB_API_WORKERS="2")
    pids = children(node.proc.pid)
    node.proc.kill()
    node.proc.wait()
    wait_gone(pids)  # the writer (its first link ended) and worker 1 (its stdin ended)
    node.stop()


@pytest.mark.parametrize("workers", ["0", "65"])
def test_a_worker_count_out_of_range_is_refused_naming_the_key(
    tmp_path: Path, workers: str
) -> None:
    with pytest.raises(RuntimeError, match=r"api\.workers must be between 1 and 64"):
        ServerProcess(tmp_path / "data", tmp_path / "log", STEMEDB_API_WORKERS=workers)


def test_workers_without_the_writer_process_are_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"cannot be used with this wal\.writer_process"):
        ServerProcess(
            tmp_path / "data",
            tmp_path / "log",
            STEMEDB_API_WORKERS="2",
            STEMEDB_WAL_WRITER_PROCESS="false",
        )
    assert not (tmp_path / "data" / "wal").exists()  # refused before opening anything


def test_a_second_node_with_workers_cannot_share_the_port(
    node: ServerProcess, tmp_path: Path
) -> None:
    """SO_REUSEPORT would let two nodes' workers split one port's traffic."""
    with pytest.raises(RuntimeError, match=r"cannot listen on 127\.0\.0\.1"):
        ServerProcess(
            tmp_path / "data",
            tmp_path / "log",
            STEMEDB_API_WORKERS="2",
            STEMEDB_BIND_ADDR=f"127.0.0.1:{node.port}",
        )
    with httpx.Client(base_url=node.url) as client:
        assert client.get("/ready").status_code == 200


def test_keys_and_overrides_changed_through_one_worker_hold_at_once_on_every_worker(
    tmp_path: Path, redis_url: str
) -> None:
    """API keys and rate-limit overrides live in ``keys.sqlite`` and in each worker's
    memory: a change through one worker reaches the other before its next request."""
    if importlib.util.find_spec("redis") is None:
        pytest.skip("the redis Python package is not installed")
    node = AuthServer(
        tmp_path / "data",
        tmp_path / "log",
        **AUTH_ENV,
        STEMEDB_API_WORKERS="2",
        STEMEDB_RATE_LIMIT_STORAGE=redis_url,
    )

    def codes(secret: str, count: int) -> list[int]:
        out = []
        for _ in range(count):  # a connection each: both workers answer some
            with httpx.Client(base_url=node.url) as client:
                out.append(client.get("/v1/epochs", headers={"x-api-key": secret}).status_code)
        return out

    try:
        for _ in range(5):
            with httpx.Client(base_url=node.url) as admin:
                key = create_key(admin, "reader")
            assert codes(key["secret"], 6) == [200] * 6
        with httpx.Client(base_url=node.url) as admin:
            override = {"api_key_id": key["id"], "max_requests_per_min": 3}
            answer = admin.post("/v1/admin/rate-limit", json=override, headers=admin_headers())
            assert answer.status_code == 200, answer.text
        wait_for_new_window()
        assert codes(key["secret"], 8) == [200] * 3 + [429] * 5
        with httpx.Client(base_url=node.url) as admin:
            disabled = admin.post(
                f"/v1/admin/api-keys/{key['id']}/disable", headers=admin_headers()
            )
            assert disabled.status_code == 200, disabled.text
        assert codes(key["secret"], 6) == [401] * 6
    finally:
        assert node.stop() == 0, node.log_text()[-2000:]


def test_memory_rate_limits_and_quotas_hold_for_the_node_not_for_each_worker(
    tmp_path: Path,
) -> None:
    """``memory://`` counters are one table for both workers (``api.node_counter``)."""
    node = AuthServer(tmp_path / "data", tmp_path / "log", **AUTH_ENV, STEMEDB_API_WORKERS="2")
    try:
        with httpx.Client(base_url=node.url) as admin:
            writer = {"x-api-key": create_key(admin, "writer")["secret"]}
        skeptic = []
        for _ in range(SKEPTIC_LIMIT + 3):  # a connection each: both workers answer some
            with httpx.Client(base_url=node.url) as client:
                answer = client.get(
                    "/v1/skeptic", params={"subject": "s", "predicate": "p"}, headers=writer
                )
                skeptic.append(answer.status_code)
        assert skeptic == [200] * SKEPTIC_LIMIT + [429] * 3
        agent, written = fresh_agent(), []
        for index in range(QUOTA_TOKENS // 10 + 2):  # an assertion costs 10 tokens
            record = sign_assertion(
                agent, subject="test/quota", predicate="p", object=index, confidence=0.5
            )
            with httpx.Client(base_url=node.url) as client:
                written.append(send(client, "/v1/assert", record, writer).status_code)
        assert written == [201] * (QUOTA_TOKENS // 10) + [429] * 2
    finally:
        assert node.stop() == 0, node.log_text()[-2000:]


def test_admin_views_and_breaker_trips_cover_every_worker(tmp_path: Path) -> None:
    """Slow queries, breakers and cache figures live in each worker; the admin views
    gather them, and an admin's trip and reset reach every worker."""
    node = AuthServer(
        tmp_path / "data",
        tmp_path / "log",
        **AUTH_ENV,
        STEMEDB_API_WORKERS="2",
        STEMEDB_API_SLOW_QUERY_MS="0",  # every query is a slow one
    )

    def fresh(method: str, path: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(base_url=node.url) as client:  # a connection each
            return client.request(method, path, **kwargs)

    def writes(agent: AgentKey) -> list[int]:
        out = []
        for index in range(6):
            record = sign_assertion(
                agent, subject="test/trip", predicate="p", object=index, confidence=0.5
            )
            out.append(
                fresh(
                    "POST",
                    "/v1/assert",
                    content=msgspec.json.encode(record),
                    headers={**writer, "content-type": "application/json"},
                ).status_code
            )
        return out

    try:
        with httpx.Client(base_url=node.url) as admin:
            writer = {"x-api-key": create_key(admin, "writer")["secret"]}
        subjects = [f"test/slow-{i}" for i in range(12)]
        for subject in subjects:
            params = {"subject": subject, "predicate": "p"}
            assert fresh("GET", "/v1/query", params=params, headers=writer).status_code == 200
        slow = fresh("GET", "/v1/admin/slow-queries", headers=admin_headers()).json()
        assert {q["subject"] for q in slow["queries"]} >= set(subjects)

        agent = fresh_agent()
        trip = {"agent_id": agent.agent_id, "reason": "test"}
        tripped = fresh(
            "POST", "/v1/admin/circuit-breaker/trip", json=trip, headers=admin_headers()
        )
        assert tripped.status_code == 200, tripped.text
        assert writes(agent) == [403] * 6
        listed = fresh("GET", "/v1/admin/circuit-breakers", headers=admin_headers()).json()
        assert [b["state"] for b in listed["breakers"] if b["agent_id"] == agent.agent_id] == [
            "open"
        ]
        reset = {"agent_id": agent.agent_id}
        assert (
            fresh(
                "POST", "/v1/admin/circuit-breaker/reset", json=reset, headers=admin_headers()
            ).status_code
            == 200
        )
        assert writes(agent) == [201] * 6

        stats = fresh("GET", "/v1/admin/storage/stats", headers=admin_headers()).json()
        assert stats["cache_max_bytes"] == 2 * 64 * 1024 * 1024  # both workers' caches
    finally:
        assert node.stop() == 0, node.log_text()[-2000:]
