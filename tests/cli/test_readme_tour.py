"""The README's 5-minute tour, run as written (only its port is this test server's) in
a fresh shell whose working directory has the checkout's ``.venv``: the demo shows three
lenses naming different winners, the skeptic calls it contested, the retraction's
cascade, provenance, a key file (0600), a signed write arriving on the change feed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.server import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
TOUR_PORT = "127.0.0.1:18180"


def tour_script() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The 5-minute tour", 1)[1]
    found = re.search(r"```bash\n(.*?)```", section, re.S)
    assert found, "the tour's bash block"
    return found.group(1)


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data", tmp_path / "server.log", isolated=True)
    yield proc
    assert proc.stop() == 0


def test_the_readme_tour_runs_as_written(fresh_server: ServerProcess, tmp_path: Path) -> None:
    script = tour_script()
    assert "uv run" not in script and script.count(TOUR_PORT) >= 5
    shell = tmp_path / "shell"
    shell.mkdir()
    (shell / ".venv").symlink_to(Path(sys.executable).parent.parent)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("STEMEDB_", "VIRTUAL"))}
    # the commands without --url use the default address: the same port substitution
    environ["STEMEDB_URL"] = fresh_server.url
    # a failed step must not leave the tour's background feed reader holding the pipes
    script = "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script
    done = subprocess.run(
        [
            "bash",
            "-e",
            "-o",
            "pipefail",
            "-c",
            script.replace(TOUR_PORT, f"127.0.0.1:{fresh_server.port}"),
        ],
        cwd=shell,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout
    assert "loaded 24 records" in out

    lines = [json.loads(x) for x in out.splitlines() if x.startswith('{"lens"')]
    winners = {line["lens"]: line["winner"] for line in lines}
    assert set(winners) == {"recency", "confidence", "consensus", "votes", "authority", "layered"}
    assert len(set(winners.values())) >= 3, winners
    assert (winners["recency"], winners["votes"], winners["layered"]) == (
        "common",
        "elevated",
        "rare",
    )
    skeptic = next(json.loads(x) for x in out.splitlines() if x.startswith('{"status"'))
    assert skeptic["status"] == "contested" and len(skeptic["claims"]) >= 3
    kinds = {json.loads(x)["kind"] for x in out.splitlines() if x.startswith('{"assertion_id"')}
    assert kinds == {"retracted_source", "retracted_ancestor"}
    trace = next(json.loads(x) for x in out.splitlines() if x.startswith('{"source"'))
    assert trace["source"] and trace["queries"] >= 1

    key = json.loads(next(x for x in out.splitlines() if '"key_file"' in x))
    assert (shell / "agent.key").stat().st_mode & 0o777 == 0o600
    created = re.search(r"^created: ([0-9a-f]{64}) \(lsn 25\) signed by (\w+)", out, re.M)
    assert created and created.group(2) == key["agent_id"]
    assert f'"id":"{created.group(1)}"' in out.replace(" ", "")  # the feed's event
    assert "winner: rare (regulatory)" in out
