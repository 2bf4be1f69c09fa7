"""``stemedb serve --bind --data``, and its one-line errors (busy port, unusable data
directory) with a non-zero exit and no traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
from cli_helpers import RunCli, cli_command
from support.server import free_port


def test_serve_takes_bind_and_data(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "elsewhere"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    proc = subprocess.Popen(
        [*cli_command(), "serve", "--bind", f"127.0.0.1:{port}", "--data", str(data)],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert (data / "wal").is_dir()
        assert not (tmp_path / "data").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def test_a_busy_port_is_one_line_with_the_fix(run_cli: RunCli, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("serve", "--bind", f"127.0.0.1:{port}", "--data", str(tmp_path / "d"))
    line = _one_line_error(done)
    assert "in use" in line and "--bind" in line


def test_an_unusable_data_dir_is_one_line_with_the_fix(run_cli: RunCli, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    line = _one_line_error(run_cli("serve", "--bind", "127.0.0.1:0", "--data", str(not_a_dir)))
    assert str(not_a_dir) in line and "--data" in line
    below_a_file = not_a_dir / "data"
    line = _one_line_error(run_cli("serve", "--bind", "127.0.0.1:0", "--data", str(below_a_file)))
    assert "cannot create" in line and "--data" in line
