"""``python -m stemedb.api.worker_main INDEX COUNT SUPERVISOR_PID LINK_FD READY_FD
HANDOFF_FD``: one
of several HTTP processes (``api.workers``; ``runtime.supervisor`` describes them), started by
worker 0, never by hand. The configuration arrives as one JSON line on stdin."""

from __future__ import annotations

import socket
import sys

import msgspec

from stemedb.api.app import serve
from stemedb.config import Config
from stemedb.runtime.supervisor import WorkerRole, watch_supervisor


def main(argv: list[str]) -> int:
    index, count, supervisor_pid, link_fd, ready_fd, handoff_fd = (int(a) for a in argv)
    config = msgspec.json.decode(sys.stdin.buffer.readline(), type=Config)
    watch_supervisor(sys.stdin.fileno())
    link = None if link_fd < 0 else socket.socket(fileno=link_fd)  # -1: cluster mode
    handoff = None if handoff_fd < 0 else socket.socket(fileno=handoff_fd)  # -1: no respawns
    role = WorkerRole(index, count, supervisor_pid, link, ready_fd, handoff)
    serve(config, role)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
