"""Helpers of the self-healing tests (issue 17 item 7): signed write load that counts
what the node acknowledged, deadline-based waits, a node's processes by role."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
from support.processes import alive, children, module_of

from stemedb.model.signing import AgentKey, sign_assertion

WRITER_MODULE = "stemedb.runtime.writer_process"
WORKER_MODULE = "stemedb.api.worker_main"


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> float:
    """Poll ``check`` until it holds; the seconds it took. Fails after ``seconds``."""
    started = time.monotonic()
    deadline = started + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what}: not after {seconds:.0f} s"
        time.sleep(0.02)
    return time.monotonic() - started


def processes(node_pid: int) -> dict[str, list[int]]:
    """The node's live children by module (the writer process, the HTTP workers)."""
    found: dict[str, list[int]] = {}
    for pid in children(node_pid):
        if alive(pid):
            try:
                found.setdefault(module_of(pid), []).append(pid)
            except (FileNotFoundError, IndexError):  # exited while we looked
                continue
    return found


def one_write(url: str, agent: AgentKey, subject: str, value: int) -> httpx.Response | None:
    """A signed assertion on a connection of its own (so every HTTP worker gets some);
    None when the connection failed."""
    record = sign_assertion(agent, subject=subject, predicate="p", object=value, confidence=0.5)
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            return client.post(
                "/v1/assert",
                content=msgspec.json.encode(record),
                headers={"content-type": "application/json"},
            )
    except httpx.HTTPError:
        return None


class WriteLoad:
    """``threads`` threads posting signed assertions until ``stop``; every id the node
    acknowledged (201) is kept, and every answer's status (or "error") counted."""

    def __init__(self, url: str, threads: int = 3) -> None:
        self.url = url
        self.acknowledged: list[str] = []
        self.statuses: Counter[str] = Counter()
        self.last_accepted = 0.0  # time.monotonic() of the last 201
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def _run(self, index: int) -> None:
        agent = AgentKey.from_seed(bytes([index + 1]) * 32)
        subject = f"heal/{uuid.uuid4().hex[:8]}"
        for value in itertools.count():
            if self._stop.is_set():
                return
            answer = one_write(self.url, agent, subject, value)
            with self._lock:
                if answer is None:
                    self.statuses["error"] += 1
                    continue
                self.statuses[str(answer.status_code)] += 1
                if answer.status_code == 201:
                    self.acknowledged.append(answer.json()["id"])
                    self.last_accepted = time.monotonic()

    def __enter__(self) -> WriteLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def wait_for_more(self, than: int, seconds: float, what: str) -> float:
        """Wait until more than ``than`` writes were acknowledged; the seconds it took."""
        return wait_until(lambda: self.count() > than, seconds, what)


def missing_from(url: str, ids: list[str]) -> list[str]:
    """The ids a node does not find (after a restart: durable ones are all there)."""
    with httpx.Client(base_url=url, timeout=30) as client:
        return [i for i in ids if client.get(f"/v1/assertions/{i}").status_code != 200]


def ready_answers(url: str, times: int = 6, params: dict[str, str] | None = None) -> list[Any]:
    """``/ready`` ``times`` times, a connection each (so every worker answers some)."""
    answers = []
    for _ in range(times):
        with httpx.Client(base_url=url, timeout=10) as client:
            answer = client.get("/ready", params=params)
            answers.append((answer.status_code, answer.json()))
    return answers
