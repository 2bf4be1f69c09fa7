"""A server's processes as ``/proc`` shows them (Linux): children, liveness, modules."""

from __future__ import annotations

import time
from pathlib import Path


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out.extend(int(p) for p in (task / "children").read_text().split())
    return out


def module_of(pid: int) -> str:
    """The module of a ``python -m MODULE ...`` process."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[2].decode()


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids: list[int], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    assert not any(alive(p) for p in pids), [module_of(p) for p in pids if alive(p)]
