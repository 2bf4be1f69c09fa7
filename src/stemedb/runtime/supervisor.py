"""Several HTTP processes on one port: worker 0 supervises the others (``api.workers``;
docs/design/adr-0003-http-workers.md).

``stemedb serve`` with ``api.workers = N > 1``: the process started by hand (worker 0)
binds the address with ``SO_REUSEPORT``, starts the writer process with N links, and
then N - 1 more HTTP processes (``python -m stemedb.api.worker_main``), each with its own
``SO_REUSEPORT`` socket on the same port, its link to the writer and its own app; the
kernel spreads new connections over the N sockets. Worker 0 accepts requests only once
every other worker has said it is ready. Each worker absorbs every batch the writer
applies; a request waits, before it runs, until its worker has absorbed whatever any
worker acknowledged (``Engine.catch_up``), so a 201 still means visible on every
connection.

API keys and rate-limit overrides are node-wide (``AccessControl.refresh``). What stays
per worker: caches, the feed's waiters, the storage circuit breakers. What
stays in worker 0 only: the WAL metrics, the archiver and the count of stored assertions
at start-up. ``/metrics`` on any worker adds up every worker's series
(``api.metrics_merge``), asking the others over an abstract Unix socket each
(``runtime.control``).

Lifecycle: a worker that exits while the node runs is replaced (a new process with the
same index, on a new link to the writer; ``runtime.healing``: ``api.respawn_limit``
times per ``api.respawn_window_seconds``, with back-off), while the others serve; past
the limit the node goes down (worker 0 shuts down gracefully and exits 1, for the
service manager to restart the whole node). SIGTERM to worker 0 stops the others first,
then the writer. A worker whose worker 0 is gone (its stdin, a pipe from worker 0,
ends) shuts itself down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import msgspec

from stemedb.config import Config
from stemedb.errors import StemeError, StorageError, ValidationError
from stemedb.runtime.healing import HTTP_WORKER, Healing, RestartBudget, send_link

log = logging.getLogger("stemedb.api")

MAX_WORKERS: Final = 64
WORKER_START_TIMEOUT_SECONDS: Final = 120.0
WORKER_STOP_TIMEOUT_SECONDS: Final = 30.0
WATCH_INTERVAL_SECONDS: Final = 0.1


@dataclass
class WorkerRole:
    """Which of ``count`` HTTP processes this one is; worker 0 started the others."""

    index: int
    count: int
    supervisor_pid: int
    link: socket.socket | None = None  # workers > 0: their link to the writer process
    ready_fd: int | None = None  # workers > 0: written to once the app accepts requests
    handoff: socket.socket | None = None  # workers > 0: a respawned writer's new link
    failed: bool = field(default=False)  # worker 0: another worker died; exit 1
    stopping: bool = field(default=False)  # a signal asked this process to stop

    @property
    def first(self) -> bool:
        return self.index == 0


def check_workers_config(config: Config) -> None:
    """Refuse what several HTTP processes cannot do (naming the key)."""
    workers = config.api.workers
    if not 1 <= workers <= MAX_WORKERS:
        raise ValidationError(
            "api.workers",
            f"between 1 and {MAX_WORKERS}",
            f"api.workers must be between 1 and {MAX_WORKERS}, not {workers}",
        )
    if workers > 1 and not config.wal.writer_process and config.storage.backend == "local":
        raise ValidationError(
            "api.workers",
            "not with wal.writer_process",
            f"api.workers = {workers} cannot be used with this wal.writer_process: the HTTP"
            " processes share the writer process",
        )


def listen_socket(host: str, port: int, backlog: int, *, first: bool) -> socket.socket:
    """A listening TCP socket with ``SO_REUSEPORT``: every worker binds one. The first
    worker binds the address once without it: ``SO_REUSEPORT`` would also let it share
    the port with another node's workers (same user), silently splitting the traffic."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if first and port != 0:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise ValidationError(
                    "api.bind", "cannot bind", f"cannot listen on {host}:{port}: {exc}"
                ) from exc
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ValidationError(
            "api.bind", "cannot bind", f"cannot listen on {host}:{port}: {exc}"
        ) from exc
    return sock


