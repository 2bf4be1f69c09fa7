"""Worker 0 respawns its writer process after a crash (``runtime.healing``; ADR 0021).

The dead process's link ended: ``WriterProcess`` failed what waited (not acknowledged:
``writer_failed``, retryable), refuses writes (``writer_restarting``) and calls
``WriterRespawn.start``. A thread then waits for the dead process, takes one restart of
the budget (or gives up: the node shuts down, exit 1), starts a new writer process,
which recovers the WAL as at start-up (a torn tail is cut, every fsynced batch is
replayed into the store), and goes on with it (``WriterProcess.resume``); the other
HTTP workers get their new links over their handoff sockets and do the same.
Nothing acknowledged is lost: acknowledgement follows the WAL's ``fdatasync``, and the
new process replays the WAL before it says ready.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
import time

from stemedb.errors import StemeError
from stemedb.runtime.healing import WRITER, Healing
from stemedb.runtime.protocol import WriterSettings
from stemedb.runtime.writer_client import WriterProcess
from stemedb.runtime.writer_launch import launch_writer

log = logging.getLogger("stemedb.api")


class WriterRespawn:
    def __init__(self, settings: WriterSettings | None, links: int, healing: Healing) -> None:
        assert settings is not None, "only the process that started the writer respawns it"
        self._settings = settings
        self._links = links
        self._healing = healing
        self._budget = healing.budget()

    def start(self, writer: WriterProcess) -> None:
        """Called once the writer process's link ended unexpectedly."""
        threading.Thread(
            target=self._run, args=(writer,), name="stemedb-writer-respawn", daemon=True
        ).start()

    def _run(self, writer: WriterProcess) -> None:
        reason = f"the writer process exited unexpectedly (exit code {_reap_dead(writer)})"
        while not writer.closed:
            delay = self._budget.next_delay()
            if delay is None:
                self._give_up(writer, reason)
                return
            log.error(
                "Error: StorageError: %s; restarting it (%s)", reason, self._budget.describe()
            )
            self._healing.restarted(WRITER)
            time.sleep(delay)
            if writer.closed:
                return
            started = time.monotonic()
            launched = launch_writer(self._settings, self._links)
            try:
                writer.resume(launched)
            except StemeError as exc:
                for link in launched.links[1:]:
                    link.close()
                if launched.broker is not None:
                    launched.broker.close()
                if writer.closed:
                    return
                reason = f"the new writer process did not start: {exc.type_name}: {exc.message}"
                if not exc.retryable:  # the WAL does not open: a restart cannot fix it
                    self._give_up(writer, reason)
                    return
                continue
            log.info(
                "writer process started again: pid %d, applied LSN %d, %d WAL records"
                " replayed, ready in %.2f s",
                writer.pid or 0,
                writer.applied_lsn,
                writer.replayed,
                time.monotonic() - started,
            )
            self._healing.hand_off(launched.links[1:])
            return

    def _give_up(self, writer: WriterProcess, reason: str) -> None:
        log.error(
            "Error: StorageError: %s; giving up after %d restarts in %g s (api.respawn_limit):"
            " shutting the node down (exit 1)",
            reason,
            self._budget.used,
            self._budget.window_seconds,
        )
        writer.give_up(f"{reason}; gave up restarting it")
        self._healing.give_up()


def _reap_dead(writer: WriterProcess) -> int | str:
    """Wait for the writer process whose link ended (kill it if it still runs: a new
    one needs the data directory's lock); its exit code."""
    proc = writer.process
    if proc is None:
        return "unknown"
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(1.0)
    if proc.poll() is None:
        proc.kill()
    return proc.wait()
