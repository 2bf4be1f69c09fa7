"""Starting ``python -m stemedb.runtime.writer_process`` (``runtime.writer_client`` at
start-up, ``runtime.writer_respawn`` after a crash) and waiting for its ``ready``."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import dataclass

import msgspec

from stemedb.errors import StorageError
from stemedb.runtime.protocol import (
    CLOSE_TIMEOUT_SECONDS,
    STARTUP_TIMEOUT_SECONDS,
    Channel,
    Failed,
    FromWriter,
    Ready,
    WriterSettings,
    error_from_wire,
)


@dataclass
class Launched:
    """A writer process just started: its links (this process keeps the first; one per
    other HTTP process) and, with several, its broker (new links for replaced workers)."""

    proc: subprocess.Popen[bytes] | None  # None: a link worker 0 passed on
    links: list[socket.socket]
    broker: socket.socket | None


def launch_writer(settings: WriterSettings, links: int) -> Launched:
    """Start the writer process with ``links`` links (and a broker when more than one)."""
    pairs = [socket.socketpair() for _ in range(links)]
    broker = socket.socketpair() if links > 1 else None
    fds = [theirs.fileno() for _, theirs in pairs]
    argv = [
        sys.executable,
        "-m",
        "stemedb.runtime.writer_process",
        ",".join(map(str, fds)),
        msgspec.json.encode(settings).decode(),
    ]
    passed = list(fds)
    if broker is not None:
        argv.append(str(broker[1].fileno()))
        passed.append(broker[1].fileno())
    try:
        proc = subprocess.Popen(argv, pass_fds=passed, stdin=subprocess.DEVNULL)
    except BaseException:
        for ours, theirs in [*pairs, *([broker] if broker else [])]:
            ours.close()
            theirs.close()
        raise
    for _, theirs in pairs:
        theirs.close()
    if broker is not None:
        broker[1].close()
    return Launched(proc, [ours for ours, _ in pairs], None if broker is None else broker[0])


def reap(proc: subprocess.Popen[bytes] | None) -> None:
    """Wait for a writer process to exit; kill it if it does not."""
    if proc is None:
        return
    try:
        proc.wait(CLOSE_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def await_ready(
    link: socket.socket, proc: subprocess.Popen[bytes] | None
) -> tuple[Channel[FromWriter], Ready]:
    """The writer's first message on ``link``: its ``ready``; else (``failed``, no
    answer in ``STARTUP_TIMEOUT_SECONDS``, exited) the process is reaped, the link
    closed and the error raised."""
    link.settimeout(STARTUP_TIMEOUT_SECONDS)  # for the "ready" message only
    channel: Channel[FromWriter] = Channel(link, FromWriter)
    try:
        ready = channel.receive()
    except OSError:  # no answer in STARTUP_TIMEOUT_SECONDS
        ready = None
    if isinstance(ready, Ready):
        link.settimeout(None)
        return channel, ready
    if proc is not None and proc.poll() is None and ready is None:
        proc.kill()
    reap(proc)
    channel.close()
    if isinstance(ready, Failed):
        raise error_from_wire(ready.error)
    code = "unknown" if proc is None else proc.returncode
    raise StorageError(
        f"the writer process did not start (exit code {code})",
        code="writer_failed",
        retryable=False,
    )
