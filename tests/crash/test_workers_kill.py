"""SIGKILL one process of a node with two HTTP workers under write load (``api.workers``):
worker 1, worker 0 or the writer process. Every write any worker acknowledged (201) is
in the store after a restart, and no process of the killed node is left behind."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import msgspec
import pytest
from support.processes import children, module_of, wait_gone
from support.server import ServerProcess

from stemedb.model.signing import AgentKey, sign_assertion

WRITERS = 4
LOAD_SECONDS = 1.5
LOAD_MAX_SECONDS = 30.0


def write_until_stopped(
    url: str, agent: AgentKey, tag: str, stop: threading.Event, acknowledged: list[str]
) -> None:
    index = 0
    while not stop.is_set():
        record = sign_assertion(
            agent,
            subject=f"test/kill-{tag}",
            predicate=f"p{index % 7}",
            object=index,
            confidence=0.5,
        )
        index += 1
        try:
            with httpx.Client(base_url=url, timeout=5) as client:  # a connection each
                answer = client.post(
                    "/v1/assert",
                    content=msgspec.json.encode(record),
                    headers={"content-type": "application/json"},
                )
        except httpx.HTTPError:
            continue  # the node is going down: not acknowledged
        if answer.status_code == 201:
            acknowledged.append(answer.json()["id"])


@pytest.mark.parametrize("victim", ["worker 1", "worker 0", "writer"])
def test_a_killed_process_loses_no_acknowledged_write(tmp_path: Path, victim: str) -> None:
    node = ServerProcess(tmp_path / "data", tmp_path / "log", STEMEDB_API_WORKERS="2")
    kids = children(node.proc.pid)
    by_module = {module_of(p): p for p in kids}
    pid = {
        "worker 0": node.proc.pid,
        "worker 1": by_module["stemedb.api.worker_main"],
        "writer": by_module["stemedb.runtime.writer_process"],
    }[victim]
    stop = threading.Event()
    acknowledged: list[list[str]] = [[] for _ in range(WRITERS)]
    threads = [
        threading.Thread(
            target=write_until_stopped,
            args=(
                node.url,
                AgentKey.from_seed(bytes([i + 1]) * 32),
                str(i),
                stop,
                acknowledged[i],
            ),
        )
        for i in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    # At least LOAD_SECONDS, and until the load got going (a busy machine is slow to).
    started = time.monotonic()
    time.sleep(LOAD_SECONDS)
    while sum(map(len, acknowledged)) <= 20 and time.monotonic() - started < LOAD_MAX_SECONDS:
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    node.stop()  # SIGTERM worker 0 (a node whose writer died stays up, read-only)
    wait_gone([node.proc.pid, *kids])
    ids = [i for per_writer in acknowledged for i in per_writer]
    assert len(ids) > 20, "the load did not get going"
    again = ServerProcess(tmp_path / "data", tmp_path / "log2")
    try:
        with again.client() as client:
            missing = [i for i in ids if client.get(f"/v1/assertions/{i}").status_code != 200]
        assert missing == []
    finally:
        assert again.stop() == 0
