"""A real full disk (a 24 MB tmpfs) under a node with two HTTP workers: writes are
refused (``disk_full``, then the write breaker) while reads go on; ``/ready`` stays
``ready`` with ``writes: "unavailable"`` and the reason, ``/ready?require=writes`` is
503 (what a load balancer that sends writes checks); once space is freed, writes are
accepted again by themselves and ``/ready?require=writes`` is 200; every acknowledged
write is there after a restart."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from _heal import missing_from, one_write, ready_answers, wait_until
from support.server import ServerProcess

from stemedb.model.signing import AgentKey

DISK_MB = 24


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of ``DISK_MB`` MB (root only: CI runs as root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    """Write ``path`` until the file system has no byte left."""
    with path.open("wb", buffering=0) as out:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    out.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc


def test_a_full_disk_shows_on_ready_and_writes_resume_when_space_is_freed(
    small_disk: Path, tmp_path: Path
) -> None:
    agent = AgentKey.from_seed(b"\7" * 32)
    node = ServerProcess(
        small_disk / "data",
        tmp_path / "log",
        STEMEDB_API_WORKERS="2",
        STEMEDB_RESILIENCE_RESET_TIMEOUT_MS="300",
    )
    acknowledged: list[str] = []
    try:
        for value in range(20):
            answer = one_write(node.url, agent, "disk/full", value)
            assert answer is not None and answer.status_code == 201, answer
            acknowledged.append(answer.json()["id"])
        assert all(status == 200 for status, _ in ready_answers(node.url))
        assert all(body["writes"] == "available" for _, body in ready_answers(node.url))

        filler = small_disk / "filler"
        fill(filler)
        refused = [one_write(node.url, agent, "disk/full", 100 + i) for i in range(6)]
        codes = {
            a.json()["error"]["code"] for a in refused if a is not None and a.status_code == 503
        }
        assert "disk_full" in codes, [a and (a.status_code, a.text) for a in refused]
        assert codes <= {"disk_full", "storage_circuit_open"}, codes
        for status, body in ready_answers(node.url):  # reads are served: ready, but …
            assert status == 200 and body["status"] == "ready", body
            assert body["writes"] == "unavailable", body
            assert any(r.startswith("writes: unavailable (disk full") for r in body["reasons"])
        for status, body in ready_answers(node.url, params={"require": "writes"}):
            assert status == 503 and body["status"] == "not_ready", body
        with node.client() as client:  # reads go on
            assert client.get(f"/v1/assertions/{acknowledged[0]}").status_code == 200

        filler.unlink()

        def accepted() -> bool:
            answer = one_write(node.url, agent, "disk/full", 1000 + len(acknowledged))
            if answer is not None and answer.status_code == 201:
                acknowledged.append(answer.json()["id"])
                return True
            return False

        wait_until(accepted, 60, "a write accepted once space was freed")
        for status, body in ready_answers(node.url, params={"require": "writes"}):
            assert status == 200 and body["writes"] == "available", body
    finally:
        assert node.stop() == 0
    again = ServerProcess(small_disk / "data", tmp_path / "log2")
    try:
        assert missing_from(again.url, acknowledged) == []
    finally:
        assert again.stop() == 0
