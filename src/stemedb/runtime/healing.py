"""Replacing a crashed process of the node (issue 17 item 7; docs/operations/workers.md,
"Failures"): the writer process (respawned by the HTTP process that started it, worker
0) and an HTTP worker other than worker 0 (replaced by worker 0's ``WorkerPool``).

Each process slot (the writer; worker 1, 2, …) may be restarted ``api.respawn_limit``
times in ``api.respawn_window_seconds``, the first at once, each later one after a
back-off (0.5 s, 1 s, 2 s … at most 8 s). Past the limit, or on a fault a restart cannot
fix (the WAL does not open), the node gives up: it shuts down gracefully and exits 1,
for the service manager to restart the whole node (systemd's ``Restart=on-failure``,
then ``StartLimitBurst``). ``api.respawn_limit = 0`` gives up at once. Worker 0 itself
is not replaced: the writer and the other workers end with it, and the service manager
restarts the node.

A respawned writer's links reach the other HTTP workers over their handoff sockets
(``send_link`` / ``receive_links``: one ``SCM_RIGHTS`` message per link), made by worker
0 when it starts each worker.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from stemedb.config import ApiConfig

log = logging.getLogger("stemedb.api")

BACKOFF_FIRST_SECONDS: Final = 0.5
BACKOFF_MAX_SECONDS: Final = 8.0
WRITER: Final = "writer"  # the ``process`` label of stemedb_process_restarts_total
HTTP_WORKER: Final = "http_worker"


class RestartBudget:
    """How many more restarts one process slot gets, and the back-off before each."""

    def __init__(
        self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = max(0, limit)
        self.window_seconds = window_seconds
        self._clock = clock
        self._restarts: deque[float] = deque()

    def next_delay(self) -> float | None:
        """Take one restart: the seconds to wait before it, or None when the budget of
        the window is spent (give up)."""
        now = self._clock()
        while self._restarts and now - self._restarts[0] > self.window_seconds:
            self._restarts.popleft()
        used = len(self._restarts)
        if used >= self.limit:
            return None
        self._restarts.append(now)
        return (
            0.0 if used == 0 else min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (used - 1))
        )

    @property
    def used(self) -> int:
        """Restarts taken in the current window (after ``next_delay``: including it)."""
        return len(self._restarts)

    def describe(self) -> str:
        return f"restart {self.used} of {self.limit} in {self.window_seconds:g} s"


def _close_all(links: list[socket.socket]) -> None:
    for link in links:
        link.close()


class Healing:
    """What worker 0 needs to replace a crashed process: the budgets (``api.respawn_*``)
    and the app's hooks. ``restarted(process)``: count one restart
    (``stemedb_process_restarts_total``); ``give_up()``: shut the node down, exit 1;
    ``hand_off(links)``: a respawned writer's links for workers 1 … N-1 (set by the
    ``WorkerPool``; without other workers there are none)."""

    def __init__(
        self,
        config: ApiConfig,
        *,
        restarted: Callable[[str], None],
        give_up: Callable[[], None],
    ) -> None:
        self.limit = config.respawn_limit
        self.window_seconds = config.respawn_window_seconds
        self.restarted = restarted
        self.give_up = give_up
        self.hand_off: Callable[[list[socket.socket]], None] = _close_all

    def budget(self) -> RestartBudget:
        return RestartBudget(self.limit, self.window_seconds)


def send_link(handoff: socket.socket, link: socket.socket) -> None:
    """Pass ``link`` (a new writer link) to the worker at the other end of ``handoff``."""
    socket.send_fds(handoff, [b"L"], [link.fileno()])


def receive_links(handoff: socket.socket, on_link: Callable[[socket.socket], None]) -> None:
    """A thread that calls ``on_link`` with each link passed on ``handoff`` (by worker
    0: to another worker, or to the writer process's broker) until its end of stream."""

    def run() -> None:
        with contextlib.suppress(OSError):
            while True:
                message, fds, _, _ = socket.recv_fds(handoff, 16, 4)
                if not message:
                    return
                for fd in fds:
                    on_link(socket.socket(fileno=fd))

    threading.Thread(target=run, name="stemedb-writer-handoff", daemon=True).start()