# -- worker 0: start, watch and stop the others ---------------------------------------


class WorkerPool:
    """The HTTP processes worker 0 started; each gets the configuration on its stdin,
    which stays open: its end tells the worker that worker 0 is gone. ``links``: one
    link to the writer process per other worker, or none (cluster mode: each worker
    commits on its own). ``healing``: replace a worker that dies (``new_link``: a link
    to the running writer for it), else the node goes down."""

    def __init__(
        self,
        config: Config,
        role: WorkerRole,
        links: list[socket.socket],
        *,
        healing: Healing | None = None,
        new_link: Callable[[], socket.socket] | None = None,
    ) -> None:
        self._config = msgspec.json.encode(config) + b"\n"
        self._role = role
        self._links = links
        self._healing = healing
        self._new_link = new_link
        self.procs: list[subprocess.Popen[bytes]] = []
        self._handoffs: dict[int, socket.socket] = {}  # worker index -> our end
        self._budgets: dict[int, RestartBudget] = {}
        self._stopping = False
        if healing is not None and links:
            healing.hand_off = self.hand_off

    def _spawn(self, index: int, link: socket.socket | None) -> tuple[subprocess.Popen[bytes], int]:
        """Start worker ``index`` on ``link`` (closed here); its ready pipe's read end."""
        link_fd = -1 if link is None else link.fileno()
        handoff = socket.socketpair() if link is not None and self._healing else None
        handoff_fd = -1 if handoff is None else handoff[1].fileno()
        ready_read, ready_write = os.pipe()
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "stemedb.api.worker_main",
                    *map(str, (index, self._role.count, self._role.supervisor_pid)),
                    *map(str, (link_fd, ready_write, handoff_fd)),
                ],
                stdin=subprocess.PIPE,
                pass_fds=[fd for fd in (link_fd, ready_write, handoff_fd) if fd >= 0],
            )
        except BaseException:
            os.close(ready_read)
            if handoff is not None:
                handoff[0].close()
            raise
        finally:
            os.close(ready_write)
            if link is not None:
                link.close()
            if handoff is not None:
                handoff[1].close()
        if handoff is not None:
            old = self._handoffs.pop(index, None)
            if old is not None:
                old.close()
            self._handoffs[index] = handoff[0]
        assert proc.stdin is not None
        with contextlib.suppress(OSError):  # one that died at once fails its ready pipe
            proc.stdin.write(self._config)
            proc.stdin.flush()
        return proc, ready_read

    def start(self) -> None:
        """Start every other worker and wait until each accepts requests."""
        waiting: dict[int, int] = {}  # ready pipe -> worker index
        try:
            for index in range(1, self._role.count):
                link = self._links[index - 1] if self._links else None
                proc, ready_read = self._spawn(index, link)
                self.procs.append(proc)
                waiting[ready_read] = index
            self._links = []
            self._wait_ready(waiting)
        except BaseException:
            self.stop()
            raise
        finally:
            for fd in waiting:
                os.close(fd)

    def _wait_ready(self, waiting: dict[int, int]) -> None:
        deadline = time.monotonic() + WORKER_START_TIMEOUT_SECONDS
        pending = set(waiting)
        while pending:
            left = deadline - time.monotonic()
            readable, _, _ = select.select(list(pending), [], [], max(0.0, left))
            if not readable:
                raise StorageError(
                    f"HTTP workers {sorted(waiting[fd] for fd in pending)} did not start in"
                    f" {WORKER_START_TIMEOUT_SECONDS:.0f} s",
                    code="worker_failed",
                    retryable=False,
                )
            for fd in readable:
                pending.discard(fd)
                if not os.read(fd, 1):  # closed without a word: it failed
                    index = waiting[fd]
                    code = self.procs[index - 1].wait()
                    raise StorageError(
                        f"HTTP worker {index} did not start (exit code {code})",
                        code="worker_failed",
                        retryable=False,
                    )

    def exited(self) -> tuple[int, int] | None:
        """(index, exit code) of a worker that has exited, if any."""
        for index, proc in enumerate(self.procs, 1):
            code = proc.poll()
            if code is not None:
                return index, code
        return None

    def hand_off(self, links: list[socket.socket]) -> None:
        """A respawned writer's links: link ``i - 1`` to worker ``i`` (one that is gone
        or being replaced gets its own link when it starts)."""
        for index, link in enumerate(links, 1):
            handoff = self._handoffs.get(index)
            if handoff is not None and self.procs[index - 1].poll() is None:
                with contextlib.suppress(OSError):
                    send_link(handoff, link)
            link.close()

    def replace(self, index: int) -> bool:
        """Start worker ``index`` again (in a thread: it blocks until the new one is
        ready); False when the budget is spent (the node must go down)."""
        budget = self._budgets.setdefault(index, self._healing.budget()) if self._healing else None
        code = self.procs[index - 1].returncode
        reason = f"HTTP worker {index} exited unexpectedly (exit code {code})"
        while not self._stopping:
            delay = None if budget is None else budget.next_delay()
            if budget is None or delay is None:
                log.error(
                    "Error: StorageError: %s; shutting the node down%s",
                    reason,
                    ""
                    if budget is None
                    else f" (gave up after {budget.used} restarts in"
                    f" {budget.window_seconds:g} s, api.respawn_limit)",
                )
                return False
            log.error("Error: StorageError: %s; starting it again (%s)", reason, budget.describe())
            assert self._healing is not None
            self._healing.restarted(HTTP_WORKER)
            time.sleep(delay)
            started = time.monotonic()
            try:
                link = None if self._new_link is None else self._new_link()
                proc, ready_read = self._spawn(index, link)
            except (OSError, StemeError) as exc:
                reason = f"HTTP worker {index} could not be started: {exc}"
                continue
            old = self.procs[index - 1]
            if old.stdin is not None:
                with contextlib.suppress(OSError):
                    old.stdin.close()
            self.procs[index - 1] = proc
            try:
                self._wait_ready({ready_read: index})
            except StorageError as exc:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
                reason = exc.message
                continue
            finally:
                os.close(ready_read)
            log.info(
                "HTTP worker %d started again: pid %d, ready in %.2f s",
                index,
                proc.pid,
                time.monotonic() - started,
            )
            return True
        return True

    def stop(self) -> None:
        """SIGTERM every worker (each finishes its requests), wait, kill the late."""
        self._stopping = True
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + WORKER_STOP_TIMEOUT_SECONDS
        for proc in self.procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("Error: StorageError: HTTP worker pid %d did not stop; killed", proc.pid)
                proc.kill()
                proc.wait()
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
        for link in [*self._links, *self._handoffs.values()]:
            link.close()

    async def watch(self, on_exit: Callable[[], None]) -> None:
        """Replace a worker that exits while the node runs; call ``on_exit`` once when
        one cannot be (no healing, or its budget is spent)."""
        loop = asyncio.get_running_loop()
        while not self._stopping:
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)
            gone = self.exited()
            # Ctrl-C reaches every worker: one that stops then is not a failure
            if gone is None or self._stopping or self._role.stopping:
                continue
            if not await loop.run_in_executor(None, self.replace, gone[0]):
                on_exit()
                return


# -- workers > 0 ------------------------------------------------------------------------


def say_ready(role: WorkerRole) -> None:
    """Tell worker 0 that this worker accepts requests."""
    if role.ready_fd is not None:
        os.write(role.ready_fd, b"r")
        os.close(role.ready_fd)
        role.ready_fd = None


def watch_supervisor(stdin: int) -> None:
    """Shut this worker down (SIGTERM to itself) when its stdin, from worker 0, ends."""

    def wait() -> None:
        while os.read(stdin, 4096):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait, name="stemedb-supervisor-watch", daemon=True).start()
