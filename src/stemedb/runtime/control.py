"""The control sockets of several HTTP processes (``api.workers``; ADR 0003).

Each HTTP worker listens on an abstract Unix socket named by worker 0's pid and its
index (``control_address``); another worker asks it a question (one line: a command
and an optional argument) and reads the answer to the end of the stream. ``/metrics``
and the admin views use them to show the node, not one worker.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Final

from stemedb.runtime.supervisor import WorkerRole

log = logging.getLogger("stemedb.api")

CONTROL_TIMEOUT_SECONDS: Final = 5.0


def control_address(supervisor_pid: int, index: int) -> str:
    """Worker ``index``'s control socket: abstract (no file), named by worker 0's pid."""
    return f"\0stemedb-{supervisor_pid}-worker-{index}"


ControlAnswer = Callable[[bytes], Awaitable[bytes]]  # the command's argument -> answer


async def serve_control(
    role: WorkerRole, answers: dict[bytes, ControlAnswer]
) -> asyncio.AbstractServer:
    """Answer other workers' questions on this worker's socket: one line, a command and
    an optional argument (JSON) after a space; the answer, then the end of the stream."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            command, _, argument = (await reader.readline()).strip().partition(b" ")
            answer = answers.get(command)
            if answer is not None:
                writer.write(await answer(argument))
                await writer.drain()
        except Exception as exc:  # noqa: BLE001 - a bad question must not take the worker down
            log.warning("control socket: %s: %s", type(exc).__name__, exc)
        finally:
            writer.close()

    # Sockets made here: uvloop refuses abstract addresses given as a path.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(control_address(role.supervisor_pid, role.index))
        sock.listen()
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return await asyncio.start_unix_server(handle, sock=sock)


async def ask_others(role: WorkerRole, command: bytes, argument: bytes = b"") -> list[bytes]:
    """Every other worker's answer to ``command``; a worker that does not answer in
    ``CONTROL_TIMEOUT_SECONDS`` is left out (and logged)."""

    async def ask(index: int) -> bytes | None:
        try:
            async with asyncio.timeout(CONTROL_TIMEOUT_SECONDS):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.setblocking(False)
                try:
                    loop = asyncio.get_running_loop()
                    await loop.sock_connect(sock, control_address(role.supervisor_pid, index))
                except BaseException:
                    sock.close()
                    raise
                reader, writer = await asyncio.open_unix_connection(sock=sock)
                try:
                    writer.write(command + (b" " + argument if argument else b"") + b"\n")
                    await writer.drain()
                    return await reader.read()
                finally:
                    writer.close()
        except (OSError, TimeoutError) as exc:
            log.warning("HTTP worker %d did not answer %r: %s", index, command.decode(), exc)
            return None

    others = [i for i in range(role.count) if i != role.index]
    answers = await asyncio.gather(*(ask(i) for i in others))
    return [a for a in answers if a is not None]
